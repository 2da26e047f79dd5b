"""Slow and greedy clients cannot hold the collector (issue 12, trust boundary 3).

Before: 300 TLS connections with a half-sent request line were all still open after
90 s, and a request announcing ``Content-Length: 100`` and sending nothing was held
120 s. Each test below waits for the server to act, with a deadline far above the
configured limit, and fails if it never does.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from collector.app import GUARD_KEY
from tests.fixtures.collector import RunningCollector, start_collector, wait_for

pytestmark = pytest.mark.integration


async def _open(running: RunningCollector) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    ctx = ssl.create_default_context(cafile=str(running.ca))
    host, port = running.url.split("//")[1].split(":")
    return await asyncio.open_connection(host, int(port), ssl=ctx)


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sent until it closed; fails if it keeps the connection."""
    data = b""
    async with asyncio.timeout(within):
        try:
            while chunk := await reader.read(65536):
                data += chunk
        except (ConnectionResetError, ssl.SSLError):  # aborted: closed all the same
            pass
    return data


async def _limited(tmp_path: Path, **limits: object) -> tuple[RunningCollector, object]:
    return await start_collector(tmp_path, {"limits": limits})


async def test_half_sent_request_lines_are_closed_after_the_header_timeout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    running, runner = await _limited(tmp_path, header_timeout="1s")
    try:
        conns = [await _open(running) for _ in range(30)]
        for _, w in conns:
            w.write(b"POST /v1/ev")  # never finished
            await w.drain()
        for r, _ in conns:
            await _closed_by_server(r, within=30)
        guard = running.ctx.app[GUARD_KEY]
        assert guard.counts.timed_out["header"] == 30 and guard.counts.open == 0
        for _, w in conns:
            w.close()
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]


async def test_a_promised_body_that_never_comes_gets_408(tmp_path) -> None:  # type: ignore[no-untyped-def]
    running, runner = await _limited(tmp_path, request_timeout="1s")
    try:
        r, w = await _open(running)
        w.write(b"POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n")
        await w.drain()
        answer = await _closed_by_server(r, within=30)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        w.close()
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]


async def test_keep_alive_connection_gets_the_header_deadline_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    running, runner = await _limited(tmp_path, header_timeout="1s")
    try:
        r, w = await _open(running)
        w.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await w.drain()
        async with asyncio.timeout(30):
            head = await r.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        w.write(b"GET /hea")  # the next request, trickled and never finished
        await w.drain()
        await _closed_by_server(r, within=30)
        w.close()
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]


async def test_connections_over_the_per_address_cap_are_closed_at_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    running, runner = await _limited(tmp_path, max_connections_per_ip=3, header_timeout="60s")
    try:
        kept = [await _open(running) for _ in range(3)]
        guard = running.ctx.app[GUARD_KEY]
        assert await wait_for(lambda: guard.counts.open == 3, timeout=30)
        r, w = await _open(running)  # the TLS handshake completes, then the guard closes it
        assert await _closed_by_server(r, within=30) == b""
        assert guard.counts.refused["over_per_ip"] == 1
        w.close()
        # the kept ones still work
        kr, kw = kept[0]
        kw.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await kw.drain()
        async with asyncio.timeout(30):
            assert (await kr.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        for _, cw in kept:
            cw.close()
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]


async def test_enroll_refuses_an_oversized_chunked_body_without_reading_it_all(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 12 finding: /v1/enroll read up to 16 MiB of a chunked body before refusing."""
    running, runner = await start_collector(tmp_path)
    try:
        r, w = await _open(running)
        w.write(b"POST /v1/enroll HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 4096
        for _ in range(16):  # 64 KiB, far below the app's 16 MiB limit, and then we wait
            w.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await w.drain()
        async with asyncio.timeout(20):
            head = await r.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), head
        w.close()
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]


async def test_enroll_refuses_a_hostname_that_would_forge_a_log_line(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    import aiohttp

    from canhgac.tls import client_context

    running, runner = await start_collector(tmp_path)
    try:
        conn = aiohttp.TCPConnector(ssl=client_context(running.ca))
        async with aiohttp.ClientSession(connector=conn) as s:
            for bad in ("web-01\n2026-12-02 INFO enrolled agent x for system sys-b", "a b", "\x1b[2J"):
                token = running.enroll_token()
                async with s.post(f"{running.url}/v1/enroll",
                                  json={"token": token, "hostname": bad}) as resp:
                    assert resp.status == 400, bad
        assert "enrolled agent" not in caplog.text
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]


async def test_enrollment_for_a_system_the_inventory_does_not_list_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 9 finding: an agent enrolled for a system missing from the inventory was
    silently accepted (its events lost unit and level; its alerts still left the province)."""
    import aiohttp
    import yaml

    from canhgac.tls import client_context

    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump({"systems": [
        {"id": "cong-ttdt", "name": "Cổng", "unit": "Sở TT&TT", "level": 3},
        {"id": "cu", "name": "Cũ", "unit": "Sở TT&TT", "level": 2, "status": "retired",
         "retired_on": "2025-01-01"}]}, allow_unicode=True), encoding="utf-8")
    running, runner = await start_collector(tmp_path, {"inventory": str(inv)})
    try:
        conn = aiohttp.TCPConnector(ssl=client_context(running.ca))
        async with aiohttp.ClientSession(connector=conn) as s:
            token = running.enroll_token("not-listed")
            async with s.post(f"{running.url}/v1/enroll",
                              json={"token": token, "hostname": "web-01"}) as r:
                assert r.status == 403
                assert "not in the collector's inventory" in (await r.json())["error"]
            async with s.post(f"{running.url}/v1/enroll", json={
                    "token": running.enroll_token("cu"), "hostname": "cu-01"}) as r:
                assert r.status == 403 and "retired" in (await r.json())["error"]
            assert running.ctx.auth.agents() == []
            assert await running.enroll(s, system="cong-ttdt")  # a listed one enrols
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]


async def test_a_request_in_progress_is_not_cut_by_the_header_deadline(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Once its headers are in, a request is under request_timeout only: the header timer
    is disarmed while it is handled (a slow body or handler is not a slow header)."""
    running, runner = await start_collector(tmp_path, {"limits": {"header_timeout": "1s"}})
    try:
        guard = running.ctx.app[GUARD_KEY]
        r, w = await _open(running)
        body = b'{"token": "nope", "hostname": "web-01"}'
        w.write(b"POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body))
        await w.drain()
        assert await wait_for(lambda: len(guard._by_transport) == 1, timeout=30)
        (conn,) = guard._by_transport.values()
        assert await wait_for(lambda: conn.in_request == 1, timeout=30)
        assert conn._timer is None  # disarmed while the body is awaited
        w.write(body)
        await w.drain()
        async with asyncio.timeout(30):
            head = await r.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 401")  # answered: the unknown token
        assert await wait_for(lambda: conn.in_request == 0 and conn._timer is not None, timeout=30)
        w.close()
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]
