"""A real Prometheus scrapes the collector's /metrics and evaluates our rules.

Against the Debian ``prometheus`` binary on loopback (a missing binary fails the
test: `make test` installs it with deploy/test-deps.sh):

- promtool check config / check rules / test rules pass on deploy/prometheus;
- ``test_prometheus_scrapes_and_every_expression_returns_data``: the coverage and
  alerts components on a real CollectorContext with the lead's pipeline metrics,
  agents and the national link as stand-ins so that *every* rule's condition can
  be made true: every PromQL expression of every dashboard and rule returns data,
  every alert the scenario is built for becomes pending;
- ``test_real_collector_scraped_by_prometheus``: the collector as collector.app
  builds it, over HTTPS, agents enrolled and heartbeating through /v1/events:
  every expression (rules: the series they compare) returns data, except those
  that need a national output, which has no center to talk to here.

Both check the scenario: no independent assessment this year or last gives layer 3 = 0,
and an agent that stops drops layer 2 of its system within
offline_after + cache_ttl + scrape interval (+ slack).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

import collector.alerts
import collector.coverage
from canhgac.schema import new_event
from canhgac.timeutil import from_epoch
from canhgac.tls import issue_cert
from collector.auth import AuthStore
from collector.config import CollectorConfig, TlsConfig
from collector.context import CollectorContext, Ports
from collector.fleet import Presence
from collector.inventory import load_inventory
from collector.metrics import IngestMetrics, PipelineCollector
from collector.pipeline import Pipeline
from shipper.delivery import DeliveryStats
from shipper.queue import OutputStats
from tests.fixtures.common import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
RULES = PROM_DIR / "rules" / "canhgac.rules.yml"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
OFFLINE_AFTER = 3.0
CACHE_TTL = 1.0
SCRAPE = 1.0
ALL_PROBES = ("host_metrics", "session", "auth_log", "file_integrity", "network_sensor")
UNIT_A = "Sở Thông tin và Truyền thông"


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} not found: install the Debian package 'prometheus' (deploy/test-deps.sh)"
    return path


def _today_minus(days: int) -> str:
    return (dt.date.today() - dt.timedelta(days=days)).isoformat()


def _inventory_yaml() -> dict[str, Any]:
    team = {"team": [{"name": "Nguyễn Văn An", "role": "Trưởng nhóm ATTT"}]}
    return {
        "province": "Thừa Thiên Huế",
        "systems": [
            {"id": "cong-ttdt", "name": "Cổng thông tin điện tử tỉnh", "unit": UNIT_A, "level": 3,
             "approval": {"approved": True, "decision": "1234/QĐ-UBND", "date": "2024-08-15"},
             "plan": {"deployed": "2024-11-20"}, "hosts": ["portal-01", "portal-02"],
             "onsite": team, "national": {"enabled": True},
             "assessments": [{"date": _today_minus(30), "organisation": "Đơn vị kiểm định A",
                              "independent": True}]},
            {"id": "mot-cua", "name": "Hệ thống một cửa điện tử", "unit": UNIT_A, "level": 3,
             "approval": {"approved": True, "date": "2024-09-01"}, "hosts": ["dvc-01"],
             "onsite": team, "national": {"enabled": True},
             "assessments": [{"date": _today_minus(800), "organisation": "Đơn vị kiểm định B",
                              "independent": True}]},
            {"id": "his", "name": "Hệ thống quản lý bệnh viện", "unit": "Sở Y tế", "level": 2,
             "hosts": ["his-01"]},
        ],
    }


@dataclass
class FakeAgent:
    """An agent as the lead's agents() returns it; heartbeats while ``alive``."""

    agent_id: str
    system_id: str
    hostname: str
    probes: dict[str, Any] = field(default_factory=dict)
    alive: bool = True
    stopped_at: float = 0.0
    revoked: float | None = None

    @property
    def last_seen(self) -> float:
        return time.time() if self.alive else self.stopped_at

    @property
    def heartbeat(self) -> dict[str, Any]:
        return {"version": "0.2.0", "probes": self.probes}

    def stop(self) -> None:
        self.stopped_at = time.time()
        self.alive = False


class Agents:
    def __init__(self, agents: list[FakeAgent]) -> None:
        self._agents = agents

    def agents(self) -> list[FakeAgent]:
        return list(self._agents)


