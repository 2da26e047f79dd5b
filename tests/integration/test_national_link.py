"""The collector's national component against the mock over TLS: indicator pull and match,
persistence across restarts, summaries, the connectivity check (library, metrics, CLI).

Extension points for the end-to-end test with a real agent: ``collector_ctx`` builds a
minimal CollectorContext; ``test_wired_through_the_real_collector_app`` shows the real one
(collector.app.build_context) with the national output and component wired.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from canhgac.config import load_section
from canhgac.schema import NETWORK, PRIORITY_SECURITY, new_event
from canhgac.tls import make_ca
from collector.config import CollectorConfig
from collector.context import CollectorContext, Ports
from collector.fleet import Presence
from collector.inventory import InventoryHolder, parse_inventory
from collector.national import setup
from collector.outputs import build_outputs
from collector.pipeline import Pipeline
from national_center.indicators import IndicatorSpec
from national_center.testing import TEST_KEY_ID, start_center

pytestmark = pytest.mark.integration
SECRET = b"national-link-secret-0123456789a"


@pytest.fixture
async def center(tmp_path, test_ca):
    c = await start_center(tmp_path / "center", test_ca, keys={TEST_KEY_ID: SECRET})
    yield c
    await c.close()


def national_section(center, ca: Path, secret: bytes = SECRET, **extra) -> dict:
    return {"link": {"url": center.url, "key_id": TEST_KEY_ID, "secret": "hex:" + secret.hex(),
                     "ca": str(ca), "timeout": "5s", "connect_timeout": "2s"},
            "indicators": {"interval": "300ms", "suppress": "0s"},
            "check": {"interval": "300ms"}, **extra}


def collector_ctx(tmp_path, national: dict, outputs: dict | None = None) -> CollectorContext:
    inv = InventoryHolder(parse_inventory({"systems": [
        {"id": "dvc", "name": "Cổng dịch vụ công", "unit": "Sở TT&TT", "level": 3,
         "hosts": ["web-1"], "national": {"enabled": True}}]}, "inv.yaml"))
    cfg = load_section({"state_dir": str(tmp_path / "collector"), "national": national,
                        "outputs": outputs or {"store": {}}}, CollectorConfig, "collector.yaml")
    injected: list[dict] = []
    pipeline = Pipeline()

    async def inject(events):
        extra = pipeline.process(events)
        injected.extend(events + extra)

    ctx = CollectorContext(config=cfg, source="collector.yaml", state_dir=tmp_path / "collector",
                           app=web.Application(), registry=CollectorRegistry(),
                           pipeline=pipeline, auth=None, inventory=inv,  # type: ignore[arg-type]
                           ports=Ports(agents=None, presence=Presence.of(cfg)),  # type: ignore[arg-type]
                           inject=inject)
    INJECTED[id(ctx)] = injected
    if "national" in cfg.outputs:
        build_outputs(cfg.outputs, ctx)
    return ctx


INJECTED: dict[int, list[dict]] = {}
_RUNNING: dict[int, contextlib.AsyncExitStack] = {}


async def start(ctx):
    stack = _RUNNING[id(ctx)] = contextlib.AsyncExitStack()
    await stack.enter_async_context(ctx.running_lifespans())


async def stop(ctx):
    await _RUNNING.pop(id(ctx)).aclose()


async def wait_for(cond, timeout=5.0):
    for _ in range(int(timeout / 0.05)):
        if cond():
            return True
        await asyncio.sleep(0.05)
    return cond()


def net_event(ip: str) -> dict:
    ev = new_event(NETWORK, destination={"ip": ip}, host={"name": "web-1"})
    ev["canhgac"] = {"system": {"id": "dvc", "level": 3}}
    return ev


async def test_published_indicator_is_matched_within_one_pull_and_survives_restart(
        center, test_ca, tmp_path):
    ctx = collector_ctx(tmp_path, national_section(center, test_ca.cert))
    setup(ctx)
    await start(ctx)
    comp = ctx.ports.national_link
    assert await wait_for(lambda: comp.puller.state.last_success > 0)
    assert ctx.pipeline.process([net_event("203.0.113.50")]) == []

    center.indicators.add(load_section({"type": "ipv4", "value": "203.0.113.50",
                                        "name": "C2 Mưa Phùn", "severity": "critical"},
                                       IndicatorSpec, "t"))
    # Within one pull interval (300 ms) plus slack for a loaded test machine.
    assert await wait_for(lambda: len(comp.stage.set) == 1, timeout=3.0)
    alerts = ctx.pipeline.process([net_event("203.0.113.50")])
    assert len(alerts) == 1 and "C2 Mưa Phùn" in alerts[0]["rule"]["name"]
    assert alerts[0]["event"]["severity"] == 99
    assert comp.puller.state.not_modified >= 0
    await stop(ctx)

    # Restart with the center gone: the persisted set matches at once.
    await center.stop_listening()
    ctx2 = collector_ctx(tmp_path, national_section(center, test_ca.cert))
    setup(ctx2)
    assert len(ctx2.ports.indicators.set) == 1
    assert len(ctx2.pipeline.process([net_event("203.0.113.50")])) == 1


async def test_etag_makes_repeated_pulls_cheap(center, test_ca, tmp_path):
    ctx = collector_ctx(tmp_path, national_section(center, test_ca.cert))
    setup(ctx)
    comp = ctx.ports.national_link
    assert await comp.puller.pull_once() is True
    assert await comp.puller.pull_once() is False
    assert comp.puller.state.not_modified == 1
    await comp.stop()


async def test_check_metrics_and_coverage_view(center, test_ca, tmp_path):
    ctx = collector_ctx(tmp_path, national_section(center, test_ca.cert))
    setup(ctx)
    comp = ctx.ports.national_link
    await comp.check_once()
    rep = comp.state.last_check
    assert rep.ok, rep.table()
    assert [s.name for s in rep.steps] == ["dns", "tcp", "tls", "ping", "clock", "signed"]
    assert comp.link_up is True
    text = generate_latest(ctx.registry).decode()
    assert "canhgac_national_link_up 1.0" in text
    assert "canhgac_national_rtt_seconds" in text
    assert "canhgac_national_clock_skew_seconds" in text
    assert "canhgac_national_cert_expiry_timestamp_seconds" in text
    assert 'canhgac_national_check_step_ok{step="signed"} 1.0' in text

    center.faults.update({"reject_signatures": True})
    await comp.check_once()
    assert not comp.state.last_check.ok and comp.link_up is False
    assert 'canhgac_national_check_step_ok{step="signed"} 0.0' in generate_latest(ctx.registry).decode()
    await comp.stop()


async def test_summaries_are_injected_for_each_system(center, test_ca, tmp_path):
    ctx = collector_ctx(tmp_path, national_section(center, test_ca.cert),
                        outputs={"store": {}, "national": {}})
    setup(ctx)
    comp = ctx.ports.national_link
    await start(ctx)
    assert ctx.pipeline.stages[-1] is comp.summary  # appended last, at start
    ctx.pipeline.process([net_event("192.0.2.1") for _ in range(4)])
    assert await comp.emit_summaries() == 1
    [summary] = [e for e in INJECTED[id(ctx)] if e["event"]["dataset"] == "national.summary"]
    assert summary["canhgac"]["summary"]["events"] == 4
    assert summary["canhgac"]["summary"]["agents"]["coverage"] == 1.0
    ctx.pipeline.process([net_event("192.0.2.1")])
    await stop(ctx)  # the partial period is spooled on the way out
    summaries = [e for e in INJECTED[id(ctx)] if e["event"]["dataset"] == "national.summary"]
    assert [s["canhgac"]["summary"]["events"] for s in summaries] == [4, 1]


def write_config(tmp_path, center, ca: Path, secret: bytes = SECRET) -> Path:
    path = tmp_path / "collector.yaml"
    path.write_text(orjson.dumps({"state_dir": str(tmp_path / "st"),
                                  "national": national_section(center, ca, secret)}).decode())
    return path


async def run_cli(*argv: str) -> int:
    """canhgac main() in a thread; its logging set-up is undone (it binds the captured stderr)."""
    from canhgac.cli import main

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return await asyncio.to_thread(main, list(argv))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


async def test_check_command_pass_and_fail(center, test_ca, tmp_path, capsys):
    good = write_config(tmp_path, center, test_ca.cert)
    assert await run_cli("check", "national", "--config", str(good)) == 0
    out = capsys.readouterr().out
    for step in ("dns", "tcp", "tls", "ping", "clock", "signed"):
        assert step in out
    assert "FAIL" not in out and "national link: OK" in out and "ms" in out

    wrong_secret = write_config(tmp_path, center, test_ca.cert, secret=b"w" * 32)
    assert await run_cli("check", "national", "--config", str(wrong_secret)) == 1
    out = capsys.readouterr().out
    assert "signed" in out and "FAIL" in out and "bad_signature" in out

    other_ca = make_ca(tmp_path / "other-ca", "someone else")
    untrusted = write_config(tmp_path, center, other_ca.cert)
    assert await run_cli("check", "national", "--config", str(untrusted), "--format", "json") == 1
    doc = orjson.loads(capsys.readouterr().out)
    tls = next(s for s in doc["steps"] if s["name"] == "tls")
    assert not tls["ok"] and "not trusted" in tls["detail"]

    await center.stop_listening()
    assert await run_cli("check", "national", "--config", str(good)) == 1
    out = capsys.readouterr().out
    assert "tcp" in out and "skipped" in out

    bad = tmp_path / "bad.yaml"
    bad.write_text("national:\n  link:\n    url: http://plain\n")
    assert await run_cli("check", "national", "--config", str(bad)) == 2
    assert "national.link.url" in capsys.readouterr().err


async def test_wired_through_the_real_collector_app(center, test_ca, tmp_path):
    """collector.app builds the output and the component; a spooled alert reaches the center."""
    from collector.app import CTX_KEY, build_context

    cfg = load_section({"state_dir": str(tmp_path / "c"),
                        "national": national_section(center, test_ca.cert),
                        "outputs": {"national": {}}}, CollectorConfig, "collector.yaml")
    ctx = build_context(cfg, "collector.yaml", ("collector.national",))
    assert ctx.app[CTX_KEY] is ctx
    runner = web.AppRunner(ctx.app)
    await runner.setup()  # runs on_startup: spool, deliveries, our hooks
    try:
        alert = new_event("alert", kind="alert")
        alert["event"]["severity"] = 73
        alert["canhgac"] = {"system": {"id": "dvc", "level": 3}}
        await ctx.spool.append([orjson.dumps(alert)], PRIORITY_SECURITY)
        assert await ctx.deliveries["national"].flush(timeout=10)
        assert center.storage.event_ids() == [alert["event"]["id"]]
        comp = ctx.ports.national_link
        assert comp.last_delivery.keys() == {"dvc"}
        text = generate_latest(ctx.registry).decode()
        assert "canhgac_national_reports_delivered_total 1.0" in text
    finally:
        await runner.cleanup()
