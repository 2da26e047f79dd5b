"""HTTP output against a real aiohttp server over TLS on 127.0.0.1:0.

Each test scripts the server's answer and checks how the output maps it onto
the delivery loop's outcomes (delivered / dead / retry / whole-batch errors).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

import orjson
import pytest
from aiohttp import web

from canhgac.tls import server_context
from shipper.output import Batch, PermanentError, TransientError
from shipper.outputs.http import HttpOutput, HttpOutputConfig
from shipper.outputs.http.encoder import decode_ndjson_gzip, encode_ndjson_gzip
from shipper.outputs.http.service import parse_retry_after

Handler = Callable[[web.Request, list[bytes]], web.StreamResponse]


class Collector:
    """A scripted /v1/events endpoint that records what it received."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[dict] = []

    async def events(self, request: web.Request) -> web.StreamResponse:
        # aiohttp inflates Content-Encoding: gzip itself (a non-gzip body would be a 400).
        body = await request.read()
        lines = [line for line in body.split(b"\n") if line]
        self.requests.append({"headers": dict(request.headers), "lines": lines})
        return self.handler(request, lines)


@pytest.fixture
async def serve(server_cert):
    runners: list[web.AppRunner] = []

    async def start(handler: Handler, tls: bool = True) -> tuple[Collector, str]:
        col = Collector(handler)
        app = web.Application()
        app.router.add_post("/v1/events", col.events)
        runner = web.AppRunner(app)
        await runner.setup()
        ctx = server_context(server_cert.cert, server_cert.key) if tls else None
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return col, f"{'https' if tls else 'http'}://127.0.0.1:{port}"

    yield start
    for r in runners:
        await r.cleanup()


def ack(lines: list[bytes], errors: list[dict] | None = None) -> web.Response:
    errors = errors or []
    return web.json_response({
        "batch_id": "x", "accepted": len(lines) - len(errors), "duplicate": 0,
        "rejected": len(errors), "errors": errors,
    })


def make_lines(n: int) -> list[bytes]:
    return [orjson.dumps({"event": {"id": f"e{i}"}, "n": i}) for i in range(n)]


async def output_for(url: str, ca, **kw) -> HttpOutput:
    out = HttpOutput(HttpOutputConfig(url=url, token="agent-1.s3cret", ca=ca, timeout=5, **kw))
    await out.start()
    return out


async def test_200_sends_gzip_ndjson_with_headers_and_keeps_connection(serve, test_ca):
    col, url = await serve(lambda req, lines: ack(lines))
    out = await output_for(url, test_ca.cert)
    lines = make_lines(3)
    result = await out.send(Batch("collector:1-3", lines))
    assert result.dead == [] and result.retry == []
    await out.send(Batch("collector:4-4", make_lines(1)))
    await out.close()
    h = col.requests[0]["headers"]
    assert col.requests[0]["lines"] == lines
    assert h["Authorization"] == "Bearer agent-1.s3cret"
    assert h["Content-Encoding"] == "gzip"
    assert h["Content-Type"] == "application/x-ndjson"
    assert h["X-Batch-Id"] == "collector:1-3"
    assert out.requests == 2


async def test_200_rejected_lines_are_dead_with_reason(serve, test_ca):
    _col, url = await serve(lambda req, lines: ack(lines, [
        {"line": 1, "reason": "bad @timestamp"}, {"line": 3, "reason": "too deep"}]))
    out = await output_for(url, test_ca.cert)
    result = await out.send(Batch("b", make_lines(4)))
    await out.close()
    assert result.dead == [(1, "rejected by collector: bad @timestamp"),
                           (3, "rejected by collector: too deep")]
    assert result.retry == []


async def test_400_is_permanent(serve, test_ca):
    _col, url = await serve(lambda req, lines: web.json_response({"error": "not gzip"}, status=400))
    out = await output_for(url, test_ca.cert)
    with pytest.raises(PermanentError, match="400"):
        await out.send(Batch("b", make_lines(2)))
    await out.close()


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_refused_is_transient_and_flagged(serve, test_ca, status, caplog):
    _col, url = await serve(lambda req, lines: web.Response(status=status))
    out = await output_for(url, test_ca.cert)
    with pytest.raises(TransientError) as info:
        await out.send(Batch("b", make_lines(1)))
    await out.close()
    assert out.auth_refused
    assert "credentials" in str(info.value)
    assert any("re-enroll" in r.getMessage() for r in caplog.records)
    assert "s3cret" not in caplog.text