class NationalStandIn:
    """The national component's status object, and its link gauge (its own metric)."""

    def __init__(self) -> None:
        self.link_up = False
        self.last_delivery: dict[str, float] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("canhgac_national_link_up", "1 while the national link is up")
        g.add_metric([], 1 if self.link_up else 0)
        yield g


@dataclass
class Collector:
    ctx: CollectorContext
    agents: list[FakeAgent]
    url: str
    inventory_path: Path


@pytest.fixture
async def running_collector(tmp_path: Path, test_ca) -> Collector:  # type: ignore[no-untyped-def]
    inv_path = tmp_path / "inventory.yaml"
    inv_path.write_text(yaml.safe_dump(_inventory_yaml(), allow_unicode=True), encoding="utf-8")
    cert = issue_cert(test_ca, tmp_path / "certs", "collector", ["127.0.0.1"], days=10)
    cfg = CollectorConfig(
        state_dir=tmp_path / "state", inventory=inv_path, heartbeat_interval=1.0,  # type: ignore[arg-type]
        tls=TlsConfig(cert=cert.cert, key=cert.key, ca=test_ca.cert),
        offline_after=OFFLINE_AFTER,  # type: ignore[arg-type]
        coverage={"cache_ttl": f"{CACHE_TTL:g}s"},
    )
    agents = [
        FakeAgent("a1", "cong-ttdt", "portal-01", dict.fromkeys(ALL_PROBES, {"running": True})),
        FakeAgent("a2", "cong-ttdt", "portal-02", dict.fromkeys(ALL_PROBES, {"running": True})),
        FakeAgent("a3", "mot-cua", "dvc-01", {"host_metrics": {"running": True}}),
        FakeAgent("a4", "his", "his-01", dict.fromkeys(ALL_PROBES, {"running": True})),
    ]
    agents[3].stop()  # his-01 has been offline since before the scrape started
    agents[3].stopped_at -= 600
    national = NationalStandIn()

    async def no_inject(_events: list[dict]) -> None:
        raise AssertionError("nothing is injected in this test")

    ctx = CollectorContext(
        config=cfg, source="collector.yaml", state_dir=cfg.state_dir, app=web.Application(),
        registry=CollectorRegistry(), pipeline=Pipeline(), auth=AuthStore(tmp_path / "auth.db"),
        inventory=load_inventory(inv_path), inject=no_inject,
        ports=Ports(agents=Agents(agents), presence=Presence.of(cfg), national_link=national),
    )
    ctx.registry.register(national)

    # The components under test, wired as the collector app wires them.
    collector.alerts.setup(ctx)
    collector.coverage.setup(ctx)

    # The lead's pipeline metrics, fed with figures the dashboards and rules read.
    ingest = IngestMetrics(ctx.registry)
    ingest.received.inc(120)
    ingest.accepted.inc(117)
    ingest.rejected.labels("json").inc(3)
    ingest.requests.labels("200").inc(4)
    ingest.latency.observe(0.004)
    pipeline = PipelineCollector(ctx)
    pipeline.snapshot = {"elasticsearch": OutputStats(0, 0, 0.0),
                         "national": OutputStats(40, 2, 900.0)}
    for name in ("elasticsearch", "national"):
        ctx.deliveries[name] = SimpleNamespace(stats=DeliveryStats(  # type: ignore[assignment]
            delivered_events=100, retried_events=1, dead_events=0, batches=3,
            last_success=time.time() - 5, up=name != "national"))
    ctx.registry.register(pipeline)

    # One alert of a level-3 system, raised 5 h ago and never acknowledged: late (SLA 4 h).
    old = new_event("alert", kind="alert", timestamp=from_epoch(time.time() - 5 * 3600),
                    rule={"id": "ssh-bf", "name": "SSH brute force"})
    old["canhgac"] = {"system": {"id": "mot-cua", "level": 3}, "unit": {"name": UNIT_A}}
    ctx.pipeline.process([old])

    async def metrics(_request: web.Request) -> web.Response:
        body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, ctx.registry)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})

    ctx.app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(ctx.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with ctx.running_lifespans():
            yield Collector(ctx, agents, f"127.0.0.1:{port}", inv_path)
    finally:
        await runner.cleanup()
        ctx.auth.close()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Start prometheus on a free loopback port; yields (base url, config path)."""
    binary = _tool("prometheus")
    port = free_port()
    cfg = tmp_path / "prometheus.yml"
    log = (tmp_path / "prometheus.log").open("wb")
    # The target is filled in by the test once the collector listens.
    cfg.write_text("global: {}\n", encoding="utf-8")
    proc = subprocess.Popen(
        [binary, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle",
         "--storage.tsdb.retention.time=1h"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.2)
        yield base, cfg
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _get(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _post(base: str, path: str) -> None:
    req = urllib.request.Request(f"{base}{path}", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    body = _get(base, "/api/v1/query", query=expr)
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


async def _wait_for(base: str, expr: str, ok, timeout: float = 20.0) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = await asyncio.to_thread(_query, base, expr)
        if ok(result):
            return result
        assert time.monotonic() < deadline, f"timed out waiting on {expr}: {result}"
        await asyncio.sleep(0.25)


GRAFANA_VARS = {"$__rate_interval": "30s", "$__interval": "15s", "$__range": "5m",
                "$unit": ".*", "$level": ".*"}


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, expr) for every Prometheus target and template variable in every dashboard."""
    out = []
    for path in DASHBOARDS:
        dash = json.loads(path.read_text(encoding="utf-8"))
        for var in dash.get("templating", {}).get("list", []):
            q = var["query"]["query"] if isinstance(var.get("query"), dict) else var.get("query")
            m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", q or "")
            assert m, f"{path.name}: variable {var['name']}: unsupported query {q!r}"
            out.append((f"{path.name}:var:{var['name']}", f"count by ({m[2]}) ({m[1]})"))
        for panel in dash["panels"]:
            for t in panel.get("targets", []):
                if t.get("datasource", {}).get("type", "prometheus") != "prometheus":
                    continue
                expr = t["expr"]
                for k, v in GRAFANA_VARS.items():
                    expr = expr.replace(k, v)
                assert "$" not in expr, f"{path.name}: unknown variable in {expr!r}"
                out.append((f"{path.name}:{panel['title']}:{t['refId']}", expr))
    return out


def rule_exprs() -> list[tuple[str, str]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [(r.get("alert") or r.get("record"), r["expr"]) for g in groups for r in g["rules"]]


# Alerts the scenario is built to raise (CanhgacCollectorDown cannot be while it is scraped).
EXPECTED_ALERTS = {
    "CanhgacLayerCoverageBelowFull", "CanhgacObligationOverdue", "CanhgacInventoryFileInvalid",
    "CanhgacAgentOffline", "CanhgacSpoolLag", "CanhgacNationalLinkDown",
    "CanhgacCertificateExpiring",
}


def test_promtool_check_config_and_rules(tmp_path: Path) -> None:
    promtool = _tool("promtool")
    # The shipped config, with the files it names (token, CA) present, as on a real host.
    cfg = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    for job in cfg["scrape_configs"]:
        token = tmp_path / "metrics.token"
        token.write_text("t\n")
        assert job["authorization"]["credentials_file"]  # /metrics needs the bearer token
        job["authorization"]["credentials_file"] = str(token)
    cfg["rule_files"] = [str(PROM_DIR / r) for r in cfg["rule_files"]]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    for args in (["check", "config", str(checked)],
                 ["check", "rules", str(RULES)],
                 ["test", "rules", str(PROM_DIR / "tests" / "canhgac.rules.test.yml")]):
        r = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120,
                           cwd=PROM_DIR)
        assert r.returncode == 0, f"promtool {' '.join(args)}:\n{r.stdout}\n{r.stderr}"
    assert {name for name, _ in rule_exprs()} >= EXPECTED_ALERTS | {"CanhgacCollectorDown"}


async def test_prometheus_scrapes_and_every_expression_returns_data(
        running_collector: Collector, prometheus: tuple[str, Path]) -> None:
    base, cfg_path = prometheus
    col = running_collector
    cfg_path.write_text(yaml.safe_dump({
        "global": {"scrape_interval": f"{SCRAPE:g}s", "evaluation_interval": f"{SCRAPE:g}s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "canhgac-collector",
                            "static_configs": [{"targets": [col.url]}]}],
    }), encoding="utf-8")
    await asyncio.to_thread(_post, base, "/-/reload")

    # Scraped, with names and diacritics intact.
    await _wait_for(base, 'up{job="canhgac-collector"} == 1', bool)
    info = await _wait_for(base, "canhgac_system_info", lambda r: len(r) == 3)
    assert {r["metric"]["name"] for r in info} >= {"Cổng thông tin điện tử tỉnh"}
    assert {r["metric"]["province"] for r in info} == {"Thừa Thiên Huế"}

    # Layer 3 follows the assessment dates: 30 days ago -> 1; 800 days ago (two calendar
    # years back) -> 0.
    l3 = {r["metric"]["system"]: float(r["value"][1]) for r in await asyncio.to_thread(
        _query, base, 'canhgac_layer_coverage_ratio{layer="assessment"}')}
    assert l3 == {"cong-ttdt": 1.0, "mot-cua": 0.0, "his": 0.0}
    age = await asyncio.to_thread(_query, base, 'canhgac_system_assessment_age_days{system="mot-cua"}')
    assert float(age[0]["value"][1]) == 800

    # An agent stops: layer 2 of its system drops once its heartbeat is 3 intervals old.
    l2 = 'canhgac_layer_coverage_ratio{layer="monitoring",system="cong-ttdt"}'
    await _wait_for(base, l2, lambda r: r and float(r[0]["value"][1]) == 1.0)
    stopped = time.monotonic()
    col.agents[1].stop()
    await _wait_for(base, l2, lambda r: r and float(r[0]["value"][1]) == 0.5, timeout=30)
    took = time.monotonic() - stopped
    bound = OFFLINE_AFTER + CACHE_TTL + SCRAPE + 2.0  # + query/scheduling slack
    assert OFFLINE_AFTER - SCRAPE <= took <= bound, f"layer 2 dropped after {took:.1f}s"

    # A refused inventory keeps the old one in force and raises its alert.
    col.inventory_path.write_text("systems:\n  - id: x\n    level: 9\n", encoding="utf-8")
    await _wait_for(base, "canhgac_inventory_file_invalid == 1", bool, timeout=30)
    assert len(await asyncio.to_thread(_query, base, "canhgac_system_info")) == 3

    # Let rules evaluate at least twice more, then every expression must return data.
    await asyncio.sleep(2 * SCRAPE + 0.5)
    empty = []
    for where, expr in dashboard_queries() + rule_exprs():
        if not await asyncio.to_thread(_query, base, expr):
            empty.append(f"{where}: {expr}")
    # The collector is up, so its down-rule is empty by construction: check its operand instead.
    empty = [e for e in empty if not e.startswith("CanhgacCollectorDown:")]
    assert await asyncio.to_thread(_query, base, 'up{job="canhgac-collector"}')
    assert not empty, "expressions with no data:\n" + "\n".join(empty)

    rules = await asyncio.to_thread(_get, base, "/api/v1/rules")
    bad = [(r["name"], r.get("lastError")) for g in rules["data"]["groups"] for r in g["rules"]
           if r.get("health") != "ok"]
    assert not bad, bad
    active = await _wait_for(base, 'ALERTS{alertstate=~"pending|firing"}',
                             lambda r: {x["metric"]["alertname"] for x in r} >= EXPECTED_ALERTS)
    names = {x["metric"]["alertname"] for x in active}
    assert "CanhgacCollectorDown" not in names
    below = {x["metric"]["system"] for x in active
             if x["metric"]["alertname"] == "CanhgacLayerCoverageBelowFull"}
    assert below == {"cong-ttdt", "mot-cua"}  # level 3 only; "his" is level 2


