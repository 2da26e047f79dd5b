"""SOC operators: API tokens with a role and a scope, stored hashed in the collector state dir.

A token is ``cgo_<id>.<secret>``: the id finds the row, the secret is compared
in constant time with its SHA-256. SHA-256 (not a slow KDF) is enough because
the secret is 32 random bytes, not something a person chose: there is nothing
to brute-force. The plain token is shown once, at creation, and never stored.

Roles, from most to least: admin (everything, manages operators), analyst
(search, acknowledge alerts), viewer (search, read-only).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from canhgac.errors import UserError
from canhgac.sqlite import connect as sqlite_connect
from collector.search.model import Scope

ROLES = ("viewer", "analyst", "admin")
TOKEN_PREFIX = "cgo_"
DB_NAME = "operators.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS operators(
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    scope TEXT NOT NULL,
    token_id TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL,
    created REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    role: str
    scope: Scope

    def has_role(self, minimum: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(minimum)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _scope_to_json(scope: Scope) -> str:
    return orjson.dumps(scope.as_json()).decode()


def _scope_from_json(text: str) -> Scope:
    data: Any = orjson.loads(text)
    if data == "all":
        return Scope.everything()
    return Scope(False, tuple(data.get("units", ())), tuple(data.get("systems", ())))


class OperatorStore:
    """Operators in ``<state_dir>/operators.db``; safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite_connect(self.path, private=True)
        self._db.executescript(_SCHEMA)
        try:
            self.path.chmod(0o600)
        except OSError:  # pragma: no cover - not our file to fix
            pass
        # token id -> row (None: unknown or revoked), valid while the database's
        # data_version is unchanged: a revocation by `canhgac collector revoke-operator`
        # (another process) takes effect on the very next request.
        self._cache: dict[str, tuple[Any, ...] | None] = {}
        self._version = -1

    def close(self) -> None:
        self._db.close()

    def create(self, name: str, role: str, scope: Scope) -> str:
        """Create or rotate ``name``'s token; returns the token (shown once)."""
        if not name or len(name) > 100 or any(c in name for c in "\n\r\t"):
            raise UserError("operator name must be 1-100 characters on one line")
        if role not in ROLES:
            raise UserError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        with self._lock:
            self._db.execute(
                "INSERT INTO operators(name, role, scope, token_id, token_hash, created, revoked) "
                "VALUES(?,?,?,?,?,?,0) ON CONFLICT(name) DO UPDATE SET role=excluded.role, "
                "scope=excluded.scope, token_id=excluded.token_id, token_hash=excluded.token_hash, "
                "created=excluded.created, revoked=0",
                (name, role, _scope_to_json(scope), token_id, _hash(secret), time.time()),
            )
            self._cache.clear()
        return f"{TOKEN_PREFIX}{token_id}.{secret}"

    def revoke(self, name: str) -> bool:
        with self._lock:
            cur = self._db.execute("UPDATE operators SET revoked=1 WHERE name=?", (name,))
            self._cache.clear()
        return cur.rowcount > 0

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, role, scope, created, revoked FROM operators ORDER BY name").fetchall()
        return [{"name": n, "role": r, "scope": _scope_from_json(s).describe(), "created": c,
                 "revoked": bool(v)} for n, r, s, c, v in rows]

    def verify(self, token: str) -> Operator | None:
        """The operator a token belongs to, or None. Constant-time on the secret."""
        if not token.startswith(TOKEN_PREFIX) or "." not in token:
            return None
        token_id, _, secret = token[len(TOKEN_PREFIX):].partition(".")
        if not token_id or not secret or len(token) > 200:
            return None
        with self._lock:
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if version != self._version or len(self._cache) > 10_000:
                self._cache.clear()
                self._version = version
            if token_id in self._cache:
                row = self._cache[token_id]
            else:
                row = self._db.execute(
                    "SELECT name, role, scope, token_hash FROM operators "
                    "WHERE token_id=? AND revoked=0", (token_id,)).fetchone()
                self._cache[token_id] = row
        expected = row[3] if row else _hash("")
        ok = hmac.compare_digest(_hash(secret), expected)
        if row is None or not ok:
            return None
        return Operator(row[0], row[1], _scope_from_json(row[2]))

    def authenticate(self, request: web.Request, minimum_role: str = "viewer") -> Operator:
        """The operator behind ``Authorization: Bearer``; 401 if none, 403 if role too low."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise web.HTTPUnauthorized(
                text='{"error": "an operator token is required (Authorization: Bearer ...)"}',
                content_type="application/json", headers={"WWW-Authenticate": "Bearer"})
        op = self.verify(token.strip())
        if op is None:
            raise web.HTTPUnauthorized(
                text='{"error": "invalid or revoked operator token"}',
                content_type="application/json", headers={"WWW-Authenticate": "Bearer"})
        if not op.has_role(minimum_role):
            raise web.HTTPForbidden(
                text=orjson.dumps({"error": f"role {op.role} may not do this "
                                            f"(needs {minimum_role})"}).decode(),
                content_type="application/json")
        return op
