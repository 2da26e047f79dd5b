"""Coverage history: change detection, daily snapshots with an injected clock, --at and
--since answers, retention pruning and scoped access (docs/coverage.md, "History")."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from canhgac.errors import UserError
from collector.alerts.access import Access, ensure_token, read_token
from collector.coverage.config import CoverageConfig, load_coverage_config
from collector.coverage.history import HistoryStore, layer_state, parse_since
from collector.coverage.history_api import HistoryAPI, changes_only
from collector.coverage.model import compute
from collector.coverage.render import render, render_trend
from collector.coverage.service import CoverageService
from collector.fleet import Presence
from collector.inventory import InventoryHolder, parse_inventory
from tests.unit.test_coverage import Agents, Clock, FakeAgent, running

ICT = dt.timezone(dt.timedelta(hours=7))
DAY1 = dt.datetime(2025, 6, 1, 12, 0, tzinfo=ICT).timestamp()
ALL = ("host_metrics", "session", "auth_log", "file_integrity", "network_sensor")
YTE = "Sở Y tế"
STTTT = "Sở Thông tin và Truyền thông"


def systems(**s3: Any) -> InventoryHolder:
    base = {"id": "cong-ttdt", "name": "Cổng thông tin điện tử tỉnh", "unit": STTTT, "level": 3,
            "hosts": ["web-01", "web-02", "web-03"],
            "approval": {"approved": True, "date": "2024-08-15"},
            "plan": {"deployed": "2024-11-20"}, "onsite": {"team": [{"name": "Nguyễn Văn An"}]}}
    base.update(s3)
    his = {"id": "his", "name": "Quản lý bệnh viện", "unit": YTE, "level": 2, "hosts": ["his-01"]}
    return InventoryHolder(parse_inventory({"province": "Thừa Thiên Huế",
                                            "systems": [base, his]}, "t"))


def agents(up: int) -> list[FakeAgent]:
    """``up`` of cong-ttdt's three hosts covered (layer 2 = up/3)."""
    return [FakeAgent(f"a{i}", "cong-ttdt", f"web-0{i}", DAY1 + 10 * 86400, running(*ALL))
            for i in range(1, up + 1)]


def rep(holder: InventoryHolder, at: float, up: int = 2):  # type: ignore[no-untyped-def]
    return compute(holder.current, CoverageConfig(), at, agents=agents(up), acks={}, link=None,
                   presence=Presence(1e9))


def store(tmp_path: Path, cfg: CoverageConfig | None = None, **kw: Any) -> HistoryStore:
    return HistoryStore(tmp_path / "history.db", cfg or CoverageConfig(), **kw)


def rows(h: HistoryStore) -> list[tuple[Any, ...]]:
    return h.db.execute("SELECT k.key, s.day, s.seq, s.reason FROM snapshots s "
                        "JOIN systems k ON k.id = s.sys ORDER BY k.key, s.day, s.seq").fetchall()


def test_layer_states() -> None:
    assert [layer_state(x) for x in (0.0, 0.01, 0.99, 1.0)] == ["none", "partial", "partial",
                                                                 "full"]


def test_a_change_is_a_state_change_not_a_ratio_wobble(tmp_path: Path) -> None:
    holder = systems()
    h = store(tmp_path)
    h.on_report(rep(holder, DAY1, up=2))
    assert len(rows(h)) == 2  # the first report of the day: every system (reason start)
    h.on_report(rep(holder, DAY1 + 60, up=1))  # 2/3 -> 1/3: still partial
    assert len(rows(h)) == 2
    h.on_report(rep(holder, DAY1 + 120, up=3))  # partial -> full: a change
    h.on_report(rep(holder, DAY1 + 180, up=0))  # full -> none: a change
    # an obligation flag flips: the plan is no longer recorded as deployed
    h.on_report(rep(systems(plan={}), DAY1 + 240, up=0))
    # the level changes
    h.on_report(rep(systems(plan={}, level=4), DAY1 + 300, up=0))
    got = [(r[0], r[2]) for r in rows(h)]
    assert got == [("cong-ttdt", 0), ("cong-ttdt", 1), ("cong-ttdt", 2), ("cong-ttdt", 3),
                   ("cong-ttdt", 4), ("his", 0)]
    trend = h.trend("cong-ttdt", dt.date(2025, 6, 1), dt.date(2025, 6, 1))
    assert [s.reason for s in trend] == ["start", "change", "change", "change", "change"]
    assert [s.states[1] for s in trend] == ["partial", "full", "none", "none", "none"]
    assert trend[3].flag("plan_deployed") is False and trend[2].flag("plan_deployed") is True
    assert trend[-1].level == 4
    entries = changes_only(trend)
    assert entries[1]["changed"] == ["monitoring"]
    assert entries[3]["changed"] == ["plan_deployed", "plan_overdue"] and entries[4]["changed"] == ["level"]
    h.close()


