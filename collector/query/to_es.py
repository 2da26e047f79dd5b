"""Typed AST -> Elasticsearch query DSL.

Everything is a filter (no scoring): results are sorted by time, and filters
are cacheable. Dates are sent as epoch milliseconds with an explicit format so
Elasticsearch and the embedded store compare the very same integers.
"""

from __future__ import annotations

from typing import Any

from collector.query import ast
from collector.query.fields import DATE


def pattern_to_es(parts: tuple[ast.PatternPart, ...]) -> str:
    """Wildcard-query syntax: literal * ? \\ escaped with a backslash."""
    out: list[str] = []
    for p in parts:
        if isinstance(p, ast.Wild):
            out.append(p.char)
        else:
            out.append(p.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?"))
    return "".join(out)


def to_es(node: ast.Node) -> dict[str, Any]:
    if isinstance(node, ast.MatchAll):
        return {"match_all": {}}
    if isinstance(node, ast.MatchNone):
        return {"match_none": {}}
    if isinstance(node, ast.And):
        return {"bool": {"filter": [to_es(c) for c in node.children]}}
    if isinstance(node, ast.Or):
        return {"bool": {"should": [to_es(c) for c in node.children], "minimum_should_match": 1}}
    if isinstance(node, ast.Not):
        return {"bool": {"must_not": [to_es(node.child)]}}
    if isinstance(node, ast.Exists):
        return {"exists": {"field": node.field}}
    if isinstance(node, ast.Eq):
        if node.kind == DATE:
            return {"range": {node.field: {"gte": node.value, "lte": node.value,
                                           "format": "epoch_millis"}}}
        return {"term": {node.field: {"value": node.value}}}
    if isinstance(node, ast.Pattern):
        return {"wildcard": {node.field: {"value": pattern_to_es(node.parts)}}}
    if isinstance(node, ast.Contains):
        parts = (ast.Wild("*"), *node.parts, ast.Wild("*"))
        return {"wildcard": {node.field: {"value": pattern_to_es(parts), "case_insensitive": True}}}
    if isinstance(node, ast.Cidr):
        return {"term": {node.field: {"value": str(node.network)}}}
    if isinstance(node, ast.Range):
        body: dict[str, Any] = {}
        if node.lo is not None:
            body["gte" if node.lo_inclusive else "gt"] = node.lo
        if node.hi is not None:
            body["lte" if node.hi_inclusive else "lt"] = node.hi
        if node.kind == DATE:
            body["format"] = "epoch_millis"
        return {"range": {node.field: body}}
    raise TypeError(f"unknown node {node!r}")  # pragma: no cover
