"""Spool lines -> a bulk request body of ``create`` actions.

The document bytes are the spool line itself (already compact ECS JSON): the
line is parsed once to read its id, dataset and level, never re-encoded.
``_id = event.id`` makes every retry idempotent (a repeat is a 409, counted as a
duplicate and treated as delivered).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from canhgac.schema import DATASETS, RAW
from canhgac.timeutil import now_rfc3339
from shipper.outputs.elasticsearch.config import ElasticsearchConfig

_KNOWN = frozenset(DATASETS)
MAX_ORIGINAL_CHARS = 1_000_000


@dataclass(slots=True)
class Item:
    index: int  # position in Batch.lines
    doc_id: str
    stream: str
    dataset: str  # bounded: one of DATASETS (unknown datasets are "raw")
    line: bytes
    action: bytes = b""
    system_id: str | None = None
    unit: str | None = None
    level: int | None = None


@dataclass(slots=True)
class Encoded:
    items: list[Item] = field(default_factory=list)
    invalid: list[tuple[int, bytes, str]] = field(default_factory=list)  # (index, line, reason)


def body_of(items: list[Item]) -> bytes:
    """NDJSON bulk body: action line, then the document line, for each item."""
    parts: list[bytes] = []
    for item in items:
        parts.append(item.action)
        parts.append(item.line)
    return b"\n".join(parts) + b"\n" if parts else b""


def line_id(line: bytes) -> str:
    """A stable id for a line with no usable event.id (so retries stay idempotent)."""
    return "sha256-" + hashlib.sha256(line).hexdigest()[:40]


def dataset_of(doc: dict[str, Any]) -> str:
    ev = doc.get("event")
    ds = ev.get("dataset") if isinstance(ev, dict) else None
    return ds if isinstance(ds, str) and ds in _KNOWN else RAW


def _owner(doc: dict[str, Any]) -> tuple[str | None, str | None, int | None]:
    cg = doc.get("canhgac")
    if not isinstance(cg, dict):
        return None, None, None
    system = cg.get("system") if isinstance(cg.get("system"), dict) else {}
    unit = cg.get("unit") if isinstance(cg.get("unit"), dict) else {}
    sid, uname, level = system.get("id"), unit.get("name"), system.get("level")
    return (sid if isinstance(sid, str) else None, uname if isinstance(uname, str) else None,
            level if isinstance(level, int) and not isinstance(level, bool) else None)


def encode(lines: list[bytes], config: ElasticsearchConfig) -> Encoded:
    out = Encoded()
    for i, line in enumerate(lines):
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            out.invalid.append((i, line, f"not valid JSON: {exc}"))
            continue
        if not isinstance(doc, dict):
            out.invalid.append((i, line, "not a JSON object"))
            continue
        ev = doc.get("event")
        eid = ev.get("id") if isinstance(ev, dict) else None
        doc_id = eid if isinstance(eid, str) and 0 < len(eid.encode()) <= 512 else line_id(line)
        dataset = dataset_of(doc)
        sid, unit, level = _owner(doc)
        stream = config.stream(dataset, config.class_for_level(level))
        action = orjson.dumps({"create": {"_index": stream, "_id": doc_id}})
        out.items.append(Item(i, doc_id, stream, dataset, line.rstrip(b"\r\n"), action,
                              sid, unit, level))
    return out


def deadletter_doc(
    line: bytes, reason: str, *, status: int | None, error_type: str | None,
    item: Item | None, stream: str | None,
) -> dict[str, Any]:
    """The dead-letter record: the original event as a string, and why it was refused."""
    original = line.decode("utf-8", "replace")
    if len(original) > MAX_ORIGINAL_CHARS:
        original = original[:MAX_ORIGINAL_CHARS]
    doc: dict[str, Any] = {
        "@timestamp": now_rfc3339(),
        "message": reason[:4000],
        "event": {
            "id": item.doc_id if item else line_id(line),
            "kind": "pipeline_error",
            "dataset": item.dataset if item else RAW,
            "original": original,
        },
        "error": {"message": reason[:4000], "type": error_type or "rejected"},
        "canhgac": {"deadletter": {"stream": stream or ""}},
    }
    if status is not None:
        doc["http"] = {"response": {"status_code": status}}
    if item is not None:
        if item.system_id:
            doc["canhgac"]["system"] = {"id": item.system_id}
            if item.level is not None:
                doc["canhgac"]["system"]["level"] = item.level
        if item.unit:
            doc["canhgac"]["unit"] = {"name": item.unit}
    return doc


def encode_deadletters(
    records: list[tuple[str, dict[str, Any]]], stream: str
) -> bytes:
    """Bulk body for ``(id, doc)`` dead-letter records."""
    parts: list[bytes] = []
    for doc_id, doc in records:
        parts.append(orjson.dumps({"create": {"_index": stream, "_id": doc_id}}))
        parts.append(orjson.dumps(doc))
    return b"\n".join(parts) + b"\n" if parts else b""
