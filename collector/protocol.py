"""Refuse agents that speak a newer protocol than this collector (canhgac/protocol.py).

A middleware on the agent endpoints only: operators' APIs are not versioned this way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from canhgac.protocol import HEADER, PROTOCOL_VERSION, parse

AGENT_PATHS = ("/v1/events", "/v1/enroll", "/v1/agent")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def protocol_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(AGENT_PATHS):
        announced = parse(request.headers.get(HEADER))
        if announced is None:
            return web.json_response({"error": f"{HEADER} must be a protocol number"}, status=400)
        if announced > PROTOCOL_VERSION:
            return web.json_response(
                {"error": f"agent protocol {announced} is newer than this collector's "
                          f"({PROTOCOL_VERSION}): upgrade the collector before its agents"},
                status=400)
    return await handler(request)
