"""Spool lines -> a bulk request body of ``create`` actions.

The document bytes are the spool line itself (already compact ECS JSON): the
line is parsed once to read its id, dataset and level, never re-encoded.
``_id = <agent.id>:<event.id>`` (shipper.docid) makes every retry idempotent (a
repeat is a 409, counted as a duplicate and treated as delivered) while two agents'
events never collide.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from canhgac.schema import DATASETS, RAW
from canhgac.timeutil import now_rfc3339
from shipper.docid import document_id
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


@dataclass(frozen=True, slots=True)
class InvalidLine:
    """A spool line that cannot be an Elasticsearch document (not a JSON object)."""

    index: int  # position in Batch.lines
    line: bytes
    reason: str


@dataclass(slots=True)
class Encoded:
    items: list[Item] = field(default_factory=list)
    invalid: list[InvalidLine] = field(default_factory=list)

    def parts(self) -> list[bytes]:
        """The bulk body's lines, action then document for each item (see :func:`body_of`)."""
        return parts_of(self.items)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A line Elasticsearch will never take as is: it goes to the dead-letter stream."""

    index: int  # position in Batch.lines
    line: bytes
    reason: str
    status: int | None = None  # the bulk item's HTTP status, None when never sent
    error_type: str | None = None
    item: Item | None = None  # None when the line was not even a JSON object


def parts_of(items: list[Item]) -> list[bytes]:
    parts: list[bytes] = []
    append = parts.append
    for item in items:
        append(item.action)
        append(item.line)
    return parts


def body_of(parts: list[bytes]) -> bytes:
    """NDJSON bulk body from its lines (action, document, action, document, ...)."""
    return b"\n".join(parts) + b"\n" if parts else b""


def line_id(line: bytes) -> str:
    """A stable id for a line with no usable event.id (so retries stay idempotent)."""
    return "sha256-" + hashlib.sha256(line).hexdigest()[:40]


def _owner(doc: dict[str, Any]) -> tuple[str | None, str | None, int | None]:
    cg = doc.get("canhgac")
    if not isinstance(cg, dict):
        return None, None, None
    system = cg.get("system")
    unit = cg.get("unit")
    sid = level = uname = None
    if isinstance(system, dict):
        sid, level = system.get("id"), system.get("level")
    if isinstance(unit, dict):
        uname = unit.get("name")
    return (sid if isinstance(sid, str) else None, uname if isinstance(uname, str) else None,
            level if isinstance(level, int) and not isinstance(level, bool) else None)


def _level(doc: dict[str, Any]) -> int | None:
    cg = doc.get("canhgac")
    system = cg.get("system") if isinstance(cg, dict) else None
    level = system.get("level") if isinstance(system, dict) else None
    return level if isinstance(level, int) and not isinstance(level, bool) else None


def encode(lines: list[bytes], config: ElasticsearchConfig) -> Encoded:
    """Parse each line once for its id, dataset and level; the document bytes are the line.

    The hot path of the output: per line one ``orjson.loads`` and a few dict lookups; the
    stream name and the action's prefix are built once per (dataset, level) and batch.
    """
    out = Encoded()
    items = out.items
    loads, dumps, known_datasets = orjson.loads, orjson.dumps, _KNOWN
    prefixes: dict[tuple[str, int | None], tuple[str, bytes]] = {}
    for i, line in enumerate(lines):
        try:
            doc = loads(line)
        except orjson.JSONDecodeError as exc:
            out.invalid.append(InvalidLine(i, line, f"not valid JSON: {exc}"))
            continue
        if type(doc) is not dict:
            out.invalid.append(InvalidLine(i, line, "not a JSON object"))
            continue
        ev = doc.get("event")
        dataset = ev.get("dataset") if type(ev) is dict else RAW
        if dataset not in known_datasets:
            dataset = RAW
        doc_id = document_id(doc) or line_id(line)
        key = (dataset, _level(doc))
        known = prefixes.get(key)
        if known is None:
            stream = config.stream(dataset, config.class_for_level(key[1]))
            known = prefixes[key] = (stream, b'{"create":{"_index":' + dumps(stream) + b',"_id":')
        items.append(Item(i, doc_id, known[0], dataset, line.rstrip(b"\r\n"),
                          known[1] + dumps(doc_id) + b"}}"))
    return out


def deadletter_doc(rejected: Rejected) -> dict[str, Any]:
    """The dead-letter record: the original event as a string, and why it was refused."""
    item = rejected.item
    line, reason = rejected.line, rejected.reason
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
        "error": {"message": reason[:4000], "type": rejected.error_type or "rejected"},
        "canhgac": {"deadletter": {"stream": item.stream if item else ""}},
    }
    if rejected.status is not None:
        doc["http"] = {"response": {"status_code": rejected.status}}
    if item is not None:
        # who the event belongs to, for scoped search of the dead-letter stream (rare path:
        # parsed again here rather than for every event in encode)
        system_id, unit, level = _owner(orjson.loads(line))
        if system_id:
            doc["canhgac"]["system"] = {"id": system_id}
            if level is not None:
                doc["canhgac"]["system"]["level"] = level
        if unit:
            doc["canhgac"]["unit"] = {"name": unit}
    return doc


def deadletter_parts(rejected: list[Rejected], stream: str) -> list[bytes]:
    """Bulk lines writing ``rejected`` to the dead-letter ``stream``.

    ``_id`` is the event's own (or a hash of the line), so a retried dead-letter
    write is a 409, never a second record.
    """
    parts: list[bytes] = []
    for rej in rejected:
        doc_id = rej.item.doc_id if rej.item else line_id(rej.line)
        parts.append(orjson.dumps({"create": {"_index": stream, "_id": doc_id}}))
        parts.append(orjson.dumps(deadletter_doc(rej)))
    return parts
