"""`canhgac alerts ...` and `canhgac coverage` against the real components on loopback.

The server runs in a thread with its own event loop because the CLI is
synchronous, exactly as it is when a person runs it next to the collector.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

import collector.alerts
import collector.coverage
from canhgac.errors import UserError
from canhgac.schema import new_event
from collector.alerts import cli as alerts_cli
from collector.auth import AuthStore
from collector.config import CollectorConfig, TlsConfig
from collector.context import CollectorContext, Ports
from collector.coverage import cli as coverage_cli
from collector.fleet import Presence
from collector.inventory import InventoryHolder, parse_inventory
from collector.pipeline import Pipeline

UNIT = "Sở Thông tin và Truyền thông"


class Server:
    def __init__(self, tmp: Path) -> None:
        cfg = CollectorConfig(state_dir=tmp / "state", tls=TlsConfig(enabled=False))
        inv = parse_inventory({"province": "Thừa Thiên Huế", "systems": [
            {"id": "cong-ttdt", "name": "Cổng thông tin điện tử tỉnh", "unit": UNIT, "level": 3,
             "onsite": {"team": [{"name": "Nguyễn Văn An"}]}},
            {"id": "his", "name": "Hệ thống quản lý bệnh viện", "unit": "Sở Y tế", "level": 2}]}, "t")
        auth = AuthStore(tmp / "auth.db")

        async def no_inject(_events: list[dict]) -> None:
            raise AssertionError("nothing is injected in this test")

        self.ctx = CollectorContext(config=cfg, source="t", state_dir=cfg.state_dir,
                                    app=web.Application(), registry=CollectorRegistry(),
                                    pipeline=Pipeline(), auth=auth,
                                    inventory=InventoryHolder(inv), inject=no_inject,
                                    ports=Ports(agents=auth, presence=Presence.of(cfg)))
        collector.alerts.setup(self.ctx)
        collector.coverage.setup(self.ctx)
        self.alert = new_event("alert", kind="alert", rule={"id": "r", "name": "Đăng nhập bất thường"})
        self.alert["canhgac"] = {"system": {"id": "cong-ttdt"}, "unit": {"name": UNIT}}
        self.ctx.pipeline.process([self.alert])
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.runner = web.AppRunner(self.ctx.app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())

    def __enter__(self) -> Server:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.ctx.ports.alerts.close()  # type: ignore[union-attr]
        self.ctx.auth.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with Server(tmp_path) as s:
        yield s


def run(server: Server, *argv: str, token_file: Path | None = None) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    alerts_cli.register(sub)
    coverage_cli.register(sub)
    cmd, *rest = argv
    conn = ["--url", f"http://127.0.0.1:{server.port}",
            "--token-file", str(token_file or server.ctx.state_dir / "admin.token")]
    args = parser.parse_args([cmd, *rest, *conn])
    return args.func(args)


def test_alerts_list_ack_show_resolve(server: Server, capsys) -> None:  # type: ignore[no-untyped-def]
    aid = server.alert["event"]["id"]
    assert run(server, "alerts", "list") == 0
    out = capsys.readouterr().out
    # Issue 10 findings: a severity column, local times labelled, titles whole.
    assert aid[:8] in out and "open" in out and "Đăng nhập bất thường" in out
    assert "TIME (UTC+7)" in out and "SEVERITY" in out
    # A short id prefix works (was a 404).
    assert run(server, "alerts", "ack", aid[:8], "-m", "đang xử lý", "--as", "Nguyễn Văn An") == 0
    assert capsys.readouterr().out.strip() == f"{aid}: acknowledged by Nguyễn Văn An"
    assert run(server, "alerts", "show", aid, "--format", "json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["ack_note"] == "đang xử lý" and shown["event"]["rule"]["id"] == "r"
    assert run(server, "alerts", "show", aid[:8]) == 0
    text = capsys.readouterr().out
    assert "acknowledged by Nguyễn Văn An" in text and "(UTC+7)" in text
    with pytest.raises(UserError, match="HTTP 409: alert is already acknowledged by Nguyễn Văn An"):
        run(server, "alerts", "ack", aid)
    with pytest.raises(UserError, match="HTTP 404: no system 'nonexistent'"):
        run(server, "alerts", "list", "--system", "nonexistent")
    with pytest.raises(SystemExit):  # resolving needs an outcome (argparse: exit 2)
        run(server, "alerts", "resolve", aid, "-m", "khóa tài khoản")
    assert run(server, "alerts", "resolve", aid, "-m", "khóa tài khoản",
               "--outcome", "true_positive") == 0
    assert "resolved by admin" in capsys.readouterr().out
    assert run(server, "alerts", "list", "--status", "resolved", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["alerts"][0]["resolve_note"] == "khóa tài khoản"


def test_coverage_table_json_and_unit_filter(server: Server, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(server, "coverage") == 0
    out = capsys.readouterr().out
    assert "Thừa Thiên Huế" in out and UNIT in out and "\x1b[" not in out  # not a TTY
    assert run(server, "coverage", "--unit", "Sở Y tế", "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["id"] for s in data["systems"]] == ["his"]
    assert data["systems"][0]["layers"]["national"]["reason"] == (
        "national sharing not enabled for this system")
    # Issue 9 finding: a unit view showed the province's totals.
    assert [u["name"] for u in data["units"]] == ["Sở Y tế"]
    assert data["province_rollup"]["systems"] == 1
    # ... however the unit's name was typed (decomposed Unicode is the same unit).
    assert run(server, "coverage", "--unit", unicodedata.normalize("NFD", "Sở Y tế"),
               "--format", "json") == 0
    assert [s["id"] for s in json.loads(capsys.readouterr().out)["systems"]] == ["his"]
    with pytest.raises(UserError, match="no systems of unit 'Sở Y te'"):
        run(server, "coverage", "--unit", "Sở Y te")


def test_clear_errors_for_bad_token_and_no_collector(server: Server, tmp_path: Path) -> None:
    bad = tmp_path / "bad.token"
    bad.write_text("nope\n")
    with pytest.raises(UserError, match="HTTP 401: admin token required"):
        run(server, "alerts", "list", token_file=bad)
    with pytest.raises(UserError, match="cannot read token file"):
        run(server, "alerts", "list", token_file=tmp_path / "missing")
    server.port = 1  # nothing listens there
    with pytest.raises(UserError, match="cannot reach the collector"):
        run(server, "coverage")
