"""Where rule fields live in our events.

Rules are written either with ECS field names (``process.command_line``) or with
the Sigma community's Sysmon-style names (``CommandLine``); the table below maps
the latter onto ECS so community Linux rules run unchanged. Any name with a dot
is taken as ECS as it is. A bare name we do not know is an error at load time:
silently looking up a field that never exists would make a rule that can never
fire, which is worse than refusing it.

Lookups are compiled once per field into small closures, because a generic
``split('.')`` walk per event per predicate is the single biggest cost of a
naive engine. Events on the hot path are nested ECS dicts; a flat dotted key is
looked up only as a fallback when the nested path is absent.

The table is documented in docs/detection.md; keep the two in step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Getter = Callable[[dict[str, Any]], Any]

# Sigma (Sysmon / Linux taxonomy) field name -> ECS field. Only names whose values
# mean the same thing on both sides: Sysmon's ``Hashes`` ("SHA256=...,MD5=..."),
# ``Initiated`` ("true") or ``LogonId`` have no faithful ECS counterpart here and
# are refused rather than mapped to something that would silently never match.
SIGMA_TO_ECS: dict[str, str] = {
    # process
    "CommandLine": "process.command_line",
    "Image": "process.executable",
    "OriginalFileName": "process.name",
    "ProcessName": "process.name",
    "ProcessId": "process.pid",
    "CurrentDirectory": "process.working_directory",
    "ParentImage": "process.parent.executable",
    "ParentCommandLine": "process.parent.command_line",
    "ParentProcessId": "process.parent.pid",
    "User": "user.name",
    # authentication / iam
    "TargetUserName": "user.target.name",
    "SubjectUserName": "user.name",
    "UserName": "user.name",
    "pam_user": "user.name",
    "TargetUserId": "user.target.id",
    # files
    "TargetFilename": "file.path",
    "FileName": "file.name",
    "FilePath": "file.path",
    # network
    "SourceIp": "source.ip",
    "SourcePort": "source.port",
    "SourceHostname": "source.domain",
    "DestinationIp": "destination.ip",
    "DestinationPort": "destination.port",
    "DestinationHostname": "destination.domain",
    "Protocol": "network.transport",
    "QueryName": "dns.question.name",
    "QueryType": "dns.question.type",
    # host
    "Computer": "host.hostname",
    "ComputerName": "host.hostname",
    "Hostname": "host.hostname",
}

# Where field-less Sigma keywords are searched (they mean "anywhere in the log line").
KEYWORD_FIELDS: tuple[str, ...] = ("message", "event.original")

# Sigma logsource -> our event.dataset. Checked in order: (category, product, service),
# with None meaning "any". Our own datasets are reachable directly as
# ``logsource: {product: canhgac, service: <dataset>}``.
LOGSOURCE_TO_DATASET: tuple[tuple[str | None, str | None, str | None, str], ...] = (
    ("process_creation", None, None, "process"),
    ("file_event", None, None, "file"),
    ("file_change", None, None, "file"),
    ("file_delete", None, None, "file"),
    ("file_rename", None, None, "file"),
    ("network_connection", None, None, "socket"),
    ("dns_query", None, None, "dns"),
    ("dns", None, None, "dns"),
    ("authentication", None, None, "auth"),
    (None, "linux", "auth", "auth"),
    (None, "linux", "sshd", "auth"),
    (None, "linux", "sudo", "auth"),
    (None, "linux", "su", "auth"),
    (None, "linux", "syslog", "raw"),
)

# ``product: linux`` with no service nor category: "any Linux log", in practice keyword
# rules over syslog lines. The log lines canhgac collects are the auth_log probe's (the
# auth and authpriv facilities, sudo command lines among them): parsed ones in ``auth``
# and ``iam``, the rest in ``raw``; all keep the whole line in ``event.original``.
SYSLOG_DATASETS: tuple[str, ...] = ("auth", "iam", "raw")

# Log sources canhgac collects nothing for, with the reason code a rule for them is
# refused under (the other unknown log sources are refused as ``logsource``).
NO_TELEMETRY: dict[str, str] = {"auditd": "no_auditd_telemetry"}

# Fields a dataset's events never carry, as prefixes: a rule that cannot match without
# one of them can never fire and is refused (``never_fires``). Keep in step with the
# probes: file events come from integrity scans (no process is known to have done it),
# socket events are listening sockets (server.*, no destination yet).
NEVER_CARRIED: dict[str, tuple[str, ...]] = {
    "file": ("process.",),
    # outbound connections carry destination.ip/port (socket probe), never a name
    "socket": ("destination.domain",),
}


def never_carried(dataset: str, path: str) -> bool:
    """Whether ``dataset``'s events never carry the field ``path``."""
    return path.startswith(NEVER_CARRIED.get(dataset, ()))


