"""Parse auth log lines (sshd, sudo, su, shadow-utils) into ECS events.

Pure functions, no I/O, so every pattern is tested against real-format lines.

Three line shapes reach us:

* RFC 3164 (``Nov 23 15:38:06 host sshd[123]: msg``): no year and no zone. The
  time is the host's local time (that is what rsyslog writes), the year is the
  current one unless that puts the line more than a day in the future (a
  December line read in January), in which case it is last year.
* RFC 3339 (``2026-11-23T15:38:06.123456+07:00 host sshd[123]: msg``), the
  rsyslog default on newer distributions.
* A bare message with no header at all (``sshd -E file`` writes these). Only
  the sshd patterns are tried; the time is when the line was read.

A line that matches nothing is still returned, as a ``raw`` event carrying
``event.original``: an unknown line is not dropped, it is just not understood.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from canhgac.schema import AUTH, IAM, RAW, new_event
from canhgac.timeutil import format_rfc3339

_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

_RFC3164 = re.compile(
    r"^(?:<\d{1,3}>)?(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) "
    r"(?P<time>\d\d:\d\d:\d\d)(?:\.(?P<frac>\d{1,6}))? (?P<host>\S+) (?P<rest>.*)$"
)
_RFC3339 = re.compile(
    r"^(?:<\d{1,3}>1? ?)?(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?"
    r"(?:Z|[+-]\d\d:?\d\d)?) (?P<host>\S+) (?P<rest>.*)$"
)
_TAG = re.compile(r"^(?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)$")

# ---------------------------------------------------------------- sshd
_IP = r"(?P<ip>[0-9A-Fa-f:.]+?)"
_SSH_PATTERNS: list[tuple[re.Pattern[str], str, str, list[str]]] = [
    # (pattern, action, outcome, event.type)
    (re.compile(r"^Accepted (?P<method>\S+) for (?P<user>\S+) from " + _IP
                + r" port (?P<port>\d+)(?: ssh2)?(?::\s*(?P<key>.*))?$"),
     "ssh_login", "success", ["start"]),
    (re.compile(r"^Failed (?P<method>\S+) for invalid user (?P<user>.*?) from " + _IP
                + r" port (?P<port>\d+)(?: ssh2)?(?::\s*(?P<key>.*))?$"),
     "ssh_login", "failure", ["start"]),
    (re.compile(r"^Failed (?P<method>\S+) for (?P<user>\S+) from " + _IP
                + r" port (?P<port>\d+)(?: ssh2)?(?::\s*(?P<key>.*))?$"),
     "ssh_login", "failure", ["start"]),
    (re.compile(r"^Invalid user (?P<user>.*?) from " + _IP + r"(?: port (?P<port>\d+))?$"),
     "ssh_invalid_user", "failure", ["start"]),
    (re.compile(r"^(?:error: )?maximum authentication attempts exceeded for (?:invalid user )?"
                r"(?P<user>\S+) from " + _IP + r" port (?P<port>\d+).*$"),
     "ssh_max_auth_exceeded", "failure", ["start"]),
    (re.compile(r"^Received disconnect from " + _IP + r" port (?P<port>\d+):(?P<reason>.*?)"
                r"(?: \[preauth\])?$"),
     "ssh_disconnect", "unknown", ["end"]),
    (re.compile(r"^Disconnected from (?:(?:invalid |authenticating )?user (?P<user>\S+) )?"
                + _IP + r" port (?P<port>\d+)(?: \[preauth\])?$"),
     "ssh_disconnect", "unknown", ["end"]),
    (re.compile(r"^Connection (?:closed|reset) by (?:(?:invalid |authenticating )?user "
                r"(?P<user>\S+) )?" + _IP + r" port (?P<port>\d+)(?: \[preauth\])?$"),
     "ssh_disconnect", "unknown", ["end"]),
    (re.compile(r"^Connection from " + _IP + r" port (?P<port>\d+) on \S+ port \d+.*$"),
     "ssh_connection", "unknown", ["start"]),
    (re.compile(r"^Did not receive identification string from " + _IP
                + r"(?: port (?P<port>\d+))?$"),
     "ssh_no_identification", "failure", ["start"]),
]

_PAM_SESSION = re.compile(
    r"^pam_unix\((?P<svc>[\w-]+):session\): session (?P<what>opened|closed) for user "
    r"(?P<user>[^\s(]+)(?:\(uid=(?P<uid>\d+)\))?(?: by (?P<by>[^\s(]*)(?:\(uid=(?P<byuid>\d+)\))?)?"
)
_PAM_AUTHFAIL = re.compile(
    r"^pam_unix\((?P<svc>[\w-]+):auth\): authentication failure;(?P<kv>.*)$"
)
_KV = re.compile(r"(\w+)=(\S*)")

# ---------------------------------------------------------------- sudo / su
_SUDO = re.compile(
    r"^\s*(?P<user>\S+) : (?:(?P<reason>[^;]*?) ; )?TTY=(?P<tty>[^;]*) ; PWD=(?P<pwd>[^;]*) ; "
    r"USER=(?P<target>[^;]*?)(?: ; GROUP=[^;]*)?(?: ; ENV=[^;]*)? ; COMMAND=(?P<cmd>.*)$"
)
_SU_OK = re.compile(r"^\(to (?P<target>\S+)\) (?P<user>\S+) on (?P<tty>\S+)$")
_SU_FAIL = re.compile(r"^FAILED SU \(to (?P<target>\S+)\) (?P<user>\S+) on (?P<tty>\S+)$")
_SU_OLD = re.compile(r"^Successful su for (?P<target>\S+) by (?P<user>\S+)$")
_SU_OLD_PM = re.compile(r"^(?P<sign>[+-]) (?P<tty>\S+) (?P<user>[^:\s]+):(?P<target>\S+)$")

# ---------------------------------------------------------------- shadow-utils
_NEW_USER = re.compile(
    r"^new user: name=(?P<user>[^,]+), UID=(?P<uid>\d+), GID=(?P<gid>\d+), home=(?P<home>[^,]*), "
    r"shell=(?P<shell>[^,]*)"
)
_NEW_GROUP = re.compile(r"^new group: name=(?P<group>[^,]+), GID=(?P<gid>\d+)")
_GROUP_ADDED = re.compile(r"^group added to (?P<file>\S+): name=(?P<group>[^,]+)(?:, GID=(?P<gid>\d+))?")
_ADD_TO_GROUP = re.compile(r"^add '(?P<user>[^']+)' to (?:shadow )?group '(?P<group>[^']+)'")
_DEL_FROM_GROUP = re.compile(r"^delete '(?P<user>[^']+)' from (?:shadow )?group '(?P<group>[^']+)'")
_DELETE_USER = re.compile(r"^delete user '(?P<user>[^']+)'")
_REMOVED_GROUP = re.compile(r"^removed (?:shadow )?group '(?P<group>[^']+)' owned by '(?P<user>[^']+)'")
_GROUP_REMOVED = re.compile(r"^group '(?P<group>[^']+)' removed")
_CHANGE_USER = re.compile(r"^change user '(?P<user>[^']+)' (?P<what>.+)$")
_CHANGE_NAME = re.compile(r"^change user name '(?P<old>[^']+)' to '(?P<user>[^']+)'")
_LOCK_USER = re.compile(r"^(?P<what>lock|unlock) user '(?P<user>[^']+)' password")
_PW_CHANGED_PAM = re.compile(r"^pam_unix\([\w-]+:chauthtok\): password changed for (?P<user>\S+)")
_PW_CHANGED = re.compile(r"^password for '(?P<user>[^']+)' changed by '(?P<by>[^']+)'")
_PW_CHANGED_SHORT = re.compile(r"^password changed for '(?P<user>[^']+)'")

_SSH_PROGRAMS = frozenset({"sshd", "sshd-session", "sshd-auth"})
_IAM_PROGRAMS = frozenset({
    "useradd", "userdel", "usermod", "groupadd", "groupdel", "groupmod", "passwd", "chpasswd",
    "gpasswd", "adduser", "deluser", "addgroup", "delgroup", "chage", "newusers",
})


class Header:
    """The syslog envelope of one line."""

    __slots__ = ("timestamp", "host", "program", "pid", "message")

    def __init__(self, timestamp: str | None, host: str | None, program: str | None,
                 pid: int | None, message: str) -> None:
        self.timestamp = timestamp
        self.host = host
        self.program = program
        self.pid = pid
        self.message = message


def _rfc3164_time(mon: str, day: str, hms: str, frac: str | None, now: datetime) -> str | None:
    month = _MONTHS.get(mon)
    if month is None:
        return None
    h, m, s = (int(x) for x in hms.split(":"))
    micro = int((frac or "0").ljust(6, "0")[:6])
    local_now = now.astimezone()
    tz = local_now.tzinfo
    try:
        dt = datetime(local_now.year, month, int(day), h, m, s, micro, tzinfo=tz)
        if dt - local_now > timedelta(days=1):
            dt = dt.replace(year=dt.year - 1)
    except ValueError:  # 29 Feb in a non-leap "current" year: the line is from a leap year
        try:
            dt = datetime(local_now.year - 1, month, int(day), h, m, s, micro, tzinfo=tz)
        except ValueError:
            return None
    # Re-resolve the zone for the line's own date (DST differs from "now").
    dt = dt.replace(tzinfo=None).astimezone()
    return format_rfc3339(dt)


def _rfc3339_time(text: str) -> str | None:
    t = text.replace(" ", "T", 1)
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    elif re.search(r"[+-]\d{4}$", t):
        t = t[:-2] + ":" + t[-2:]
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.astimezone()  # naive: the host's local time, like RFC 3164
    return format_rfc3339(dt)


def split_header(line: str, now: datetime | None = None) -> Header:
    """Split a syslog line into its envelope and message; a bare line has no envelope."""
    now = now or datetime.now(UTC)
    ts = host = None
    rest = line
    m = _RFC3339.match(line)
    if m:
        ts = _rfc3339_time(m.group("ts"))
        if ts is not None:
            host, rest = m.group("host"), m.group("rest")
    if ts is None:
        m = _RFC3164.match(line)
        if m:
            ts = _rfc3164_time(m.group("mon"), m.group("day"), m.group("time"), m.group("frac"),
                               now)
            if ts is not None:
                host, rest = m.group("host"), m.group("rest")
    if ts is None:
        return Header(None, None, None, None, line)
    t = _TAG.match(rest)
    if not t:
        return Header(ts, host, None, None, rest)
    pid = t.group("pid")
    return Header(ts, host, t.group("prog"), int(pid) if pid else None, t.group("msg"))


def _related(users: list[str | None], ips: list[str | None]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    u = sorted({x for x in users if x})
    i = sorted({x for x in ips if x})
    if u:
        out["user"] = u
    if i:
        out["ip"] = i
    return out


def _base(h: Header, line: str, dataset: str, *, category: list[str], type_: list[str],
          action: str, outcome: str | None, user: dict[str, Any] | None = None,
          source: dict[str, Any] | None = None, related: dict[str, list[str]] | None = None,
          **extra: Any) -> dict[str, Any]:
    process: dict[str, Any] = {}
    if h.program:
        process["name"] = h.program
    if h.pid is not None:
        process["pid"] = h.pid
    if "process" in extra:
        process.update(extra.pop("process"))
    return new_event(
        dataset, category=category, type=type_, action=action, outcome=outcome,
        timestamp=h.timestamp,
        user=user or None, source=source or None, related=related or None,
        process=process or None,
        host={"hostname": h.host} if h.host else None,
        **extra,
    )


def _source(ip: str | None, port: str | None) -> dict[str, Any] | None:
    if not ip:
        return None
    src: dict[str, Any] = {"ip": ip, "address": ip}
    if port:
        src["port"] = int(port)
    return src


def _parse_sshd(h: Header, line: str) -> dict[str, Any] | None:
    msg = h.message.rstrip()
    for pattern, action, outcome, etype in _SSH_PATTERNS:
        m = pattern.match(msg)
        if not m:
            continue
        g = m.groupdict()
        user = g.get("user")
        ip, port = g.get("ip"), g.get("port")
        category = {"ssh_connection": ["network"],
                    "ssh_disconnect": ["authentication", "session"]}.get(action, ["authentication"])
        ev = _base(
            h, line, AUTH, category=category, type_=etype, action=action, outcome=outcome,
            user={"name": user} if user else None, source=_source(ip, port),
            related=_related([user], [ip]),
            network={"protocol": "ssh"},
        )
        if g.get("reason"):
            ev["event"]["reason"] = g["reason"].strip()
        details = {k: g[k].strip() for k in ("method", "key") if g.get(k)}
        if details:
            ev["canhgac"] = {"ssh": details}
        if "invalid user" in msg and action == "ssh_login":
            ev["event"]["reason"] = "invalid user"
        return ev
    return _parse_pam(h, line)


def _parse_pam(h: Header, line: str) -> dict[str, Any] | None:
    msg = h.message
    m = _PAM_SESSION.match(msg)
    if m:
        opened = m.group("what") == "opened"
        user, by = m.group("user"), m.group("by") or None
        svc = m.group("svc")
        u: dict[str, Any] = {"name": user}
        if m.group("uid"):
            u["id"] = m.group("uid")
        return _base(h, line, AUTH, category=["session"], type_=["start" if opened else "end"],
                     action=f"{svc}_session_{'open' if opened else 'close'}", outcome="success",
                     user=u, related=_related([user, by], []))
    m = _PAM_AUTHFAIL.match(msg)
    if m:
        kv = dict(_KV.findall(m.group("kv")))
        svc = m.group("svc")
        user = kv.get("user") or None
        ruser = kv.get("ruser") or kv.get("logname") or None
        rhost = kv.get("rhost") or None
        ip = rhost if rhost and re.fullmatch(r"[0-9A-Fa-f:.]+", rhost) else None
        ev = _base(h, line, AUTH, category=["authentication"], type_=["start"],
                   action=f"{svc}_auth_failure", outcome="failure",
                   user={"name": user} if user else None,
                   source=_source(ip, None) if ip else ({"address": rhost} if rhost else None),
                   related=_related([user, ruser], [ip]))
        if ruser and ruser != user:
            ev.setdefault("user", {})["effective"] = {"name": ruser}
        return ev
    return None


def _parse_sudo(h: Header, line: str) -> dict[str, Any] | None:
    m = _SUDO.match(h.message)
    if m:
        user, target, reason = m.group("user"), m.group("target"), m.group("reason")
        outcome = "failure" if reason else "success"
        ev = _base(h, line, AUTH, category=["authentication", "process"], type_=["start"],
                   action="sudo", outcome=outcome,
                   user={"name": user, "effective": {"name": target}},
                   related=_related([user, target], []),
                   process={"command_line": m.group("cmd"),
                            "working_directory": m.group("pwd")})
        if reason:
            ev["event"]["reason"] = reason.strip()
        ev.setdefault("canhgac", {})["sudo"] = {"tty": m.group("tty")}
        return ev
    return _parse_pam(h, line)


def _parse_su(h: Header, line: str) -> dict[str, Any] | None:
    msg = h.message
    for pattern, outcome in ((_SU_OK, "success"), (_SU_FAIL, "failure"), (_SU_OLD, "success")):
        m = pattern.match(msg)
        if m:
            user, target = m.group("user"), m.group("target")
            return _base(h, line, AUTH, category=["authentication"], type_=["start"],
                         action="su", outcome=outcome,
                         user={"name": user, "effective": {"name": target}},
                         related=_related([user, target], []))
    m = _SU_OLD_PM.match(msg)
    if m:
        user, target = m.group("user"), m.group("target")
        return _base(h, line, AUTH, category=["authentication"], type_=["start"], action="su",
                     outcome="success" if m.group("sign") == "+" else "failure",
                     user={"name": user, "effective": {"name": target}},
                     related=_related([user, target], []))
    return _parse_pam(h, line)


def _iam(h: Header, line: str, *, action: str, type_: list[str], user: str | None = None,
         group: str | None = None, uid: str | None = None, gid: str | None = None,
         reason: str | None = None, by: str | None = None) -> dict[str, Any]:
    """User management: the subject is the account acted on (the log rarely names the actor)."""
    u: dict[str, Any] = {}
    if user:
        u = {"name": user, "target": {"name": user}}
        if uid is not None:
            u["id"] = uid
            u["target"]["id"] = uid
    g: dict[str, Any] | None = None
    if group:
        g = {"name": group}
        if gid is not None:
            g["id"] = gid
        if user:
            u["target"]["group"] = dict(g)
    ev = _base(h, line, IAM, category=["iam"], type_=type_, action=action, outcome="success",
               user=u or None, group=g, related=_related([user, by], []))
    if reason:
        ev["event"]["reason"] = reason
    return ev


def _parse_iam(h: Header, line: str) -> dict[str, Any] | None:
    msg = h.message
    m = _NEW_USER.match(msg)
    if m:
        ev = _iam(h, line, action="user_created", type_=["user", "creation"], user=m.group("user"),
                  uid=m.group("uid"))
        ev["user"]["target"]["group"] = {"id": m.group("gid")}
        ev["canhgac"] = {"iam": {"home": m.group("home"), "shell": m.group("shell")}}
        return ev
    m = _CHANGE_NAME.match(msg)
    if m:
        ev = _iam(h, line, action="user_renamed", type_=["user", "change"], user=m.group("user"))
        ev["event"]["reason"] = f"renamed from {m.group('old')}"
        ev["related"] = _related([m.group("user"), m.group("old")], [])
        return ev
    m = _LOCK_USER.match(msg)
    if m:
        return _iam(h, line, action=f"user_{m.group('what')}ed", type_=["user", "change"],
                    user=m.group("user"))
    m = _CHANGE_USER.match(msg)
    if m:
        what = m.group("what")
        uid = re.match(r"UID from '\d+' to '(\d+)'", what)
        return _iam(h, line, action="user_modified", type_=["user", "change"],
                    user=m.group("user"), uid=uid.group(1) if uid else None, reason=what)
    m = _NEW_GROUP.match(msg)
    if m:
        return _iam(h, line, action="group_created", type_=["group", "creation"],
                    group=m.group("group"), gid=m.group("gid"))
    m = _GROUP_ADDED.match(msg)
    if m:
        return _iam(h, line, action="group_created", type_=["group", "creation"],
                    group=m.group("group"), gid=m.group("gid"), reason=f"added to {m.group('file')}")
    m = _ADD_TO_GROUP.match(msg)
    if m:
        return _iam(h, line, action="user_added_to_group", type_=["user", "group", "change"],
                    user=m.group("user"), group=m.group("group"))
    m = _DEL_FROM_GROUP.match(msg)
    if m:
        return _iam(h, line, action="user_removed_from_group", type_=["user", "group", "change"],
                    user=m.group("user"), group=m.group("group"))
    m = _DELETE_USER.match(msg)
    if m:
        return _iam(h, line, action="user_deleted", type_=["user", "deletion"],
                    user=m.group("user"))
    m = _REMOVED_GROUP.match(msg)
    if m:
        return _iam(h, line, action="group_deleted", type_=["group", "deletion"],
                    group=m.group("group"), user=m.group("user"))
    m = _GROUP_REMOVED.match(msg)
    if m:
        return _iam(h, line, action="group_deleted", type_=["group", "deletion"],
                    group=m.group("group"))
    for pattern in (_PW_CHANGED, _PW_CHANGED_SHORT, _PW_CHANGED_PAM):
        m = pattern.match(msg)
        if m:
            by = m.groupdict().get("by")
            return _iam(h, line, action="password_changed", type_=["user", "change"],
                        user=m.group("user"), by=by)
    return _parse_pam(h, line)


_DISPATCH: dict[str, Callable[[Header, str], dict[str, Any] | None]] = {
    **{p: _parse_sshd for p in _SSH_PROGRAMS},
    "sudo": _parse_sudo,
    "su": _parse_su,
    **{p: _parse_iam for p in _IAM_PROGRAMS},
}


def raw_event(line: str, header: Header | None = None) -> dict[str, Any]:
    """A line we do not understand: kept whole, marked as such."""
    h = header
    process: dict[str, Any] = {}
    if h and h.program:
        process["name"] = h.program
        if h.pid is not None:
            process["pid"] = h.pid
    return new_event(
        RAW, category=None, action="log_line", timestamp=h.timestamp if h else None,
        message=h.message if h else line,
        process=process or None,
        host={"hostname": h.host} if h and h.host else None,
    )


def parse_line(line: str, now: datetime | None = None) -> dict[str, Any]:
    """One log line (without its newline) -> one ECS event; never raises, never drops."""
    try:
        h = split_header(line, now)
        if h.program is None and h.timestamp is None:
            ev = _parse_sshd(h, line)  # bare `sshd -E` lines
        else:
            fn = _DISPATCH.get(h.program or "")
            ev = fn(h, line) if fn else _parse_pam(h, line)
        if ev is None:
            ev = raw_event(line, h)
    except Exception:  # a parser bug must not lose the line
        ev = raw_event(line, None)
        ev["event"]["kind"] = "pipeline_error"
    ev["event"]["original"] = line
    return ev


def parse_journal(entry: dict[str, Any]) -> dict[str, Any]:
    """One ``journalctl -o json`` entry -> one ECS event (same patterns as log lines).

    journald already split the envelope: the time (``__REALTIME_TIMESTAMP``, µs
    since the epoch, UTC), the host, the program and the pid come from its fields.
    ``event.original`` is rebuilt in syslog shape so both sources look alike."""
    message = entry.get("MESSAGE", "")
    if isinstance(message, list):  # journald gives non-UTF-8 messages as byte arrays
        message = bytes(message).decode("utf-8", "replace")
    program = entry.get("SYSLOG_IDENTIFIER") or entry.get("_COMM")
    pid_text = entry.get("SYSLOG_PID") or entry.get("_PID")
    try:
        pid = int(pid_text) if pid_text else None
    except ValueError:
        pid = None
    try:
        ts = format_rfc3339(datetime.fromtimestamp(int(entry["__REALTIME_TIMESTAMP"]) / 1e6, UTC))
    except (KeyError, ValueError):
        ts = None
    host = entry.get("_HOSTNAME")
    tag = f"{program}[{pid}]" if program and pid is not None else (program or "")
    original = f"{ts or ''} {host or '-'} {tag}: {message}".strip()
    h = Header(ts, host, program, pid, str(message))
    try:
        fn = _DISPATCH.get(program or "")
        ev = fn(h, original) if fn else _parse_pam(h, original)
        if ev is None:
            ev = raw_event(original, h)
    except Exception:
        ev = raw_event(original, None)
        ev["event"]["kind"] = "pipeline_error"
    ev["event"]["original"] = original
    return ev
