"""Small validators for rule documents, each naming the key path on failure."""

from __future__ import annotations

from typing import Any

from canhgac.timeutil import parse_duration
from collector.detect.fields import UnknownField, to_ecs
from collector.detect.model import RuleError


def mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RuleError(path, "expected a mapping")
    return value


def only_keys(doc: dict[str, Any], allowed: set[str] | frozenset[str], path: str) -> None:
    """Unknown keys are typos until proven otherwise: refuse them."""
    for key in doc:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            where = f"{path}.{key}" if path else str(key)
            raise RuleError(where, f"unknown key (known keys: {known})")


def required(doc: dict[str, Any], key: str, path: str) -> Any:
    if key not in doc or doc[key] is None:
        raise RuleError(f"{path}.{key}" if path else key, "is required")
    return doc[key]


def duration(value: Any, path: str) -> float:
    try:
        return parse_duration(value)
    except (ValueError, TypeError) as exc:
        raise RuleError(path, str(exc)) from None


def positive_int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RuleError(path, f"expected a positive integer, got {value!r}")
    return value


def text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RuleError(path, "expected a non-empty string")
    return value


def field_list(value: Any, path: str) -> tuple[str, ...]:
    """One field or a list of fields (ECS or mapped Sigma names), as ECS paths."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise RuleError(path, "expected a field name or a non-empty list of field names")
    out: list[str] = []
    for i, item in enumerate(items):
        sub = f"{path}[{i}]" if isinstance(value, list) else path
        if not isinstance(item, str):
            raise RuleError(sub, "expected a field name")
        try:
            out.append(to_ecs(item))
        except UnknownField as exc:
            raise RuleError(sub, str(exc)) from None
    return tuple(out)


def dataset_list(value: Any, path: str, known: frozenset[str]) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise RuleError(path, "expected a dataset name or a list of them")
    for i, item in enumerate(items):
        if item not in known:
            sub = f"{path}[{i}]" if isinstance(value, list) else path
            raise RuleError(sub, f"unknown dataset {item!r} (known: {', '.join(sorted(known))})")
    return tuple(items)
