"""Lexer and recursive-descent parser for the canhgac query language.

A Lucene subset (see docs/query.md). The lexer is driven by the parser because
the same character means different things in different places: ``:`` separates
a field from its value, but is part of the value in ``source.ip:fe80::1`` or
``@timestamp:>=2026-11-23T08:00:00Z``. Precedence: NOT > AND (also implicit,
between adjacent clauses) > OR.

Every value is converted to its field's kind here (see ``fields.py``), so an
impossible value (``source.port:abc``, ``source.ip:10.*``) is a QueryError with
its position, before any backend sees it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from canhgac.timeutil import parse_rfc3339
from collector.query import ast
from collector.query.errors import QueryError
from collector.query.fields import (
    BOOLEAN,
    DATE,
    DEFAULT_FIELD,
    DOUBLE,
    FIELD_NAME,
    IP,
    KEYWORD,
    LONG,
    TEXT,
    kind_of,
)

MAX_QUERY_CHARS = 4096
MAX_DEPTH = 32

_WS = " \t\r\n"
_WORD_STOP = set(_WS) | set('()[]{}":')
_VALUE_STOP = set(_WS) | set('()"')
_BOUND_STOP = set(_WS) | set("]}")
_DATE_MATH = re.compile(r"^now(?:([+-])(\d+)(ms|s|m|h|d|w))?$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_INT = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclass(slots=True)
class _Word:
    """A lexed word: characters with whether each was backslash-escaped."""

    chars: list[tuple[str, bool]]
    pos: int  # 1-based
    quoted: bool = False

    @property
    def text(self) -> str:
        return "".join(c for c, _ in self.chars)

    def is_keyword(self, *names: str) -> bool:
        return not self.quoted and not any(e for _, e in self.chars) and self.text in names

    def has_wildcard(self) -> bool:
        return not self.quoted and any(c in "*?" and not e for c, e in self.chars)

    def is_star(self) -> bool:
        return not self.quoted and len(self.chars) == 1 and self.chars[0] == ("*", False)

    def parts(self) -> tuple[ast.PatternPart, ...]:
        out: list[ast.PatternPart] = []
        buf: list[str] = []
        for c, escaped in self.chars:
            if not self.quoted and not escaped and c in "*?":
                if buf:
                    out.append("".join(buf))
                    buf = []
                out.append(ast.Wild(c))
            else:
                buf.append(c)
        if buf:
            out.append("".join(buf))
        return tuple(out)


def parse(query: str, *, now_ms: int | None = None) -> ast.Node:
    """Parse ``query`` into a typed AST. Empty query matches everything."""
    return _Parser(query, now_ms).parse()


class _Parser:
    def __init__(self, text: str, now_ms: int | None) -> None:
        self.text = text
        self.i = 0
        self.depth = 0
        self.now_ms = now_ms if now_ms is not None else int(datetime.now(UTC).timestamp() * 1000)

    # -- helpers ---------------------------------------------------------
    def error(self, message: str, pos: int | None = None) -> QueryError:
        return QueryError(message, pos if pos is not None else self.i + 1, self.text)

    def peek(self, n: int = 0) -> str:
        j = self.i + n
        return self.text[j] if j < len(self.text) else ""

    def skip_ws(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in _WS:
            self.i += 1

    def at_end(self) -> bool:
        self.skip_ws()
        return self.i >= len(self.text)

    def starts(self, s: str) -> bool:
        return self.text.startswith(s, self.i)

    def _op_here(self, *names: str) -> str | None:
        """An operator word (AND, OR, NOT, &&, ||) at the cursor, as a whole word."""
        for name in names:
            if self.starts(name):
                end = self.i + len(name)
                if name in ("&&", "||") or end >= len(self.text) or self.text[end] in _WS + "()":
                    return name
        return None

    # -- grammar ---------------------------------------------------------
    def parse(self) -> ast.Node:
        if len(self.text) > MAX_QUERY_CHARS:
            raise self.error(f"query is longer than {MAX_QUERY_CHARS} characters", MAX_QUERY_CHARS + 1)
        if self.at_end():
            return ast.MatchAll()
        node = self.parse_or(None)
        self.skip_ws()
        if self.i < len(self.text):
            c = self.peek()
            if c == ")":
                raise self.error("unmatched closing parenthesis")
            raise self.error(f"unexpected {c!r}")
        return node

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"query nests deeper than {MAX_DEPTH} levels")

    def parse_or(self, field: str | None) -> ast.Node:
        self.enter()
        children = [self.parse_and(field)]
        while True:
            self.skip_ws()
            if self._op_here("OR", "||"):
                op = self._op_here("OR", "||")
                assert op is not None
                self.i += len(op)
                self.expect_operand("OR")
                children.append(self.parse_and(field))
            else:
                break
        self.depth -= 1
        return children[0] if len(children) == 1 else ast.Or(tuple(children))

    def expect_operand(self, op: str) -> None:
        self.skip_ws()
        if self.i >= len(self.text) or self.peek() == ")" or self._op_here("AND", "OR", "&&", "||"):
            raise self.error(f"{op} needs a clause after it")

    def parse_and(self, field: str | None) -> ast.Node:
        children = [self.parse_unary(field)]
        while True:
            self.skip_ws()
            if self.i >= len(self.text) or self.peek() == ")" or self._op_here("OR", "||"):
                break
            op = self._op_here("AND", "&&")
            if op:
                self.i += len(op)
                self.expect_operand("AND")
            children.append(self.parse_unary(field))
        return children[0] if len(children) == 1 else ast.And(tuple(children))

    def parse_unary(self, field: str | None) -> ast.Node:
        self.skip_ws()
        op = self._op_here("NOT")
        if op:
            self.i += len(op)
            self.expect_operand("NOT")
            self.enter()
            node = ast.Not(self.parse_unary(field))
            self.depth -= 1
            return node
        if self.peek() in "!-" and self.peek(1) not in ("", *_WS) and not (
            self.peek() == "-" and self.peek(1).isdigit() and field is not None
        ):
            self.i += 1
            self.enter()
            node = ast.Not(self.parse_unary(field))
            self.depth -= 1
            return node
        return self.parse_primary(field)

    def parse_primary(self, field: str | None) -> ast.Node:
        self.skip_ws()
        c = self.peek()
        if c == "":
            raise self.error("query ends where a clause was expected")
        if c == "(":
            open_pos = self.i + 1
            self.i += 1
            if self.at_end():
                raise self.error("unclosed parenthesis", open_pos)
            if self.peek() == ")":
                raise self.error("empty parentheses")
            node = self.parse_or(field)
            self.skip_ws()
            if self.peek() != ")":
                raise self.error("unclosed parenthesis", open_pos)
            self.i += 1
            return node
        if c == ")":
            raise self.error("unmatched closing parenthesis")
        if c in "]}":
            raise self.error(f"unexpected {c!r}")
        if c == '"':
            return self.value_node(field or DEFAULT_FIELD, self.read_phrase())
        if c in "[{":
            return self.parse_range(field or DEFAULT_FIELD)
        if field is not None and c in "<>":
            return self.parse_comparison(field)
        start = self.i
        word = self.read_word(_WORD_STOP)
        if not word.chars:
            raise self.error(f"unexpected {c!r}")
        if word.text == "*" and field is None and not word.chars[0][1]:
            if self.starts(":*"):  # Lucene's *:*
                self.i += 2
            return ast.MatchAll()  # a bare * is "everything", as in Lucene
        if self.peek() == ":":
            if field is not None:
                raise self.error("a field inside a field's group is not supported", start + 1)
            name = word.text
            if "*" in name or "?" in name:
                raise self.error("wildcards in field names are not supported", start + 1)
            if any(e for _, e in word.chars) or not FIELD_NAME.match(name):
                raise self.error(f"invalid field name {name!r}", start + 1)
            self.i += 1  # the colon
            return self.parse_field_value(name, start + 1)
        if word.is_keyword("AND", "OR", "&&", "||"):
            raise self.error(f"{word.text} needs a clause before it", start + 1)
        # A bare word: the rest of it may still hold colons (``fe80::1`` in a group).
        return self.value_node(field or DEFAULT_FIELD, word)

    def parse_field_value(self, name: str, field_pos: int) -> ast.Node:
        c = self.peek()
        if c == "" or c in _WS:
            raise self.error(f"missing value after {name}:")
        if c == "(":
            open_pos = self.i + 1
            self.i += 1
            if self.at_end():
                raise self.error("unclosed parenthesis", open_pos)
            node = self.parse_or(name)
            self.skip_ws()
            if self.peek() != ")":
                raise self.error("unclosed parenthesis", open_pos)
            self.i += 1
            return node
        if name == "_exists_":
            word = self.read_word(_VALUE_STOP)
            if not FIELD_NAME.match(word.text):
                raise self.error(f"invalid field name {word.text!r}", word.pos)
            return ast.Exists(word.text)
        if name.startswith("_"):
            raise self.error(f"field {name!r} cannot be searched", field_pos)
        if c == '"':
            return self.value_node(name, self.read_phrase())
        if c in "[{":
            return self.parse_range(name)
        if c in "<>":
            return self.parse_comparison(name)
        return self.value_node(name, self.read_word(_VALUE_STOP))

    # -- lexing ----------------------------------------------------------
    def read_word(self, stop: set[str]) -> _Word:
        pos = self.i + 1
        chars: list[tuple[str, bool]] = []
        while self.i < len(self.text):
            c = self.text[self.i]
            if c == "\\":
                if self.i + 1 >= len(self.text):
                    raise self.error("backslash at the end of the query")
                chars.append((self.text[self.i + 1], True))
                self.i += 2
                continue
            if c in stop:
                break
            chars.append((c, False))
            self.i += 1
        return _Word(chars, pos)

    def read_phrase(self) -> _Word:
        pos = self.i + 1
        self.i += 1  # opening quote
        chars: list[tuple[str, bool]] = []
        while True:
            if self.i >= len(self.text):
                raise self.error("unclosed quote", pos)
            c = self.text[self.i]
            if c == "\\" and self.i + 1 < len(self.text):
                chars.append((self.text[self.i + 1], True))
                self.i += 2
                continue
            if c == '"':
                self.i += 1
                return _Word(chars, pos, quoted=True)
            chars.append((c, False))
            self.i += 1

    def parse_range(self, field: str) -> ast.Node:
        open_pos = self.i + 1
        lo_incl = self.peek() == "["
        self.i += 1
        self.skip_ws()
        lo = self.read_bound()
        self.skip_ws()
        if not self.starts("TO") or self.peek(2) not in _WS:
            raise self.error("expected TO in range")
        self.i += 2
        self.skip_ws()
        hi = self.read_bound()
        self.skip_ws()
        c = self.peek()
        if c not in ("]", "}"):
            if c == "":
                raise self.error("unclosed range, expected ] or }", open_pos)
            raise self.error(f"expected ] or }} in range, got {c!r}")
        hi_incl = c == "]"
        self.i += 1
        return self.range_node(field, lo, hi, lo_incl, hi_incl, open_pos)

    def read_bound(self) -> _Word:
        if self.peek() == '"':
            return self.read_phrase()
        word = self.read_word(_BOUND_STOP)
        if not word.chars:
            raise self.error("missing range bound")
        return word

    def parse_comparison(self, field: str) -> ast.Node:
        pos = self.i + 1
        op = self.text[self.i : self.i + 2] if self.peek(1) == "=" else self.peek()
        self.i += len(op)
        if self.peek() in ("", *_WS):
            raise self.error(f"missing value after {op}")
        word = self.read_phrase() if self.peek() == '"' else self.read_word(_VALUE_STOP)
        if word.is_star():
            raise self.error("a comparison needs a value, not *", word.pos)
        if op in (">", ">="):
            return self.range_node(field, word, None, op == ">=", True, pos)
        return self.range_node(field, None, word, True, op == "<=", pos)

    # -- typing ----------------------------------------------------------
    def value_node(self, field: str, word: _Word) -> ast.Node:
        kind = kind_of(field)
        if word.is_star():
            return ast.Exists(field)
        if not word.chars:
            if kind == TEXT:
                return ast.Exists(field)
            return ast.Eq(field, KEYWORD, "") if kind == KEYWORD else self._bad(field, kind, word)
        if kind == TEXT:
            return ast.Contains(field, word.parts())
        if kind == KEYWORD:
            if word.has_wildcard():
                return ast.Pattern(field, word.parts())
            return ast.Eq(field, KEYWORD, word.text)
        if word.has_wildcard():
            raise self.error(f"wildcards only work on keyword and text fields; {field} is {kind}", word.pos)
        if kind == IP and "/" in word.text:
            try:
                return ast.Cidr(field, ipaddress.ip_network(word.text, strict=False))
            except ValueError:
                raise self.error(f"{word.text!r} is not an IP network (CIDR)", word.pos) from None
        return ast.Eq(field, kind, self.convert(field, kind, word))

    def _bad(self, field: str, kind: str, word: _Word) -> ast.Node:
        raise self.error(f"empty value for {kind} field {field}", word.pos)

    def range_node(
        self, field: str, lo: _Word | None, hi: _Word | None, lo_incl: bool, hi_incl: bool, pos: int
    ) -> ast.Node:
        kind = kind_of(field)
        if kind in (TEXT, BOOLEAN):
            raise self.error(f"ranges do not work on {kind} field {field}", pos)

        def bound(w: _Word | None) -> ast.Scalar | None:
            if w is None or w.is_star():
                return None
            if w.has_wildcard():
                raise self.error("wildcards are not allowed in a range", w.pos)
            return self.convert(field, kind, w)

        lo_v, hi_v = bound(lo), bound(hi)
        if lo_v is None and hi_v is None:
            return ast.Exists(field)
        return ast.Range(field, kind, lo_v, hi_v, lo_incl, hi_incl)

    def convert(self, field: str, kind: str, word: _Word) -> ast.Scalar:
        text = word.text
        if kind == KEYWORD:
            return text
        if kind == LONG:
            if _INT.match(text):
                return int(text)
            if _NUMBER.match(text):
                value = float(text)
                if value.is_integer():
                    return int(value)
            raise self.error(f"{field} holds integers; {text!r} is not one", word.pos)
        if kind == DOUBLE:
            if _NUMBER.match(text):
                return float(text)
            raise self.error(f"{field} holds numbers; {text!r} is not one", word.pos)
        if kind == DATE:
            return self.date_ms(field, word)
        if kind == IP:
            try:
                return str(ipaddress.ip_address(text))
            except ValueError:
                raise self.error(f"{text!r} is not an IP address", word.pos) from None
        if kind == BOOLEAN:
            low = text.lower()
            if low in ("true", "false"):
                return low == "true"
            raise self.error(f"{field} is true or false, not {text!r}", word.pos)
        raise self.error(f"unsupported field kind {kind}", word.pos)  # pragma: no cover

    def date_ms(self, field: str, word: _Word) -> int:
        text = word.text.strip()
        m = _DATE_MATH.match(text)
        if m:
            ms = self.now_ms
            if m.group(1):
                delta = int(m.group(2)) * _UNIT_MS[m.group(3)]
                ms = ms + delta if m.group(1) == "+" else ms - delta
            return ms
        if _INT.match(text) and len(text) >= 10:
            return int(text)  # epoch milliseconds
        try:
            dt = parse_rfc3339(text)
        except ValueError:
            raise self.error(
                f"{field} needs a date (RFC 3339 like 2026-11-23T08:00:00Z, or now-15m); got {text!r}",
                word.pos,
            ) from None
        return epoch_ms(dt)


def epoch_ms(dt: datetime) -> int:
    """Exact integer milliseconds (no float rounding), truncating like Elasticsearch."""
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
