"""ECS field mappings for canhgac data streams: the single source of field types.

Both the Elasticsearch templates (``templates.py``) and the query language
(``collector.query.fields``) read :data:`FIELD_TYPES`, so a field is typed the
same way where it is stored and where it is searched.

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

FREE_TEXT = "free_text"

# ES field type of every field we map explicitly. Anything else is mapped by the
# dynamic templates below (strings -> keyword, integers -> long, floats -> double).
FIELD_TYPES: dict[str, str] = {
    "@timestamp": "date",
    "message": FREE_TEXT,
    "tags": "keyword",
    "ecs.version": "keyword",
    # event.*
    "event.id": "keyword",
    "event.kind": "keyword",
    "event.dataset": "keyword",
    "event.module": "keyword",
    "event.category": "keyword",
    "event.type": "keyword",
    "event.action": "keyword",
    "event.outcome": "keyword",
    "event.code": "keyword",
    "event.provider": "keyword",
    "event.reason": "keyword",
    "event.hash": "keyword",
    "event.timezone": "keyword",
    "event.created": "date",
    "event.ingested": "date",
    "event.start": "date",
    "event.end": "date",
    "event.severity": "long",
    "event.duration": "long",
    "event.sequence": "long",
    "event.risk_score": "float",
    "event.original": "keyword",
    # agent / host
    "agent.id": "keyword",
    "agent.name": "keyword",
    "agent.type": "keyword",
    "agent.version": "keyword",
    "agent.ephemeral_id": "keyword",
    "host.id": "keyword",
    "host.name": "keyword",
    "host.hostname": "keyword",
    "host.architecture": "keyword",
    "host.type": "keyword",
    "host.domain": "keyword",
    "host.ip": "ip",
    "host.mac": "keyword",
    "host.uptime": "long",
    "host.boot.id": "keyword",
    "host.os.family": "keyword",
    "host.os.name": "keyword",
    "host.os.kernel": "keyword",
    "host.os.platform": "keyword",
    "host.os.type": "keyword",
    "host.os.version": "keyword",
    "host.os.full": "keyword",
    "host.cpu.usage": "double",
    "host.network.ingress.bytes": "long",
    "host.network.ingress.packets": "long",
    "host.network.egress.bytes": "long",
    "host.network.egress.packets": "long",
    "host.disk.read.bytes": "long",
    "host.disk.write.bytes": "long",
    # process
    "process.pid": "long",
    "process.ppid": "long",
    "process.pgid": "long",
    "process.name": "keyword",
    "process.executable": "keyword",
    "process.working_directory": "keyword",
    "process.entity_id": "keyword",
    "process.command_line": FREE_TEXT,
    "process.args": "keyword",
    "process.args_count": "long",
    "process.start": "date",
    "process.end": "date",
    "process.exit_code": "long",
    "process.tty.char_device.major": "long",
    "process.hash.sha256": "keyword",
    "process.user.id": "keyword",
    "process.user.name": "keyword",
    "process.parent.pid": "long",
    "process.parent.name": "keyword",
    "process.parent.executable": "keyword",
    "process.parent.entity_id": "keyword",
    "process.parent.command_line": FREE_TEXT,
    # user
    "user.id": "keyword",
    "user.name": "keyword",
    "user.domain": "keyword",
    "user.full_name": "keyword",
    "user.email": "keyword",
    "user.effective.id": "keyword",
    "user.effective.name": "keyword",
    "user.target.id": "keyword",
    "user.target.name": "keyword",
    # network endpoints
    "source.ip": "ip",
    "source.port": "long",
    "source.address": "keyword",
    "source.domain": "keyword",
    "source.mac": "keyword",
    "source.bytes": "long",
    "source.packets": "long",
    "destination.ip": "ip",
    "destination.port": "long",
    "destination.address": "keyword",
    "destination.domain": "keyword",
    "destination.mac": "keyword",
    "destination.bytes": "long",
    "destination.packets": "long",
    "network.transport": "keyword",
    "network.type": "keyword",
    "network.protocol": "keyword",
    "network.direction": "keyword",
    "network.community_id": "keyword",
    "network.iana_number": "keyword",
    "network.bytes": "long",
    "network.packets": "long",
    # file
    "file.path": "keyword",
    "file.name": "keyword",
    "file.directory": "keyword",
    "file.extension": "keyword",
    "file.type": "keyword",
    "file.owner": "keyword",
    "file.group": "keyword",
    "file.mode": "keyword",
    "file.inode": "keyword",
    "file.target_path": "keyword",
    "file.size": "long",
    "file.mtime": "date",
    "file.ctime": "date",
    "file.hash.md5": "keyword",
    "file.hash.sha1": "keyword",
    "file.hash.sha256": "keyword",
    "file.hash.sha512": "keyword",
    # dns
    "dns.id": "keyword",
    "dns.type": "keyword",
    "dns.question.name": "keyword",
    "dns.question.type": "keyword",
    "dns.question.class": "keyword",
    "dns.question.registered_domain": "keyword",
    "dns.response_code": "keyword",
    "dns.resolved_ip": "ip",
    # detection
    "rule.id": "keyword",
    "rule.uuid": "keyword",
    "rule.name": "keyword",
    "rule.category": "keyword",
    "rule.ruleset": "keyword",
    "rule.reference": "keyword",
    "rule.version": "keyword",
    "rule.author": "keyword",
    "rule.description": "keyword",
    "threat.indicator.ip": "ip",
    "threat.indicator.type": "keyword",
    "threat.indicator.provider": "keyword",
    "threat.indicator.id": "keyword",
    "error.message": FREE_TEXT,
    "error.type": "keyword",
    "error.code": "keyword",
    "error.id": "keyword",
    "log.level": "keyword",
    "log.logger": "keyword",
    "log.file.path": "keyword",
    "url.full": FREE_TEXT,
    "url.original": FREE_TEXT,
    "url.domain": "keyword",
    "url.path": "keyword",
    "service.name": "keyword",
    "service.type": "keyword",
    "service.state": "keyword",
    "related.ip": "ip",
    "related.user": "keyword",
    "related.hosts": "keyword",
    "related.hash": "keyword",
    # ours: set by the collector from credentials + inventory
    "canhgac.system.id": "keyword",
    "canhgac.system.name": "keyword",
    "canhgac.system.level": "long",
    "canhgac.unit.name": "keyword",
    "canhgac.agent.id": "keyword",
    "canhgac.layer": "keyword",
}

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
