"""The event schema shared by agent and collector.

Field names are Elastic Common Schema (ECS 8.x). Our own facts live under the
``canhgac.*`` namespace and are set by the collector only, from the agent's
enrollment and the inventory, never trusted from the payload.

An event is a plain ``dict`` on the hot path (orjson encodes it directly); this
module is the single place that knows which fields an event must carry.
"""

from __future__ import annotations

from typing import Any

from canhgac.ids import uuid7
from canhgac.timeutil import now_rfc3339

ECS_VERSION = "8.11.0"

# Datasets (``event.dataset``). Each maps to one data stream family
# ``logs-canhgac.<dataset>-<namespace>`` in Elasticsearch.
HOST_METRICS = "host.metrics"
HOST_INVENTORY = "host.inventory"
PROCESS = "process"
SOCKET = "socket"
SESSION = "session"
AUTH = "auth"
IAM = "iam"
FILE = "file"
NETWORK = "network"
DNS = "dns"
ALERT = "alert"
AGENT_HEALTH = "agent.health"
RAW = "raw"

DATASETS: tuple[str, ...] = (
    HOST_METRICS, HOST_INVENTORY, PROCESS, SOCKET, SESSION, AUTH, IAM, FILE,
    NETWORK, DNS, ALERT, AGENT_HEALTH, RAW,
)

# Telemetry that may be dropped first when a bounded queue is full. Everything
# else is security-relevant and is kept as long as there is anything to evict.
LOW_PRIORITY_DATASETS = frozenset({HOST_METRICS, AGENT_HEALTH})

PRIORITY_SECURITY = 1
PRIORITY_TELEMETRY = 0

# ECS event.kind values we emit.
KINDS = frozenset({"event", "metric", "state", "alert", "pipeline_error"})


def priority_of(dataset: str | None) -> int:
    return PRIORITY_TELEMETRY if dataset in LOW_PRIORITY_DATASETS else PRIORITY_SECURITY


def new_event(
    dataset: str,
    *,
    kind: str = "event",
    category: list[str] | None = None,
    type: list[str] | None = None,
    action: str | None = None,
    outcome: str | None = None,
    module: str = "canhgac",
    timestamp: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Build an ECS event at the place it is born: the only place ``event.id`` is set."""
    event: dict[str, Any] = {
        "kind": kind,
        "dataset": dataset,
        "module": module,
        "id": uuid7(),
        "created": now_rfc3339(),
    }
    if category:
        event["category"] = category
    if type:
        event["type"] = type
    if action:
        event["action"] = action
    if outcome:
        event["outcome"] = outcome
    doc: dict[str, Any] = {
        "@timestamp": timestamp or event["created"],
        "ecs": {"version": ECS_VERSION},
        "event": event,
    }
    for key, value in fields.items():
        if value is not None:
            doc[key] = value
    return doc


def get_path(doc: dict[str, Any], dotted: str) -> Any:
    """Read a dotted ECS path from a nested event; also accepts flat dotted keys."""
    if dotted in doc:
        return doc[dotted]
    cur: Any = doc
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        if part in cur:
            cur = cur[part]
        else:
            return None
    return cur


def set_path(doc: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = doc
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    cur[parts[-1]] = value
