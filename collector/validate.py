"""Per-line validation of agent events.

Each NDJSON line is judged on its own: a bad line is rejected with a reason and
the good lines of the same batch are kept. The checks bound what an agent (or
anyone holding its credentials) can make the collector store: size, nesting,
types of the fields we index, and timestamps within a sane window.

Every rejection carries a stable *code* (what kind of problem: the label of
``canhgac_ingest_events_rejected_total{reason}`` and ``errors[].code`` in the
ack) and a human *reason* (which field, which value). Metrics and dashboards
key on the code; the text may be reworded at any time.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass
from typing import Any, Literal, get_args

import orjson

from canhgac.fields import IP, LONG, endpoint_fields
from canhgac.schema import DATASETS, KINDS
from canhgac.timeutil import parse_rfc3339_strict
from collector.canonical import Conflict, expand, may_have_dotted_keys, oversized_integer

_ID = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")
# source/destination/client/server .ip and .port, from the kernel's field-type table
_IP_FIELDS = endpoint_fields(IP)
_PORT_FIELDS = endpoint_fields(LONG, "port")
_DATASETS = frozenset(DATASETS)


# Why a line was rejected, as a bounded set (a Prometheus label value, an ack field).
RejectCode = Literal[
    "size",        # the line is over max_event_bytes
    "json",        # not JSON, or not a JSON object
    "depth",       # nested deeper than max_depth
    "schema",      # event / event.id / event.dataset / event.kind missing or wrong
    "timestamp",   # @timestamp missing, not RFC 3339 with an offset, too far ahead or too old
    "field_type",  # an indexed field (IP, port, their parent objects) has the wrong type
]
REJECT_CODES: tuple[RejectCode, ...] = get_args(RejectCode)


class Invalid(Exception):
    """A line is rejected: ``code`` says what kind of problem, the message says which."""

    def __init__(self, code: RejectCode, reason: str) -> None:
        super().__init__(reason)
        self.code: RejectCode = code
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:  # picklable despite the two-argument __init__
        return (type(self), (self.code, self.reason))


@dataclass(frozen=True, slots=True)
class Limits:
    max_event_bytes: int
    max_depth: int
    max_future_skew: float
    max_age: float


def _depth_ok(value: Any, limit: int) -> bool:
    # Iterative so a hostile 10,000-deep document cannot blow the Python stack.
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if d > limit:
            return False
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values() if isinstance(x, dict | list))
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v if isinstance(x, dict | list))
    return True


def _check_ip(value: Any, name: str) -> None:
    if not isinstance(value, str):
        raise Invalid("field_type", f"{name} must be a string IP address")
    # inet_pton is strict and runs in C: ~20x cheaper than ipaddress on the hot path.
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in value else socket.AF_INET, value)
    except (OSError, ValueError):
        raise Invalid("field_type", f"{name} is not an IP address: {value[:64]!r}") from None


def parse_line(line: bytes, limits: Limits, now: float | None = None) -> dict[str, Any]:
    """Decode and check one line; raises Invalid with a code and a reason."""
    if len(line) > limits.max_event_bytes:
        raise Invalid("size", f"event is {len(line)} bytes, limit is {limits.max_event_bytes}")
    try:
        doc: Any = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        if "depth" in exc.msg:  # orjson stops at 1024 levels, before our own limit check
            raise Invalid("depth", f"nesting deeper than {limits.max_depth} levels") from None
        raise Invalid("json", f"not JSON: {exc.msg} at char {exc.pos}") from None
    if not isinstance(doc, dict):
        raise Invalid("json", "event must be a JSON object")
    # One form for every consumer: {"canhgac.system.id": ...} is the nested field, as
    # Elasticsearch reads it, so enrichment and the checks below see it (issue 12).
    if may_have_dotted_keys(line):
        try:
            doc = expand(doc)
        except Conflict as exc:
            raise Invalid("schema", str(exc)) from None
    big = oversized_integer(line)
    if big is not None:
        raise Invalid("field_type", f"integer {big[:40]} does not fit in 64 bits (send it as a "
                      "string if it is an identifier)")
    # A document cannot nest deeper than it has brackets: count them in C and
    # walk the tree only for the rare line that could be too deep.
    if line.count(b"{") + line.count(b"[") > limits.max_depth and not _depth_ok(doc, limits.max_depth):
        raise Invalid("depth", f"nesting deeper than {limits.max_depth} levels")
    event = doc.get("event")
    if not isinstance(event, dict):
        raise Invalid("schema", "missing object field 'event'")
    eid = event.get("id")
    if not isinstance(eid, str) or not _ID.match(eid):
        raise Invalid("schema", "event.id must be a string of 8-128 characters [A-Za-z0-9_.:-]")
    dataset = event.get("dataset")
    if dataset not in _DATASETS:
        raise Invalid("schema", f"event.dataset {str(dataset)[:64]!r} is not a known dataset")
    kind = event.get("kind", "event")
    if kind not in KINDS:
        raise Invalid("schema", f"event.kind {str(kind)[:32]!r} is not an ECS event kind")
    ts = doc.get("@timestamp")
    if not isinstance(ts, str):
        raise Invalid("timestamp", "@timestamp must be an RFC 3339 string")
    try:
        parsed = parse_rfc3339_strict(ts)
    except ValueError:
        raise Invalid("timestamp", f"@timestamp is not RFC 3339 (YYYY-MM-DDTHH:MM:SS[.fff] "
                      f"with Z or ±HH:MM): {ts[:40]!r}") from None
    epoch = parsed.timestamp()
    now = time.time() if now is None else now
    if epoch > now + limits.max_future_skew:
        raise Invalid("timestamp", f"@timestamp {ts} is in the future beyond the allowed clock skew")
    if epoch < now - limits.max_age:
        raise Invalid("timestamp", f"@timestamp {ts} is older than the accepted age")
    for parent, leaf in _IP_FIELDS:
        obj = doc.get(parent)
        if isinstance(obj, dict) and leaf in obj:
            _check_ip(obj[leaf], f"{parent}.{leaf}")
        elif parent in doc and not isinstance(obj, dict):
            raise Invalid("field_type", f"{parent} must be an object")
    for parent, leaf in _PORT_FIELDS:
        obj = doc.get(parent)
        if isinstance(obj, dict) and leaf in obj:
            port = obj[leaf]
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                raise Invalid("field_type", f"{parent}.{leaf} must be an integer 0-65535")
    checked: dict[str, Any] = doc
    return checked
