"""User sessions: login/logout, from the utmp table (``psutil.users()``).

Each scan reads utmp (a few hundred bytes) and diffs the set of sessions.
Fields follow ECS (``user.name``, ``source.ip`` / ``source.domain``,
``process.pid``) plus ``user.terminal`` as Auditbeat's login dataset names the
tty, which ECS does not cover. Events are ``session`` and ``authentication``:
a login is a successful authentication as far as utmp can tell; failed logins
come from the auth_log probe.

The first scan is the baseline: sessions already open are reported once as
kind ``state`` (who is logged in when the agent starts), not as logins.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import psutil

from agent.probes.base import Emit, Probe, ProbeConfig, ProbeContext
from canhgac.config import Duration, field_meta
from canhgac.schema import SESSION, new_event
from canhgac.timeutil import from_epoch


@dataclass
class SessionConfig(ProbeConfig):
    interval: Duration = field(default=Duration(10), metadata=field_meta(min=1))


class Session(NamedTuple):
    user: str
    terminal: str
    host: str
    started: float
    pid: int | None


def _key(s: Session) -> tuple[str, str, str, float]:
    return (s.user, s.terminal, s.host, s.started)


def current_sessions() -> list[Session]:
    return [
        Session(u.name or "", u.terminal or "", u.host or "", float(u.started or 0),
                getattr(u, "pid", None))
        for u in psutil.users()
    ]


def diff_sessions(old: dict[Any, Session], new: list[Session]) -> tuple[list[Session], list[Session]]:
    """(logins, logouts) between the previous map (key -> Session) and a new scan."""
    new_map = {_key(s): s for s in new}
    logins = [s for k, s in new_map.items() if k not in old]
    logouts = [s for k, s in old.items() if k not in new_map]
    return logins, logouts


def session_fields(s: Session) -> dict[str, Any]:
    fields: dict[str, Any] = {"user": {"name": s.user}}
    if s.terminal:
        fields["user"]["terminal"] = s.terminal
    host = s.host.strip()
    if host and host not in (":0", "localhost"):
        try:
            fields["source"] = {"ip": str(ipaddress.ip_address(host.split("%", 1)[0]))}
        except ValueError:
            fields["source"] = {"domain": host}
    if s.pid:
        fields["process"] = {"pid": s.pid}
    return fields


class SessionProbe(Probe[SessionConfig]):
    name = "session"
    datasets = (SESSION,)

    def __init__(self, config: SessionConfig, context: ProbeContext) -> None:
        super().__init__(config, context)
        self.sessions: dict[tuple[str, str, str, float], Session] = {}
        self.logins = 0
        self.logouts = 0

    def scan_once(self, sessions: list[Session], first: bool = False) -> list[dict[str, Any]]:
        logins, logouts = diff_sessions(self.sessions, sessions)
        events: list[dict[str, Any]] = []
        for s in logins:
            start = from_epoch(s.started) if s.started else None
            where = f" from {s.host}" if s.host else ""
            if first:
                events.append(new_event(
                    SESSION, kind="state", category=["session"], type=["info"],
                    action="user-session-active", timestamp=None,
                    message=f"{s.user} logged in on {s.terminal}{where} (since {start})",
                    **session_fields(s),
                ))
                continue
            self.logins += 1
            events.append(new_event(
                SESSION, kind="event", category=["authentication", "session"],
                type=["start"], action="user-login", outcome="success", timestamp=start,
                message=f"{s.user} logged in on {s.terminal}{where}",
                **session_fields(s),
            ))
        for s in logouts:
            self.logouts += 1
            events.append(new_event(
                SESSION, kind="event", category=["session"], type=["end"], action="user-logout",
                message=f"{s.user} logged out of {s.terminal}",
                **session_fields(s),
            ))
        self.sessions = {_key(s): s for s in sessions}
        return events

    async def run(self, emit: Emit) -> None:
        events = self.scan_once(current_sessions(), first=True)
        if events:
            await emit(events)
        while True:
            await asyncio.sleep(self.config.interval)
            events = self.scan_once(current_sessions())
            if events:
                await emit(events)

    def status(self) -> dict[str, Any]:
        return {"active": len(self.sessions), "logins": self.logins, "logouts": self.logouts}
