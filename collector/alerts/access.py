"""Who is asking: the local admin, or an operator (from the search area's service).

The collector's admin token (``<state_dir>/admin.token``, mode 0600, made on
first start) presented as a Bearer token **from a loopback address** is the
local admin: someone who can read the collector's state dir on its own machine
already administers it. Any other request is authenticated by the operator
service (the ``operators`` port) and limited to the operator's scope;
without that service nobody else gets anything. docs/alerts.md.
"""

from __future__ import annotations

import inspect
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from canhgac import tokenfile

if TYPE_CHECKING:
    from collector.ports import OperatorAuthenticator

TOKEN_FILE = "admin.token"
WRITE_ROLE = "analyst"  # collector.search roles: viewer < analyst < admin
READ_ONLY_ROLES = frozenset({"viewer", "read", "readonly", "read-only", "auditor"})
_NAME = re.compile(r"[^\w .@-]", re.UNICODE)


@dataclass
class Principal:
    name: str
    role: str
    scope: Any = None  # None: everything
    local_admin: bool = False  # the admin-token fallback: may name who is at the keyboard
    writer: bool | None = None  # may ack/resolve; None: decided by the role name

    def allows(self, system_id: str, unit: str = "") -> bool:
        scope = self.scope
        if scope is None or scope == "*":
            return True
        check = getattr(scope, "allows", None)
        if callable(check):
            return bool(check(system_id))
        if hasattr(scope, "systems") and hasattr(scope, "units"):  # collector.search Scope
            if getattr(scope, "all", False):
                return True
            return system_id in scope.systems or (bool(unit) and unit in scope.units)
        if isinstance(scope, dict):
            systems = scope.get("systems") or ()
            units = scope.get("units") or ()
            return "*" in systems or system_id in systems or (bool(unit) and unit in units)
        if isinstance(scope, str):
            return scope in (system_id, unit)
        if isinstance(scope, Iterable):
            items = set(scope)
            return "*" in items or system_id in items or (bool(unit) and unit in items)
        return False

    @property
    def can_write(self) -> bool:
        if self.writer is not None:
            return self.writer
        return self.role.lower() not in READ_ONLY_ROLES


def ensure_token(state_dir: Path) -> Path:
    """Create the admin token once (0600, never overwritten), return its path."""
    return tokenfile.ensure(state_dir / TOKEN_FILE)


read_token = tokenfile.read


def is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:
        return False


class Access:
    def __init__(self, operators: OperatorAuthenticator | None, token_path: Path) -> None:
        self.operators = operators
        self.token_path = token_path

    def _local_admin(self, request: web.Request) -> bool:
        """Loopback + the admin token: constant-time, and False on any doubt."""
        if not is_loopback(request.remote):
            return False
        return tokenfile.matches(tokenfile.bearer(request.headers.get("Authorization", "")),
                                 self.token_path)

    async def principal(self, request: web.Request) -> Principal:
        """Authenticate or raise 401/403; never returns an anonymous principal.

        The admin token from loopback is accepted even when operators exist:
        whoever can read it can also mint operator tokens in the same state dir,
        so it grants nothing new, and the local CLI works without one.
        """
        if self._local_admin(request):
            return Principal("admin", "admin", None, local_admin=True)
        operators = self.operators
        if operators is not None:
            op = operators.authenticate(request)
            if inspect.isawaitable(op):
                op = await op
            if op is None:
                raise web.HTTPUnauthorized(text="authentication required\n",
                                           headers={"WWW-Authenticate": "Bearer"})
            has_role = getattr(op, "has_role", None)
            return Principal(str(op.name), str(getattr(op, "role", "")),
                             getattr(op, "scope", None),
                             writer=bool(has_role(WRITE_ROLE)) if callable(has_role) else None)
        if not is_loopback(request.remote):
            raise web.HTTPForbidden(text="no operator service configured: local admin only\n")
        raise web.HTTPUnauthorized(text="admin token required\n",
                                   headers={"WWW-Authenticate": "Bearer"})


def operator_name(value: object) -> str:
    """A name for the audit trail: printable, at most 64 characters, or ""."""
    if not isinstance(value, str):
        return ""
    return _NAME.sub("", value)[:64].strip()
