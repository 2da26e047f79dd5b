"""`canhgac report annual` against the real collector: its history store, its alert store
and its access rules, over TLS; the PDF is read back with pdftotext (docs/reports.md)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from canhgac.cli import run_command
from canhgac.errors import UserError
from collector.coverage.history import HistoryStore
from collector.report.cli import register
from tests.fixtures.collector import start_collector, wait_for
from tests.integration.test_coverage_history import _lifespan_objects

pytestmark = [pytest.mark.integration]

INVENTORY = """
province: "Thừa Thiên Huế"
units: ["Sở Thông tin và Truyền thông", "Sở Y tế"]
systems:
  - id: cong-ttdt
    name: "Cổng thông tin điện tử tỉnh"
    unit: "Sở Thông tin và Truyền thông"
    level: 3
    hosts: [portal-web-01]
    approval: {approved: true, decision: "1234/QĐ-UBND", date: 2024-08-15}
    plan: {deployed: 2024-11-20}
  - id: his
    name: "Quản lý bệnh viện"
    unit: "Sở Y tế"
    level: 2
    hosts: [his-01]
"""


def cli(*argv: str) -> int:
    """``canhgac report ...`` as canhgac.cli.main runs it (the parser of this one command)."""
    parser = argparse.ArgumentParser(prog="canhgac")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", *argv])
    try:
        return run_command(args.func, args)
    except UserError as exc:
        print(f"canhgac: error: {exc}", file=sys.stderr)
        return exc.exit_code


async def test_annual_report_from_the_running_collector(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert shutil.which("pdftotext"), "poppler-utils missing: run deploy/test-deps.sh"
    inv = tmp_path / "inventory.yaml"
    inv.write_text(INVENTORY, encoding="utf-8")
    running, runner = await start_collector(
        tmp_path, {"inventory": str(inv), "coverage": {"cache_ttl": "0.2s"}},
        components=("collector.search", "collector.alerts", "collector.coverage"))
    year = str(dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).year)
    try:
        [store] = [o for o in _lifespan_objects(running) if isinstance(o, HistoryStore)]
        assert await wait_for(lambda: store.first_day() is not None, timeout=20, interval=0.2)
        cfg = tmp_path / "collector.yaml"
        cfg.write_text(orjson.dumps({"state_dir": str(running.state_dir)}).decode(),
                       encoding="utf-8")
        common = ("--config", str(cfg), "--url", running.url, "--ca", str(running.ca))
        out = tmp_path / "bao-cao.pdf"
        assert await asyncio.to_thread(cli, "annual", "--year", year, "--output", str(out),
                                       "--lang", "vi", *common) == 0
        assert f"Đã ghi báo cáo năm {year} (pdf)" in capsys.readouterr().err
        done = await asyncio.to_thread(subprocess.run, ["pdftotext", "-enc", "UTF-8", str(out), "-"],
                                       capture_output=True, check=True)
        text = done.stdout.decode("utf-8")
        flat = " ".join(text.split())
        for needle in (f"NĂM {year}", "Cổng thông tin điện tử tỉnh", "Quản lý bệnh viện",
                       "1234/QĐ-UBND", "15/08/2024", "Phê duyệt cấp độ an toàn hệ thống thông tin"):
            assert needle in flat, needle

        unit_md = tmp_path / "y-te.md"
        assert await asyncio.to_thread(cli, "annual", "--year", year, "--unit", "Sở Y tế",
                                       "--lang", "en", "-o", str(unit_md), *common) == 0
        content = unit_md.read_text(encoding="utf-8")
        assert "Reporting unit: Sở Y tế" in content and "Quản lý bệnh viện" in content
        assert "Cổng thông tin" not in content and "Sở Thông tin và Truyền thông" not in content

        capsys.readouterr()
        assert await asyncio.to_thread(cli, "annual", "--year", year, "--unit", "Sở Y Tế",
                                       "--lang", "vi", "-o", str(unit_md), *common) == 2
        assert capsys.readouterr().err == (
            "canhgac: error: --unit: không có đơn vị 'Sở Y Tế' (có phải là 'Sở Y tế'?)\n")
        assert await asyncio.to_thread(cli, "annual", "--year", "1990", "--lang", "vi",
                                       "-o", str(unit_md), *common) == 2
        assert "1990 nằm ngoài khoảng cho phép" in capsys.readouterr().err
    finally:
        await runner.cleanup()
