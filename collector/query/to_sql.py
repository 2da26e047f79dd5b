"""Typed AST -> SQLite WHERE clause over the embedded store's ``events`` table.

User input only ever travels as bound parameters (``?``); the SQL text is built
from constant fragments chosen by node type. Each predicate is an ``EXISTS``
over ``json_each(doc, path)``, which treats a scalar and an array of values the
same way Elasticsearch does ("any value matches"), and never yields NULL, so
``NOT`` behaves exactly like a ``must_not`` (a missing field is "not equal").

The connection must have the helper functions from :func:`register_functions`.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import sqlite3
from datetime import datetime
from typing import Any

import orjson

from canhgac.timeutil import parse_rfc3339
from collector.query import ast
from collector.query.fields import BOOLEAN, DATE, DOUBLE, IP, KEYWORD, LONG

# How `doc` is named in the caller's FROM clause.
DOC = "events.doc"
TS = "events.ts"
TIMESTAMP_FIELD = "@timestamp"

# A JSON value as Elasticsearch's keyword field would index it (true -> "true").
_KW = "(CASE WHEN j.type IN ('true','false') THEN j.type ELSE CAST(j.value AS TEXT) END)"
_NUM = ("(CASE WHEN j.type IN ('integer','real') THEN j.value "
        "WHEN j.type = 'text' THEN cg_num(j.value) END)")


def json_path(field: str) -> str:
    return "$" + "".join('."' + part.replace('"', '\\"') + '"' for part in field.split("."))


def glob_of(parts: tuple[ast.PatternPart, ...]) -> str:
    out: list[str] = []
    for p in parts:
        if isinstance(p, ast.Wild):
            out.append(p.char)
        else:
            out.append("".join("[" + c + "]" if c in "*?[" else c for c in p))
    return "".join(out)


def contains_program(parts: tuple[ast.PatternPart, ...]) -> str:
    """A free-text wildcard as the segments between its ``*``, each a star-free regex.

    Matching finds each segment, leftmost, after the previous one (see
    ``_contains``). A star-free regex is literals and ``.`` only, so each search is
    linear in the text, and the whole match is linear in text x pattern — never the
    exponential backtracking of one regex with several ``.*`` (``******#`` on a long
    message took 35 s that way, holding the GIL).
    """
    segments: list[str] = [""]
    for p in parts:
        if isinstance(p, ast.Wild):
            if p.char == "*":
                segments.append("")
            else:
                segments[-1] += "."
        else:
            segments[-1] += re.escape(p)
    return orjson.dumps([s for s in segments if s]).decode()


def ip_key(value: str) -> str | None:
    """Sort key of an address as Elasticsearch orders them (IPv4 as IPv4-mapped IPv6)."""
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv4Address):
        addr = ipaddress.IPv6Address("::ffff:" + str(addr))
    return addr.packed.hex()


# Keyword fields the store also keeps in a TEXT column of their own (shipper.outputs.store:
# the row is made from the same document, and SQLite's TEXT affinity writes a number as the
# text that keyword matching compares). So the column answers, with its index, except where
# it reads '0' or '1' — a boolean there is the keyword "false"/"true" — and those rows are
# asked of the document as before (as is a query for the value "0" or "1" itself). Exact
# either way and never NULL (``IS``), so NOT stays a must_not; the scope, system and dataset
# filters that nearly every search carries no longer parse the JSON of every row in range.
COLUMNS = {"event.dataset": "dataset", "event.kind": "kind", "canhgac.system.id": "system_id",
           "canhgac.unit.name": "unit"}


def _each(field: str, cond: str, params: list[Any], cond_params: list[Any]) -> str:
    params.append(json_path(field))
    params.extend(cond_params)
    return f"EXISTS (SELECT 1 FROM json_each({DOC}, ?) j WHERE {cond})"


def to_sql(node: ast.Node) -> tuple[str, list[Any]]:
    params: list[Any] = []
    sql = _build(node, params)
    return sql, params


def _build(node: ast.Node, params: list[Any]) -> str:
    if isinstance(node, ast.MatchAll):
        return "1"
    if isinstance(node, ast.MatchNone):
        return "0"
    if isinstance(node, ast.And):
        return "(" + " AND ".join(_build(c, params) for c in node.children) + ")"
    if isinstance(node, ast.Or):
        return "(" + " OR ".join(_build(c, params) for c in node.children) + ")"
    if isinstance(node, ast.Not):
        return "(NOT " + _build(node.child, params) + ")"
    if isinstance(node, ast.Exists):
        if node.field == TIMESTAMP_FIELD:
            return "1"
        return _each(node.field, "j.type <> 'null'", params, [])
    if isinstance(node, ast.Eq):
        return _eq(node, params)
    if isinstance(node, ast.Pattern):
        return _each(node.field, f"{_KW} GLOB ?", params, [glob_of(node.parts)])
    if isinstance(node, ast.Contains):
        return _each(node.field, "j.type = 'text' AND cg_contains(?, j.value)", params,
                     [contains_program(node.parts)])
    if isinstance(node, ast.Cidr):
        return _each(node.field, "j.type = 'text' AND cg_ip_in(j.value, ?)", params,
                     [str(node.network)])
    if isinstance(node, ast.Range):
        return _range(node, params)
    raise TypeError(f"unknown node {node!r}")  # pragma: no cover


def _eq(node: ast.Eq, params: list[Any]) -> str:
    kind, field, value = node.kind, node.field, node.value
    if kind == DATE:
        if field == TIMESTAMP_FIELD:
            params.append(value)
            return f"({TS} = ?)"
        return _each(field, "cg_ms(j.value) = ?", params, [value])
    if kind in (LONG, DOUBLE):
        return _each(field, f"{_NUM} = ?", params, [value])
    if kind == IP:
        return _each(field, "j.type = 'text' AND cg_ip_key(j.value) = ?", params,
                     [ip_key(str(value))])
    if kind == BOOLEAN:
        word = "true" if value else "false"
        return _each(field, "(j.type = ? OR (j.type = 'text' AND j.value = ?))", params, [word, word])
    assert kind == KEYWORD
    column = COLUMNS.get(field)
    text = str(value)
    if column is not None and text not in ("0", "1"):
        params.append(text)
        each = _each(field, f"{_KW} = ?", params, [text])
        return f"(events.{column} IS ? OR (events.{column} IN ('0', '1') AND {each}))"
    return _each(field, f"{_KW} = ?", params, [text])


def _range(node: ast.Range, params: list[Any]) -> str:
    kind, field = node.kind, node.field
    conds: list[str] = []
    vals: list[Any] = []
    if kind == DATE and field == TIMESTAMP_FIELD:
        expr = TS
    elif kind == DATE:
        expr = "cg_ms(j.value)"
    elif kind in (LONG, DOUBLE):
        expr = _NUM
    elif kind == IP:
        expr = "cg_ip_key(j.value)"
    else:
        expr = _KW
    for bound, incl, op in ((node.lo, node.lo_inclusive, ">"), (node.hi, node.hi_inclusive, "<")):
        if bound is None:
            continue
        conds.append(f"{expr} {op}{'=' if incl else ''} ?")
        vals.append(ip_key(str(bound)) if kind == IP else bound)
    cond = " AND ".join(conds)
    if expr == TS:
        params.extend(vals)
        return f"({cond})"
    return _each(field, f"({cond})", params, vals)


# -- SQLite helper functions ---------------------------------------------------
@functools.lru_cache(maxsize=256)
def _segments(program: str) -> tuple[re.Pattern[str], ...]:
    # ASCII-only case folding: matches Elasticsearch's case_insensitive wildcard.
    return tuple(re.compile(s, re.IGNORECASE | re.ASCII | re.DOTALL) for s in orjson.loads(program))


def _contains(segments: tuple[re.Pattern[str], ...], value: str) -> bool:
    """Each segment found after the previous one: the leftmost match is always safe."""
    pos = 0
    for seg in segments:
        m = seg.search(value, pos)
        if m is None:
            return False
        pos = m.end()
    return True


def _cg_contains(program: str, value: Any) -> int:
    if not isinstance(value, str):
        return 0
    return 1 if _contains(_segments(program), value) else 0


def _cg_ip_in(value: Any, network: str) -> int:
    if not isinstance(value, str):
        return 0
    try:
        addr = ipaddress.ip_address(value)
        net = ipaddress.ip_network(network, strict=False)
    except ValueError:
        return 0
    if addr.version != net.version:
        mapped = getattr(addr, "ipv4_mapped", None)
        if net.version == 4 and mapped is not None:
            addr = mapped
        elif net.version == 6 and addr.version == 4:
            addr = ipaddress.IPv6Address("::ffff:" + str(addr))
        else:
            return 0
    return 1 if addr in net else 0


def _cg_ms(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        return None
    try:
        dt: datetime = parse_rfc3339(value)
    except ValueError:
        return None
    from collector.query.parser import epoch_ms

    return epoch_ms(dt)


def _cg_num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def register_functions(db: sqlite3.Connection) -> None:
    """The deterministic helpers the generated SQL calls."""
    db.create_function("cg_contains", 2, _cg_contains, deterministic=True)
    db.create_function("cg_ip_in", 2, _cg_ip_in, deterministic=True)
    db.create_function("cg_ip_key", 1, lambda v: ip_key(v) if isinstance(v, str) else None,
                       deterministic=True)
    db.create_function("cg_ms", 1, _cg_ms, deterministic=True)
    db.create_function("cg_num", 1, _cg_num, deterministic=True)