@pytest.mark.parametrize("status", [429, 503])
async def test_backpressure_carries_retry_after(serve, test_ca, status):
    _col, url = await serve(
        lambda req, lines: web.Response(status=status, headers={"Retry-After": "7"}))
    out = await output_for(url, test_ca.cert)
    with pytest.raises(TransientError) as info:
        await out.send(Batch("b", make_lines(1)))
    await out.close()
    assert info.value.retry_after == 7.0


@pytest.mark.parametrize("status", [500, 502, 404])
async def test_server_errors_and_unknown_statuses_are_transient(serve, test_ca, status):
    _col, url = await serve(lambda req, lines: web.Response(status=status, text="boom"))
    out = await output_for(url, test_ca.cert)
    with pytest.raises(TransientError):
        await out.send(Batch("b", make_lines(1)))
    await out.close()


async def test_413_splits_in_halves_with_derived_batch_ids(serve, test_ca):
    def handler(req: web.Request, lines: list[bytes]) -> web.Response:
        if len(lines) > 2:
            return web.Response(status=413, text="too large")
        if any(b'"n":4' in line for line in lines):
            return web.Response(status=413, text="too large")
        return ack(lines)

    col, url = await serve(handler)
    out = await output_for(url, test_ca.cert)
    result = await out.send(Batch("c:1-6", make_lines(6)))
    await out.close()
    # line 4 alone is still too large: dead; everything else delivered once
    assert [i for i, _ in result.dead] == [4]
    assert "too large" in result.dead[0][1]
    accepted = [r["lines"] for r in col.requests
                if len(r["lines"]) <= 2 and not any(b'"n":4' in line for line in r["lines"])]
    delivered = [line for lines in accepted for line in lines]
    assert sorted(delivered) == sorted(line for i, line in enumerate(make_lines(6)) if i != 4)
    ids = [r["headers"]["X-Batch-Id"] for r in col.requests]
    assert ids[0] == "c:1-6" and "c:1-6/0-3" in ids and "c:1-6/3-6" in ids


async def test_connection_refused_is_transient(test_ca):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = await output_for(f"https://127.0.0.1:{port}", test_ca.cert)
    with pytest.raises(TransientError, match="127.0.0.1"):
        await out.send(Batch("b", make_lines(1)))
    await out.close()


async def test_untrusted_certificate_is_transient_and_says_tls(serve, tmp_path):
    from canhgac.tls import make_ca

    other = make_ca(tmp_path / "other", "someone else")
    _col, url = await serve(lambda req, lines: ack(lines))
    out = await output_for(url, other.cert)
    with pytest.raises(TransientError, match="TLS"):
        await out.send(Batch("b", make_lines(1)))
    await out.close()


async def test_timeout_is_transient(serve, test_ca):
    # a server that accepts TCP but never answers
    server = await asyncio.start_server(lambda r, w: asyncio.sleep(5), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    out = HttpOutput(HttpOutputConfig(url=f"https://127.0.0.1:{port}", token="a.b",
                                      ca=test_ca.cert, timeout=0.3))
    with pytest.raises(TransientError, match="timeout"):
        await out.send(Batch("b", make_lines(1)))
    await out.close()
    server.close()


async def test_unreadable_200_is_transient(serve, test_ca):
    _col, url = await serve(lambda req, lines: web.Response(status=200, text="not json"))
    out = await output_for(url, test_ca.cert)
    with pytest.raises(TransientError):
        await out.send(Batch("b", make_lines(1)))
    await out.close()


async def test_reconnects_after_server_closes_idle_connection(serve, test_ca):
    col, url = await serve(lambda req, lines: ack(lines))
    out = await output_for(url, test_ca.cert)
    await out.send(Batch("a", make_lines(1)))
    # drop the kept-alive connection under the client's feet
    assert out._client is not None and out._client._writer is not None
    out._client._writer.transport.abort()
    await asyncio.sleep(0.05)
    await out.send(Batch("b", make_lines(1)))
    await out.close()
    assert len(col.requests) == 2


def test_retry_after_parsing():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_encoder_roundtrip():
    lines = make_lines(5)
    assert decode_ndjson_gzip(encode_ndjson_gzip(lines)) == lines
    assert isinstance(ssl.OPENSSL_VERSION, str)