# -- the real collector ------------------------------------------------------------
# Expressions that need a configured national output (output="national"): the real
# collector here has no national center to talk to; the stand-in test above covers them.
NEEDS_NATIONAL_OUTPUT = 'output="national"'


def _heartbeat(probes: dict[str, str]) -> dict[str, Any]:
    from agent.health import heartbeat_event

    return heartbeat_event({"probes": {n: {"state": s, "restarts": 0, "events": 1}
                                       for n, s in probes.items()}})


async def test_real_collector_scraped_by_prometheus(tmp_path: Path,
                                                    prometheus: tuple[str, Path]) -> None:
    """The collector app as built by collector.app, agents heartbeating over HTTPS."""
    import aiohttp

    from canhgac.tls import client_context
    from tests.fixtures.collector import gz_ndjson, start_collector

    base, cfg_path = prometheus
    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump(_inventory_yaml(), allow_unicode=True), encoding="utf-8")
    running, runner = await start_collector(tmp_path, {
        "inventory": str(inv), "heartbeat_interval": 1,
        "offline_after": f"{OFFLINE_AFTER:g}s",
        "coverage": {"cache_ttl": f"{CACHE_TTL:g}s"},
    }, components=None)
    alive = {"portal-01": True, "portal-02": True, "dvc-01": True}
    tokens: dict[str, str] = {}
    conn = aiohttp.TCPConnector(ssl=client_context(running.ca))
    session = aiohttp.ClientSession(connector=conn)
    sent = 0

    async def beat() -> None:
        nonlocal sent
        all_running = dict.fromkeys(ALL_PROBES, "running")
        while True:
            for host, token in tokens.items():
                if not alive[host]:
                    continue
                probes = all_running if host != "dvc-01" else {**all_running, "network_sensor": "backoff"}
                sent += 1
                async with session.post(
                        f"{running.url}/v1/events", data=gz_ndjson([_heartbeat(probes)]),
                        headers={"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                                 "X-Batch-Id": f"hb-{host}-{sent}"}) as r:
                    assert r.status == 200, await r.text()
            await asyncio.sleep(0.3)

    beater: asyncio.Task[None] | None = None
    try:
        for host, system in (("portal-01", "cong-ttdt"), ("portal-02", "cong-ttdt"),
                             ("dvc-01", "mot-cua")):
            tokens[host] = await running.enroll(session, system=system, hostname=host)
        beater = asyncio.create_task(beat())
        cfg_path.write_text(yaml.safe_dump({
            "global": {"scrape_interval": f"{SCRAPE:g}s", "evaluation_interval": f"{SCRAPE:g}s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "canhgac-collector", "scheme": "https",
                                "tls_config": {"ca_file": str(running.ca)},
                                "authorization": {"type": "Bearer", "credentials_file":
                                                  str(running.state_dir / "metrics.token")},
                                "static_configs": [{"targets": [running.url.split("//")[1]]}]}],
        }), encoding="utf-8")
        await asyncio.to_thread(_post, base, "/-/reload")
        await _wait_for(base, 'up{job="canhgac-collector"} == 1', bool)

        l2 = 'canhgac_layer_coverage_ratio{layer="monitoring",system=~"cong-ttdt|mot-cua"}'
        got = await _wait_for(base, l2, lambda r: len(r) == 2 and all(
            float(x["value"][1]) == (1.0 if x["metric"]["system"] == "cong-ttdt" else 0.0)
            for x in r))
        assert got  # dvc-01's network sensor is in backoff: mot-cua is not covered
        l3 = {r["metric"]["system"]: float(r["value"][1]) for r in await asyncio.to_thread(
            _query, base, 'canhgac_layer_coverage_ratio{layer="assessment"}')}
        assert l3 == {"cong-ttdt": 1.0, "mot-cua": 0.0, "his": 0.0}

        stopped = time.monotonic()
        alive["portal-02"] = False
        one = 'canhgac_layer_coverage_ratio{layer="monitoring",system="cong-ttdt"}'
        await _wait_for(base, one, lambda r: r and float(r[0]["value"][1]) == 0.5, timeout=30)
        took = time.monotonic() - stopped
        # Never too early: not before offline_after less the stopped agent's heartbeat period
        # (its last beat may be that old already). How late depends on the machine: the
        # wait above has a generous deadline instead of a bound here.
        assert took >= OFFLINE_AFTER - 0.3 - 0.05, took

        await asyncio.sleep(2 * SCRAPE + 0.5)
        empty = []
        for where, expr in dashboard_queries() + rule_exprs():
            if NEEDS_NATIONAL_OUTPUT in expr or where == "CanhgacCollectorDown":
                continue
            left = expr
            if where in {name for name, _ in rule_exprs()}:
                # The real scenario cannot make every condition true (no 10-minute lag,
                # no refused file): check that the series the rule compares exist.
                left = re.split(r"\s(?:==|!=|>=|<=|>|<)\s", expr)[0]
            if not await asyncio.to_thread(_query, base, left):
                empty.append(f"{where}: {left}")
        assert not empty, "expressions with no data from the real collector:\n" + "\n".join(empty)
        active = await _wait_for(
            base, 'ALERTS{alertstate=~"pending|firing"}',
            lambda r: {x["metric"]["alertname"] for x in r} >= {
                "CanhgacLayerCoverageBelowFull", "CanhgacAgentOffline", "CanhgacNationalLinkDown"})
        assert "CanhgacCollectorDown" not in {x["metric"]["alertname"] for x in active}
    finally:
        if beater is not None:
            beater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beater
        await session.close()
        await runner.cleanup()
