"""The typed query AST.

Values are already converted to the field's kind by the parser (numbers, epoch
milliseconds, IP networks), so the Elasticsearch and SQL translators never
interpret user text themselves and cannot disagree about what it meant.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Union

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Scalar = str | int | float | bool

# A wildcard pattern: literal strings and the one-character markers "*" / "?"
# wrapped in Wild so a literal "*" (written \* by the user) stays literal.


@dataclass(frozen=True, slots=True)
class Wild:
    char: str  # "*" or "?"


PatternPart = str | Wild


@dataclass(frozen=True, slots=True)
class MatchAll:
    pass


@dataclass(frozen=True, slots=True)
class MatchNone:
    pass


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class Exists:
    field: str


@dataclass(frozen=True, slots=True)
class Eq:
    """Exact value. ``kind`` is the field kind; for DATE the value is epoch ms."""

    field: str
    kind: str
    value: Scalar


@dataclass(frozen=True, slots=True)
class Pattern:
    """Keyword wildcard match (case-sensitive, whole value)."""

    field: str
    parts: tuple[PatternPart, ...]


@dataclass(frozen=True, slots=True)
class Contains:
    """Free-text field: the value contains the pattern, ignoring ASCII case."""

    field: str
    parts: tuple[PatternPart, ...]


@dataclass(frozen=True, slots=True)
class Cidr:
    field: str
    network: IPNetwork


@dataclass(frozen=True, slots=True)
class Range:
    """``lo``/``hi`` None means unbounded. IP bounds are canonical address strings."""

    field: str
    kind: str
    lo: Scalar | None
    hi: Scalar | None
    lo_inclusive: bool = True
    hi_inclusive: bool = True


Node = Union[MatchAll, MatchNone, And, Or, Not, Exists, Eq, Pattern, Contains, Cidr, Range]  # noqa: UP007


def and_(*nodes: Node) -> Node:
    """AND of ``nodes``, flattening nested ANDs; the scope filter uses this."""
    flat: list[Node] = []
    for n in nodes:
        if isinstance(n, MatchAll):
            continue
        if isinstance(n, And):
            flat.extend(n.children)
        else:
            flat.append(n)
    if any(isinstance(n, MatchNone) for n in flat):
        return MatchNone()
    if not flat:
        return MatchAll()
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def or_(*nodes: Node) -> Node:
    flat: list[Node] = []
    for n in nodes:
        if isinstance(n, MatchNone):
            continue
        if isinstance(n, Or):
            flat.extend(n.children)
        else:
            flat.append(n)
    if not flat:
        return MatchNone()
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


def fields_of(node: Node) -> set[str]:
    """Every field a query touches (for logging and tests)."""
    if isinstance(node, And | Or):
        out: set[str] = set()
        for c in node.children:
            out |= fields_of(c)
        return out
    if isinstance(node, Not):
        return fields_of(node.child)
    field = getattr(node, "field", None)
    return {field} if field else set()
