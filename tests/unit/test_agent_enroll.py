"""Enrollment against a real aiohttp TLS server, credentials at rest, and `agent status`."""

from __future__ import annotations

import asyncio
import os
import stat
import time

import orjson
import pytest
from aiohttp import web

from agent import cli
from agent.enroll import enroll, load_credentials
from canhgac.errors import UserError
from canhgac.tls import server_context


@pytest.fixture
async def enroll_server(server_cert):
    seen: list[dict] = []

    async def handler(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body)
        if body.get("token") != "good-token":
            return web.json_response({"error": "invalid token"}, status=401)
        return web.json_response({"agent_id": "ag-7", "secret": "s3cr3t-value",
                                  "system_id": "sys-hue-01", "heartbeat_interval": 15})

    app = web.Application()
    app.router.add_post("/v1/enroll", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0,
                       ssl_context=server_context(server_cert.cert, server_cert.key))
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"https://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_enroll_stores_private_credentials(enroll_server, test_ca, tmp_path):
    url, seen = enroll_server
    state = tmp_path / "agent"
    creds = await enroll(url, "good-token", test_ca.cert, state, hostname="web01")
    assert creds.agent_id == "ag-7" and creds.token == "ag-7.s3cr3t-value"
    assert seen[0]["hostname"] == "web01" and seen[0]["agent_version"]
    path = state / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    stored = orjson.loads(path.read_bytes())
    assert stored["collector"] == url and stored["system_id"] == "sys-hue-01"
    assert _same_file_content(stored["ca"], test_ca.cert)
    again = load_credentials(state)
    assert again is not None and again.heartbeat_interval == 15
    assert "s3cr3t" not in repr(again)


async def test_enroll_bad_token_is_one_clear_line(enroll_server, test_ca, tmp_path):
    url, _ = enroll_server
    with pytest.raises(UserError, match="token rejected"):
        await enroll(url, "used-token", test_ca.cert, tmp_path / "agent")
    assert not (tmp_path / "agent" / "credentials.json").exists()


async def test_enroll_wrong_ca_and_unreachable(enroll_server, tmp_path):
    from canhgac.tls import make_ca

    url, _ = enroll_server
    other = make_ca(tmp_path / "other", "other CA")
    with pytest.raises(UserError, match="certificate"):
        await enroll(url, "good-token", other.cert, tmp_path / "a")
    with pytest.raises(UserError, match="cannot reach"):
        await enroll("https://127.0.0.1:9", "good-token", other.cert, tmp_path / "b")
    with pytest.raises(UserError, match="--ca"):
        await enroll(url, "good-token", tmp_path / "missing.pem", tmp_path / "c")


def test_status_table_and_exit_codes(tmp_path, capsys):
    from agent.health import write_status

    state = tmp_path / "agent"
    state.mkdir()
    snap = {
        "pid": os.getpid(), "state": "running", "version": "0.1.0", "hostname": "web01",
        "agent_id": "ag-7", "system_id": "sys-1", "uptime_seconds": 75,
        "updated": "2026-01-01T00:00:00.000Z", "updated_epoch": time.time(),
        "heartbeat_interval": 30,
        "probes": {"process": {"state": "running", "restarts": 2, "events": 10,
                               "datasets": ["process"], "last_error": "OSError: boom"}},
        "queue": {"depth": 12, "bytes": 2048, "max_bytes": 1024, "dropped_telemetry": 3,
                  "refused_security": 0, "dead_letter": 1, "oldest_age_seconds": 4},
        "delivery": {"url": "https://c:8443", "up": True, "delivered_events": 99,
                     "last_success": "2026-01-01T00:00:00.000Z"},
    }
    write_status(state, snap)
    parser = _parser()
    args = parser.parse_args(["agent", "status", "--state-dir", str(state)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "running" in out and "process" in out and "OSError: boom" in out
    assert "12 events waiting" in out and "telemetry dropped 3" in out
    args = parser.parse_args(["agent", "status", "--state-dir", str(state), "--format", "json"])
    assert args.func(args) == 0
    assert orjson.loads(capsys.readouterr().out)["queue"]["depth"] == 12
    snap["updated_epoch"] = time.time() - 3600
    write_status(state, snap)
    args = parser.parse_args(["agent", "status", "--state-dir", str(state)])
    assert args.func(args) == 1
    assert "stale" in capsys.readouterr().out
    with pytest.raises(UserError, match="no agent status"):
        args = parser.parse_args(["agent", "status", "--state-dir", str(tmp_path / "none")])
        args.func(args)


def _same_file_content(a, b) -> bool:
    from pathlib import Path

    return Path(a).read_bytes() == Path(b).read_bytes()


def _parser():
    import argparse

    p = argparse.ArgumentParser()
    cli.register(p.add_subparsers())
    return p


async def test_enroll_refuses_plain_http(tmp_path, test_ca):
    with pytest.raises(UserError, match="https://"):
        await enroll("http://127.0.0.1:8443", "t", test_ca.cert, tmp_path / "a")


def test_cli_refuses_to_overwrite_credentials(tmp_path, test_ca):
    from agent.enroll import Credentials, save_credentials

    state = tmp_path / "agent"
    save_credentials(state, Credentials("ag-1", "s", "https://c:8443"))
    args = _parser().parse_args(["agent", "enroll", "--collector", "https://c:8443", "--token",
                                 "t", "--ca", str(test_ca.cert), "--state-dir", str(state)])
    with pytest.raises(UserError, match="already enrolled as ag-1"):
        asyncio.run(args.func(args))
