"""The agent's small HTTP client: bodiless GETs and answers that carry no body."""

from __future__ import annotations

from aiohttp import web

from shipper.outputs.http.client import HttpClient


async def test_get_and_304_on_a_kept_alive_connection() -> None:
    """A 304 has no body and no Content-Length: reading one until the connection closed
    hung the agent's policy poll for its whole timeout (found with the central policy)."""
    seen: list[str | None] = []

    async def policy(request: web.Request) -> web.Response:
        seen.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"1"':
            return web.Response(status=304, headers={"ETag": '"1"'})
        return web.json_response({"version": 1}, headers={"ETag": '"1"'})

    app = web.Application()
    app.router.add_get("/v1/agent/policy", policy)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = HttpClient(f"http://127.0.0.1:{port}", None, timeout=5.0)
    try:
        first = await client.get("/v1/agent/policy", {})
        assert first.status == 200 and first.body == b'{"version": 1}'
        for _ in range(3):  # the same connection, answered at once each time
            again = await client.get("/v1/agent/policy", {"If-None-Match": '"1"'})
            assert again.status == 304 and again.body == b""
        assert seen == [None, '"1"', '"1"', '"1"']
    finally:
        await client.close()
        await runner.cleanup()
