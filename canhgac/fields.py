"""Field types of the event schema: the one table of which ECS field holds what.

``FIELD_TYPES`` maps a dotted ECS (or ``canhgac.*``) field name to its type, in
Elasticsearch's vocabulary (``keyword``, ``ip``, ``long``, ``double``, ``float``,
``date``) plus the logical type :data:`FREE_TEXT`. Everything built on the
schema reads it from here: the Elasticsearch mappings
(``shipper.outputs.elasticsearch.mappings``), the query language
(``collector.query.fields``) and the collector's per-line validation
(``collector.validate``), so a field is typed the same way where it is checked,
stored and searched. Fields not listed are mapped dynamically (strings ->
keyword, integers -> long, floats -> double).

Free text fields (``message``, command lines, URLs) are :data:`FREE_TEXT`: stored
as ``keyword`` and searched with case-insensitive "contains" (see
``shipper.outputs.elasticsearch.mappings`` for why not ``text``).

This module is part of the kernel: it imports nothing from agent, collector or
shipper.
"""

from __future__ import annotations

KEYWORD = "keyword"
FREE_TEXT = "free_text"
IP = "ip"
LONG = "long"
DOUBLE = "double"
FLOAT = "float"
DATE = "date"

# Fields that ECS defines as arrays (a list of values is normal there).
ARRAY_FIELDS = frozenset({
    "tags", "event.category", "event.type", "host.ip", "host.mac", "process.args",
    "dns.resolved_ip", "rule.reference", "related.ip", "related.user", "related.hosts",
    "related.hash",
})


