"""ECS field mappings for canhgac data streams, derived from the kernel's field types.

The field-type table itself is :data:`canhgac.fields.FIELD_TYPES`: the query
language (``collector.query.fields``) and the collector's validation read the
same table, so a field is typed the same way where it is checked, stored and
searched. This module only renders it as an Elasticsearch mapping.

Free text fields (``message``, command lines, URLs) are the logical type
:data:`FREE_TEXT`: stored as ``keyword`` and searched with case-insensitive
wildcard queries ("contains"). Not ``text``: an analyser's tokens cannot be
reproduced by the embedded SQLite store, and search results must be the same on
both. Not the ``wildcard`` field type: it is an X-Pack plugin that a plain
Elasticsearch node does not have. Case folding is ASCII-only on both sides
(that is what Elasticsearch's ``case_insensitive`` does), so ``Đ`` and ``đ`` differ.
"""

from __future__ import annotations

from typing import Any

from canhgac.fields import FIELD_TYPES, FREE_TEXT

__all__ = ["FIELD_TYPES", "FREE_TEXT", "mappings", "properties"]


# Not searchable: kept verbatim for forensics, never indexed.
_NOT_INDEXED = {"event.original"}

KEYWORD_IGNORE_ABOVE = 8191


def _leaf(es_type: str, field: str) -> dict[str, Any]:
    if field in _NOT_INDEXED:
        return {"type": "keyword", "index": False, "doc_values": False}
    if es_type in ("keyword", FREE_TEXT):
        return {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}
    if es_type == "date":
        return {"type": "date", "format": "strict_date_optional_time||epoch_millis"}
    return {"type": es_type}


def properties(fields: dict[str, str] = FIELD_TYPES) -> dict[str, Any]:
    """Nested ``properties`` mapping for dotted field names."""
    root: dict[str, Any] = {}
    for dotted, es_type in sorted(fields.items()):
        parts = dotted.split(".")
        cur = root
        for part in parts[:-1]:
            node = cur.setdefault(part, {"properties": {}})
            cur = node["properties"]
        cur[parts[-1]] = _leaf(es_type, dotted)
    return root


# Ratios and loads are fractions even when a first sample happens to be a whole number
# (``"pct": 0``): mapped as double up front, never as a long that would truncate later ones.
DYNAMIC_TEMPLATES: list[dict[str, Any]] = [
    {"ratios_as_double": {"path_match": "*.pct", "mapping": {"type": "double"}}},
    {"loads_as_double": {"path_match": "system.load.*", "match_mapping_type": "long",
                         "mapping": {"type": "double"}}},
    {"strings_as_keyword": {"match_mapping_type": "string",
                            "mapping": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}}},
    {"floats_as_double": {"match_mapping_type": "double", "mapping": {"type": "double"}}},
]


def mappings() -> dict[str, Any]:
    """The ``mappings`` section of the ECS component template."""
    return {
        "dynamic": True,
        "date_detection": False,
        "numeric_detection": False,
        "dynamic_templates": DYNAMIC_TEMPLATES,
        "properties": properties(),
    }