def test_removed_system_leaves_the_answer_and_a_new_one_enters(tmp_path: Path) -> None:
    h = store(tmp_path)
    h.on_report(rep(systems(), DAY1))
    only_his = InventoryHolder(parse_inventory({"province": "Thừa Thiên Huế", "systems": [
        {"id": "his", "name": "Quản lý bệnh viện", "unit": YTE, "level": 2, "hosts": ["his-01"]}]},
        "t"))
    h.on_report(rep(only_his, DAY1 + 86400))
    day2 = dt.date(2025, 6, 2)
    assert [s.system for s in h.at(day2)] == ["his"]
    assert [s.system for s in h.at(dt.date(2025, 6, 1))] == ["cong-ttdt", "his"]
    h.on_report(rep(systems(), DAY1 + 2 * 86400))
    assert [s.system for s in h.at(dt.date(2025, 6, 3))] == ["cong-ttdt", "his"]
    assert h.trend("cong-ttdt", day2, day2)[-1].status == "removed"
    h.close()


async def test_snapshot_at_start_if_missing_and_at_local_midnight(tmp_path: Path) -> None:
    holder = systems()
    clock = Clock(DAY1)
    cfg = CoverageConfig()
    svc = CoverageService(holder, cfg, agents=Agents(agents(2)), presence=Presence(1e9),
                          clock=clock)
    h = store(tmp_path, cfg, report=lambda: svc.report(0.0), clock=clock)
    svc.listeners.append(h.on_report)
    await h.start()
    assert [(r[0], r[3]) for r in rows(h)] == [("cong-ttdt", 1), ("his", 1)]  # reason start
    assert h.daily_day == dt.date(2025, 6, 1)
    # 12:00 -> midnight in the province (UTC+7), not in UTC
    assert h.seconds_to_midnight() == 12 * 3600
    clock.t = DAY1 + 6 * 3600
    await h.check()  # same day: nothing
    h.flush()
    assert len(rows(h)) == 2
    await h.stop()
    h.close()

    # a restart the same day does not take another daily snapshot
    h = store(tmp_path, cfg, report=lambda: svc.report(0.0), clock=clock)
    svc.listeners[:] = [h.on_report]
    await h.start()
    assert len(rows(h)) == 2
    clock.t = dt.datetime(2025, 6, 2, 0, 0, 30, tzinfo=ICT).timestamp()  # 00:00:30 local
    await h.check()
    h.flush()
    day2 = dt.date(2025, 6, 2).toordinal()
    assert [(r[0], r[3]) for r in rows(h) if r[1] == day2] == [("cong-ttdt", 0), ("his", 0)]
    assert h.db.execute("SELECT count(*) FROM days").fetchone()[0] == 2
    await h.stop()
    h.close()


def test_at_is_the_last_snapshot_on_or_before_the_day(tmp_path: Path) -> None:
    holder = systems()
    h = store(tmp_path)
    h.on_report(rep(holder, DAY1, up=2))
    h.on_report(rep(holder, DAY1 + 3600, up=3))  # full on day 1
    h.on_report(rep(holder, DAY1 + 2 * 86400, up=0))  # day 3: none
    at = {s.system: s for s in h.at(dt.date(2025, 6, 2))}
    assert at["cong-ttdt"].ratios[1] == 1.0 and at["cong-ttdt"].seq == 1
    assert h.at(dt.date(2025, 6, 3))[0].ratios[1] == 0.0
    assert h.at(dt.date(2025, 5, 31)) == []
    trend = h.trend("cong-ttdt", dt.date(2025, 6, 2), dt.date(2025, 6, 3))
    assert [(s.day.day, s.ratios[1]) for s in trend] == [(1, 1.0), (3, 0.0)]
    h.close()


