"""`POST /v1/enroll`: trade a one-time enrollment token for agent credentials."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from collector.auth import EnrollmentError

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
        })

    return enroll
