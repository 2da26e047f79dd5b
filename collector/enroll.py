"""`POST /v1/enroll`: trade a one-time enrollment token for agent credentials."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from collector.auth import EnrollmentError
from collector.ingest import bearer_of

if TYPE_CHECKING:
    from collector.context import CollectorContext

log = logging.getLogger(__name__)


MAX_BODY = 16384


async def read_bounded(request: web.Request, limit: int) -> bytes | None:
    """The body, or None once it exceeds ``limit`` — read no further than that.

    ``request.read()`` would take up to the app's client_max_size (16 MiB) of a chunked
    body before any check; an unauthenticated endpoint must not.
    """
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    while chunk := await request.content.readany():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _valid_hostname(value: object) -> bool:
    """One printable word: it is shown in tables and written to the log as is."""
    return (isinstance(value, str) and 0 < len(value) <= 255 and value.isprintable()
            and not any(c.isspace() for c in value))


def identity(ctx: CollectorContext, system_id: str, hostname: str) -> dict[str, object]:
    """What an agent is, as the collector knows it: the enrolled hostname (the agent uses
    it, not the OS name) and its system's level from the inventory (it selects the
    level's default probe settings, e.g. the file-integrity watch list)."""
    system = ctx.inventory.system(system_id) if system_id else None
    return {"hostname": hostname, "level": system.level if system is not None else None,
            "system_status": system.status if system is not None else None}


def self_handler(ctx: CollectorContext) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``GET /v1/agent``: the calling agent's identity (its bearer credentials)."""

    async def whoami(request: web.Request) -> web.Response:
        token = bearer_of(request)
        agent = ctx.auth.authenticate(token) if token else None
        if agent is None:
            return web.json_response(
                {"error": "invalid, unknown or revoked agent credentials"}, status=401,
                headers={"WWW-Authenticate": 'Bearer realm="canhgac"'})
        return web.json_response({"agent_id": agent.agent_id, "system_id": agent.system_id,
                                  **identity(ctx, agent.system_id, agent.hostname)})

    return whoami


def make_handler(ctx: CollectorContext) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def enroll(request: web.Request) -> web.Response:
        raw = await read_bounded(request, MAX_BODY)
        if raw is None:
            return web.json_response({"error": "enrollment request too large"}, status=413)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return web.json_response({"error": "body must be JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        token, hostname = body.get("token"), body.get("hostname")
        if not isinstance(token, str) or not token or len(token) > 256:
            return web.json_response({"error": "token must be a non-empty string"}, status=400)
        if not _valid_hostname(hostname):
            return web.json_response({"error": "hostname must be 1-255 printable characters "
                                               "without spaces or line breaks"}, status=400)
        assert isinstance(hostname, str)
        # An agent of a system the inventory does not list would send events with no unit
        # and no level, and its alerts would leave the province: refused at the door.
        wanted = ctx.auth.token_system(token)
        if wanted is not None and ctx.inventory.has_systems() and ctx.inventory.system(wanted) is None:
            log.warning("enrollment refused: token for system %r, which the inventory does not "
                        "list", wanted)
            return web.json_response({"error": f"system {wanted!r} is not in the collector's "
                                               "inventory: add it, then enroll"}, status=403)
        listed = ctx.inventory.system(wanted) if wanted is not None else None
        if listed is not None and listed.status == "retired":
            log.warning("enrollment refused: token for system %r, which is retired", wanted)
            return web.json_response({"error": f"system {wanted!r} is retired in the "
                                               "inventory: it takes no new agent"}, status=403)
        try:
            agent_id, secret, system_id = ctx.auth.enroll(token, hostname)
        except EnrollmentError as exc:
            return web.json_response({"error": str(exc)}, status=401)
        log.info("enrolled agent %s (host %s) for system %s", agent_id, hostname, system_id)
        return web.json_response({
            "agent_id": agent_id,
            "secret": secret,
            "system_id": system_id,
            "heartbeat_interval": float(ctx.config.heartbeat_interval),
            **identity(ctx, system_id, hostname),
        })

    return enroll