def test_retention_prunes_old_rows_in_bounded_chunks(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import collector.coverage.history as history

    monkeypatch.setattr(history, "PRUNE_CHUNK", 3)
    cfg = load_coverage_config({"history_retention": "10d"}, "c")
    h = store(tmp_path, cfg)
    holder = systems()
    for d in range(30):  # the daily snapshot of day 30 prunes what is older than 10 days
        h.on_report(rep(holder, DAY1 + d * 86400))
    last = dt.date(2025, 6, 30)
    days = [r[0] for r in h.db.execute("SELECT DISTINCT day FROM snapshots ORDER BY day")]
    assert dt.date.fromordinal(days[0]) == last - dt.timedelta(days=10)
    assert len(days) == 11
    assert h.db.execute("SELECT min(day) FROM days").fetchone()[0] == days[0]
    h.close()


def test_retention_default_is_three_years_and_validated() -> None:
    assert float(CoverageConfig().history_retention) >= 3 * 365 * 86400
    with pytest.raises(UserError, match="coverage.history_retention"):
        load_coverage_config({"history_retention": "1h"}, "collector.yaml")


def test_parse_since() -> None:
    today = dt.date(2025, 6, 1)
    assert parse_since("1y", today) == dt.date(2024, 6, 1)
    assert parse_since("30d", today) == dt.date(2025, 5, 2)
    assert parse_since("2w", today) == dt.date(2025, 5, 18)
    assert parse_since("01/03/2025", today) == dt.date(2025, 3, 1)
    assert parse_since("1y", dt.date(2024, 2, 29)) == dt.date(2023, 2, 28)
    with pytest.raises(ValueError, match="since: not a period or a date"):
        parse_since("6m", today)


# -- the API, with scope ------------------------------------------------------------------
class Op:
    def __init__(self, name: str, scope: Any) -> None:
        self.name, self.role, self.scope = name, "operator", scope


class Operators:
    async def authenticate(self, request: web.Request) -> Op | None:
        return {"t-yte": Op("yte.an", {"units": [YTE]}), "t-soc": Op("soc", None)}.get(
            request.headers.get("Authorization", "")[7:])


async def _client(tmp_path: Path, h: HistoryStore, holder: InventoryHolder) -> TestClient:
    api = HistoryAPI(h, holder, Access(Operators(), ensure_token(tmp_path)))

    async def coverage(request: web.Request) -> web.Response:
        return await api.at(request, request.query["at"])

    app = web.Application()
    app.add_routes([web.get("/v1/coverage", coverage), web.get("/v1/coverage/history", api.history)])
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    return client


async def test_api_at_and_history_scoped_with_clear_errors(tmp_path: Path) -> None:
    holder = systems()
    clock = Clock(DAY1 + 2 * 86400)
    h = store(tmp_path, clock=clock)
    h.on_report(rep(holder, DAY1, up=2))
    h.on_report(rep(holder, DAY1 + 86400, up=3))
    client = await _client(tmp_path, h, holder)
    yte = {"Authorization": "Bearer t-yte"}
    admin = {"Authorization": f"Bearer {read_token(tmp_path / 'admin.token')}"}
    try:
        r = await client.get("/v1/coverage", params={"at": "2025-06-01"}, headers=admin)
        body = await r.json()
        assert r.status == 200 and body["at"] == "2025-06-01"
        assert [s["id"] for s in body["systems"]] == ["cong-ttdt", "his"]
        assert body["province_rollup"]["systems"] == 2
        assert "Bao phủ 4 lớp ngày / coverage on 2025-06-01" in render(body)
        # dd/mm/yyyy, as Vietnamese documents write it
        r = await client.get("/v1/coverage", params={"at": "02/06/2025"}, headers=admin)
        body = await r.json()
        cong = next(s for s in body["systems"] if s["id"] == "cong-ttdt")
        assert cong["layers"]["monitoring"]["ratio"] == 1.0
        # scoped: its unit's systems only, totals over those alone
        r = await client.get("/v1/coverage", params={"at": "2025-06-02"}, headers=yte)
        body = await r.json()
        assert [s["id"] for s in body["systems"]] == ["his"]
        assert body["province_rollup"]["systems"] == 1
        assert [u["name"] for u in body["units"]] == [YTE]
        for bad, fragment in (("2025-13-01", "at: not a date"), ("20250601", "at: not a date"),
                              ("2025-06-04", "is in the future")):
            r = await client.get("/v1/coverage", params={"at": bad}, headers=admin)
            assert r.status == 400 and fragment in (await r.json())["error"], bad

        r = await client.get("/v1/coverage/history", params={"system": "cong-ttdt", "since": "1y"},
                             headers=admin)
        body = await r.json()
        assert r.status == 200 and body["system"]["name"] == "Cổng thông tin điện tử tỉnh"
        assert [(e["day"], e["states"]["monitoring"]) for e in body["entries"]] == [
            ("2025-06-01", "partial"), ("2025-06-02", "full")]
        text = render_trend(body)
        assert "Cổng thông tin điện tử tỉnh" in text and "2025-06-02" in text
        assert "monitoring" in text.splitlines()[-2]
        r = await client.get("/v1/coverage/history", params={"system": "cong-ttdt", "every": "day"},
                             headers=admin)
        assert len((await r.json())["entries"]) == 2
        # out of scope answers exactly as unknown
        r1 = await client.get("/v1/coverage/history", params={"system": "cong-ttdt"}, headers=yte)
        r2 = await client.get("/v1/coverage/history", params={"system": "nope"}, headers=yte)
        assert r1.status == r2.status == 400
        assert (await r1.json())["error"] == "unknown system 'cong-ttdt' (see canhgac inventory show)"
        assert "unknown system 'nope'" in (await r2.json())["error"]
        r = await client.get("/v1/coverage/history", params={"system": "his"}, headers=yte)
        assert r.status == 200 and (await r.json())["system"]["unit"] == YTE
        for params, fragment in (({}, "system: required"),
                                 ({"system": "his", "since": "6m"}, "since: not a period"),
                                 ({"system": "his", "since": "2030-01-01"}, "in the future"),
                                 ({"system": "his", "every": "hour"}, "every: one of")):
            r = await client.get("/v1/coverage/history", params=params, headers=admin)
            assert r.status == 400 and fragment in (await r.json())["error"], params
        r = await client.get("/v1/coverage/history", params={"system": "his"})
        assert r.status == 401
    finally:
        await client.close()
        h.close()


def test_cli_refuses_bad_input_before_asking(capsys) -> None:  # type: ignore[no-untyped-def]
    from collector.coverage.cli import run

    base = dict(unit=None, system=None, at=None, since=None, every="change", format="table",
                color="never", config=None, url=None, ca=None, token_file=None, operator=None)
    for over, fragment in (({"at": "2025/06/01"}, "--at: not a date"),
                           ({"since": "1y"}, "add --system"),
                           ({"since": "1y", "system": "x", "at": "2025-06-01"}, "do not go together")):
        with pytest.raises(UserError, match=fragment) as exc:
            run(argparse.Namespace(**{**base, **over}))
        assert exc.value.exit_code == 2


def test_es_document_and_template(tmp_path: Path) -> None:
    from collector.coverage.history_es import doc_id, document, stream_name, template
    from shipper.outputs.elasticsearch.config import load

    h = store(tmp_path)
    h.on_report(rep(systems(), DAY1, up=2))
    snap = next(s for s in h.at(dt.date(2025, 6, 1)) if s.system == "cong-ttdt")
    assert doc_id(snap) == "cong-ttdt.2025-06-01.0"
    doc = document(snap)
    assert doc["canhgac"]["unit"]["name"] == STTTT
    assert doc["canhgac"]["coverage"]["layers"]["monitoring"] == {"ratio": 0.6667,
                                                                  "state": "partial"}
    assert doc["canhgac"]["coverage"]["obligations"]["plan_deployed"] is True
    cfg = load({"namespace": "hue"}, "t")
    assert stream_name(cfg) == "canhgac-coverage-history-hue"
    assert template(cfg, 1096)["template"]["lifecycle"] == {"data_retention": "1096d"}
    h.close()


def test_a_full_writer_queue_postpones_a_change_never_loses_it(tmp_path: Path) -> None:
    import threading

    holder = systems()
    h = store(tmp_path, queue_size=1)
    h.on_report(rep(holder, DAY1, up=2))  # written here (no writer thread yet)
    h._thread = threading.Thread(target=lambda: None)  # a writer that is stuck
    h.on_report(rep(holder, DAY1 + 60, up=3))  # queued (the queue holds one batch)
    h.on_report(rep(holder, DAY1 + 120, up=0))  # queue full: postponed
    assert h.skipped == 1
    h._write(h._queue.get_nowait())  # the writer catches up
    h._thread = None
    h.on_report(rep(holder, DAY1 + 180, up=0))  # the postponed change, at the next report
    trend = h.trend("cong-ttdt", dt.date(2025, 6, 1), dt.date(2025, 6, 1))
    assert [s.states[1] for s in trend] == ["partial", "full", "none"]
    h.close()