# What a Sigma category means beyond its dataset: the ECS ``event.type`` values an event
# must carry. ``process_creation`` is a process *start* (not its end, not a baseline);
# ``file_event`` is a file created or modified (SigmaHQ's meaning), never deleted.
LOGSOURCE_EVENT_TYPES: dict[str, frozenset[str]] = {
    "process_creation": frozenset({"start"}),
    "file_event": frozenset({"creation", "change"}),
    "file_change": frozenset({"change"}),
    "file_delete": frozenset({"deletion"}),
    "file_rename": frozenset({"change"}),
}


def event_type_guard(category: str | None) -> frozenset[str] | None:
    """The event.type values a Sigma category requires, or None (no constraint)."""
    return LOGSOURCE_EVENT_TYPES.get(category) if category else None


class UnknownField(ValueError):
    """A bare (dot-less) field name that is neither ECS nor in SIGMA_TO_ECS."""


def to_ecs(name: str) -> str:
    """The ECS path a rule field refers to; raises UnknownField for unknown bare names."""
    if "." in name or name.startswith("@") or name in ("message", "tags", "labels"):
        return name
    mapped = SIGMA_TO_ECS.get(name)
    if mapped is None:
        raise UnknownField(
            f"unknown field {name!r}: use an ECS field name (e.g. process.command_line) "
            "or a Sigma field listed in docs/detection.md"
        )
    return mapped


def dataset_for_logsource(
    category: str | None, product: str | None, service: str | None, known: frozenset[str]
) -> tuple[str, ...] | None:
    """The datasets a Sigma logsource reads, or None when we produce no such telemetry."""
    if product == "canhgac":
        name = service or category
        return (name,) if name in known else None
    if product == "linux" and service is None and category is None:
        return SYSLOG_DATASETS
    for cat, prod, svc, dataset in LOGSOURCE_TO_DATASET:
        if cat is not None and cat != category:
            continue
        if prod is not None and prod != product:
            continue
        if svc is not None and svc != service:
            continue
        return (dataset,)
    return None


def make_getter(path: str) -> Getter:
    """A closure reading ``path`` from a nested event (flat dotted key as fallback)."""
    parts = path.split(".")
    if len(parts) == 1:
        (key,) = parts
        return lambda doc: doc.get(key)
    if len(parts) == 2:
        a, b = parts

        def get2(doc: dict[str, Any]) -> Any:
            x = doc.get(a)
            if x.__class__ is dict:
                return x.get(b)
            return doc.get(path) if x is None else None

        return get2
    if len(parts) == 3:
        a, b, c = parts

        def get3(doc: dict[str, Any]) -> Any:
            x = doc.get(a)
            if x.__class__ is dict:
                y = x.get(b)
                if y.__class__ is dict:
                    return y.get(c)
                return None
            return doc.get(path) if x is None else None

        return get3
    head, rest = parts[0], parts[1:]

    def getn(doc: dict[str, Any]) -> Any:
        cur = doc.get(head)
        if cur is None:
            return doc.get(path)
        for part in rest:
            if cur.__class__ is not dict:
                return None
            cur = cur.get(part)
        return cur

    return getn


def make_key_getter(paths: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A closure returning the tuple of values a rule groups by (None where absent)."""
    getters = tuple(make_getter(p) for p in paths)
    if len(getters) == 1:
        (g,) = getters
        return lambda doc: (_hashable(g(doc)),)
    return lambda doc: tuple(_hashable(g(doc)) for g in getters)


def _hashable(value: Any) -> Any:
    if value.__class__ is list:
        return tuple(_hashable(v) for v in value)
    if value.__class__ is dict:
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value