# ES field type of every field we map explicitly.
FIELD_TYPES: dict[str, str] = {
    "@timestamp": DATE,
    "message": FREE_TEXT,
    "tags": KEYWORD,
    "ecs.version": KEYWORD,
    # event.*
    "event.id": KEYWORD,
    "event.kind": KEYWORD,
    "event.dataset": KEYWORD,
    "event.module": KEYWORD,
    "event.category": KEYWORD,
    "event.type": KEYWORD,
    "event.action": KEYWORD,
    "event.outcome": KEYWORD,
    "event.code": KEYWORD,
    "event.provider": KEYWORD,
    "event.reason": KEYWORD,
    "event.hash": KEYWORD,
    "event.timezone": KEYWORD,
    "event.created": DATE,
    "event.ingested": DATE,
    "event.start": DATE,
    "event.end": DATE,
    "event.severity": LONG,
    "event.duration": LONG,
    "event.sequence": LONG,
    "event.risk_score": FLOAT,
    "event.original": KEYWORD,
    # agent / host
    "agent.id": KEYWORD,
    "agent.name": KEYWORD,
    "agent.type": KEYWORD,
    "agent.version": KEYWORD,
    "agent.ephemeral_id": KEYWORD,
    "host.id": KEYWORD,
    "host.name": KEYWORD,
    "host.hostname": KEYWORD,
    "host.architecture": KEYWORD,
    "host.type": KEYWORD,
    "host.domain": KEYWORD,
    "host.ip": IP,
    "host.mac": KEYWORD,
    "host.uptime": LONG,
    "host.boot.id": KEYWORD,
    "host.os.family": KEYWORD,
    "host.os.name": KEYWORD,
    "host.os.kernel": KEYWORD,
    "host.os.platform": KEYWORD,
    "host.os.type": KEYWORD,
    "host.os.version": KEYWORD,
    "host.os.full": KEYWORD,
    "host.cpu.usage": DOUBLE,
    "host.network.ingress.bytes": LONG,
    "host.network.ingress.packets": LONG,
    "host.network.egress.bytes": LONG,
    "host.network.egress.packets": LONG,
    "host.disk.read.bytes": LONG,
    "host.disk.write.bytes": LONG,
    # process
    "process.pid": LONG,
    "process.ppid": LONG,
    "process.pgid": LONG,
    "process.name": KEYWORD,
    "process.executable": KEYWORD,
    "process.working_directory": KEYWORD,
    "process.entity_id": KEYWORD,
    "process.command_line": FREE_TEXT,
    "process.args": KEYWORD,
    "process.args_count": LONG,
    "process.start": DATE,
    "process.end": DATE,
    "process.exit_code": LONG,
    "process.tty.char_device.major": LONG,
    "process.hash.sha256": KEYWORD,
    "process.user.id": KEYWORD,
    "process.user.name": KEYWORD,
    "process.parent.pid": LONG,
    "process.parent.name": KEYWORD,
    "process.parent.executable": KEYWORD,
    "process.parent.entity_id": KEYWORD,
    "process.parent.command_line": FREE_TEXT,
    # user
    "user.id": KEYWORD,
    "user.name": KEYWORD,
    "user.domain": KEYWORD,
    "user.full_name": KEYWORD,
    "user.email": KEYWORD,
    "user.effective.id": KEYWORD,
    "user.effective.name": KEYWORD,
    "user.target.id": KEYWORD,
    "user.target.name": KEYWORD,
    # network endpoints
    "source.ip": IP,
    "source.port": LONG,
    "source.address": KEYWORD,
    "source.domain": KEYWORD,
    "source.mac": KEYWORD,
    "source.bytes": LONG,
    "source.packets": LONG,
    "destination.ip": IP,
    "destination.port": LONG,
    "destination.address": KEYWORD,
    "destination.domain": KEYWORD,
    "destination.mac": KEYWORD,
    "destination.bytes": LONG,
    "destination.packets": LONG,
    "client.ip": IP,
    "client.port": LONG,
    "client.address": KEYWORD,
    "client.domain": KEYWORD,
    "server.ip": IP,
    "server.port": LONG,
    "server.address": KEYWORD,
    "server.domain": KEYWORD,
    "network.transport": KEYWORD,
    "network.type": KEYWORD,
    "network.protocol": KEYWORD,
    "network.direction": KEYWORD,
    "network.community_id": KEYWORD,
    "network.iana_number": KEYWORD,
    "network.bytes": LONG,
    "network.packets": LONG,
    # file
    "file.path": KEYWORD,
    "file.name": KEYWORD,
    "file.directory": KEYWORD,
    "file.extension": KEYWORD,
    "file.type": KEYWORD,
    "file.owner": KEYWORD,
    "file.group": KEYWORD,
    "file.mode": KEYWORD,
    "file.inode": KEYWORD,
    "file.target_path": KEYWORD,
    "file.size": LONG,
    "file.mtime": DATE,
    "file.ctime": DATE,
    "file.hash.md5": KEYWORD,
    "file.hash.sha1": KEYWORD,
    "file.hash.sha256": KEYWORD,
    "file.hash.sha512": KEYWORD,
    # dns
    "dns.id": KEYWORD,
    "dns.type": KEYWORD,
    "dns.question.name": KEYWORD,
    "dns.question.type": KEYWORD,
    "dns.question.class": KEYWORD,
    "dns.question.registered_domain": KEYWORD,
    "dns.response_code": KEYWORD,
    "dns.resolved_ip": IP,
    # detection
    "rule.id": KEYWORD,
    "rule.uuid": KEYWORD,
    "rule.name": KEYWORD,
    "rule.category": KEYWORD,
    "rule.ruleset": KEYWORD,
    "rule.reference": KEYWORD,
    "rule.version": KEYWORD,
    "rule.author": KEYWORD,
    "rule.description": KEYWORD,
    "threat.indicator.ip": IP,
    "threat.indicator.type": KEYWORD,
    "threat.indicator.provider": KEYWORD,
    "threat.indicator.id": KEYWORD,
    "error.message": FREE_TEXT,
    "error.type": KEYWORD,
    "error.code": KEYWORD,
    "error.id": KEYWORD,
    "log.level": KEYWORD,
    "log.logger": KEYWORD,
    "log.file.path": KEYWORD,
    "url.full": FREE_TEXT,
    "url.original": FREE_TEXT,
    "url.domain": KEYWORD,
    "url.path": KEYWORD,
    "service.name": KEYWORD,
    "service.type": KEYWORD,
    "service.state": KEYWORD,
    "related.ip": IP,
    "related.user": KEYWORD,
    "related.hosts": KEYWORD,
    "related.hash": KEYWORD,
    # ours: set by the collector from credentials + inventory
    "canhgac.system.id": KEYWORD,
    "canhgac.system.name": KEYWORD,
    "canhgac.system.level": LONG,
    "canhgac.unit.name": KEYWORD,
    "canhgac.agent.id": KEYWORD,
    "canhgac.layer": KEYWORD,
}


def endpoint_fields(field_type: str, leaf: str | None = None) -> tuple[tuple[str, str], ...]:
    """``(parent, leaf)`` of the single-valued two-level fields of ``field_type``.

    ``endpoint_fields(IP)`` is ``(("source", "ip"), ("destination", "ip"), ...)``:
    the shape ``collector.validate`` checks on every incoming line. ``leaf``
    keeps only fields with that last part (``endpoint_fields(LONG, "port")``).
    """
    out: list[tuple[str, str]] = []
    for name, ftype in FIELD_TYPES.items():
        parts = name.split(".")
        if ftype != field_type or len(parts) != 2 or name in ARRAY_FIELDS:
            continue
        if leaf is not None and parts[1] != leaf:
            continue
        out.append((parts[0], parts[1]))
    return tuple(out)
