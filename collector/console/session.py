"""Console sessions: a random id in a cookie, the operator's token kept in memory only.

The token given at sign-in stays in this process (never on disk, never sent back
to the browser); every request re-authenticates it through the collector's
access layer, so a token revoked with ``canhgac collector revoke-operator``
closes its sessions on their next request. Store keys are SHA-256 of the cookie
value, so a lookup never compares secrets byte by byte. A restart signs
everyone out, which is the safe default.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

COOKIE = "cg_session"
COOKIE_PATH = "/ui/"


@dataclass
class Session:
    token: str  # the operator token (or the local admin token) signed in with
    csrf: str  # required on every write: a form field or the X-CSRF-Token header
    created: float
    last_active: float
    # A refused step's message, shown once by the next page: never carried in the URL,
    # where anyone could put words in the console's mouth with a crafted link.
    flash: str | None = None

    def take_flash(self) -> str | None:
        message, self.flash = self.flash, None
        return message


def _key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class SessionStore:
    def __init__(self, idle: float, absolute: float, max_sessions: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.idle = idle
        self.absolute = absolute
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, token: str) -> tuple[str, Session]:
        """A new session (a new id every sign-in: no fixation); the oldest go past the cap."""
        now = self.clock()
        self.purge(now)
        while len(self._sessions) >= self.max_sessions:
            oldest = min(self._sessions, key=lambda k: self._sessions[k].created)
            del self._sessions[oldest]
        sid = secrets.token_urlsafe(32)
        session = Session(token, secrets.token_urlsafe(32), now, now)
        self._sessions[_key(sid)] = session
        return sid, session

    def get(self, sid: str | None, touch: bool = True) -> Session | None:
        """The live session for a cookie value, or None (unknown, idle or too old: dropped).

        ``touch=False`` for the alert queue's polling: a page refreshing itself is not
        someone at the keyboard, so it must not hold the idle timeout off.
        """
        if not sid or len(sid) > 100:
            return None
        key = _key(sid)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self.clock()
        if now - session.created > self.absolute or now - session.last_active > self.idle:
            del self._sessions[key]
            return None
        if touch:
            session.last_active = now
        return session

    def drop(self, sid: str | None) -> None:
        if sid:
            self._sessions.pop(_key(sid), None)

    def purge(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        for key in [k for k, s in self._sessions.items()
                    if now - s.created > self.absolute or now - s.last_active > self.idle]:
            del self._sessions[key]
