"""`POST /v1/enroll`: trade a one-time enrollment token for agent credentials."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from collector.auth import EnrollmentError

if TYPE_CHECKING:
    from collector.context import CollectorContext

log = __import__("logging").getLogger(__name__)


def make_handler(ctx: CollectorContext):  # type: ignore[no-untyped-def]
    async def enroll(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > 16384:
            return web.json_response({"error": "enrollment request too large"}, status=413)
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return web.json_response({"error": "body must be JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        token, hostname = body.get("token"), body.get("hostname")
        if not isinstance(token, str) or not token or len(token) > 256:
            return web.json_response({"error": "token must be a non-empty string"}, status=400)
        if not isinstance(hostname, str) or not hostname or len(hostname) > 255:
            return web.json_response({"error": "hostname must be a non-empty string"}, status=400)
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
