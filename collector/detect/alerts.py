"""Rule hits -> ECS alert events.

An alert is an ordinary event (``event.kind: alert``, dataset ``alert``) with a
new ``event.id``, so it flows through the same spool and outputs as telemetry and
is idempotent on every hop like everything else. It carries who it is about
(``canhgac.*`` system/unit/agent, ``host.*``) and the evidence that made it fire —
executable, command line, pid, parent, user, group, file, addresses, ports, DNS
name — in their ECS fields, copied from the triggering event so the SOC can act
without a join, and the ids of the events that made it, so it can be proven from
the data.
"""

from __future__ import annotations

import copy
from typing import Any

from canhgac.schema import ALERT, new_event
from canhgac.timeutil import from_epoch
from collector.detect.fields import make_getter
from collector.detect.model import Match

FRAMEWORK = "MITRE ATT&CK"

# Fields copied from the triggering event (whole objects for host/agent/canhgac).
_COPY_OBJECTS = ("host", "agent")
_COPY_FIELDS = (
    "source.ip", "source.port", "source.mac", "source.domain",
    "destination.ip", "destination.port", "destination.domain", "network.transport",
    "user.name", "user.id", "user.target.name", "group.name", "group.id",
    "process.pid", "process.name", "process.executable", "process.command_line",
    "process.working_directory", "process.parent.pid", "process.parent.executable",
    "process.parent.command_line",
    "file.path", "file.name", "file.hash.sha256", "dns.question.name", "url.original",
)
_getters = {f: make_getter(f) for f in _COPY_FIELDS}
# Parts of canhgac.* that describe the source event itself, not whom it concerns.
_NOT_COPIED = ("alert", "heartbeat")


def _key_text(fields: tuple[str, ...], key: tuple[Any, ...]) -> str:
    return ", ".join(f"{f}={v}" for f, v in zip(fields, key, strict=False) if v is not None)


def build_alert(
    match: Match,
    *,
    update_of: str | None = None,
    suppressed: int = 0,
    max_ids: int = 50,
) -> dict[str, Any]:
    """The alert document for one hit, or an update to an earlier alert when ``update_of``."""
    meta = match.meta
    src = match.event
    doc = new_event(
        ALERT,
        kind="alert",
        category=["intrusion_detection"],
        type=["info"],
        action="rule_update" if update_of else "rule_match",
        module="canhgac",
    )
    ev = doc["event"]
    ev["severity"] = meta.severity
    ev["provider"] = "canhgac.detect"
    rule: dict[str, Any] = {
        "id": meta.id,
        "name": meta.title,
        "ruleset": meta.ruleset,
    }
    if meta.description:
        rule["description"] = meta.description
    if meta.references:
        rule["reference"] = meta.references[0]
    doc["rule"] = rule
    if meta.techniques or meta.tactics:
        threat: dict[str, Any] = {"framework": FRAMEWORK}
        if meta.techniques:
            threat["technique"] = {"id": list(meta.techniques)}
        if meta.tactics:
            threat["tactic"] = {"name": list(meta.tactics)}
        doc["threat"] = threat

    for name in _COPY_OBJECTS:
        value = src.get(name)
        if isinstance(value, dict):
            doc[name] = copy.deepcopy(value)
    for dotted, get in _getters.items():
        value = get(src)
        if value is not None:
            *parents, leaf = dotted.split(".")
            target = doc
            for part in parents:
                nxt = target.get(part)
                if not isinstance(nxt, dict):
                    nxt = target[part] = {}
                target = nxt
            target[leaf] = copy.deepcopy(value)

    ours = src.get("canhgac")
    canhgac: dict[str, Any] = copy.deepcopy(ours) if isinstance(ours, dict) else {}
    for private in _NOT_COPIED:
        canhgac.pop(private, None)
    alert: dict[str, Any] = {
        "severity": meta.level,
        "kind": meta.kind,
        "count": match.count,
        "source_event_ids": list(match.event_ids[:max_ids]),
    }
    if match.key_fields:
        alert["key"] = _key_text(match.key_fields, match.key)
    if match.first_seen is not None:
        alert["first_seen"] = from_epoch(match.first_seen)
    if match.last_seen is not None:
        alert["last_seen"] = from_epoch(match.last_seen)
    if update_of:
        alert["update_of"] = update_of
        alert["suppressed"] = suppressed
    if match.extra:
        alert.update(match.extra)
    canhgac["alert"] = alert
    doc["canhgac"] = canhgac

    where = alert.get("key", "")
    new = alert.get("new_evidence")
    if update_of and new:
        what = ", ".join(f"{k}={str(v)[:120]}" for k, v in new.items())
        doc["message"] = f"{meta.title}: new evidence {what} ({where})"
    elif update_of:
        doc["message"] = f"{meta.title}: {suppressed} more matching events ({where})"
    else:
        n = f"{match.count} events, " if match.count > 1 else ""
        doc["message"] = f"{meta.title} ({n}{where})" if where or n else meta.title
    return doc
