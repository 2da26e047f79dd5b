"""Hourly per-system summaries."""

from __future__ import annotations

from canhgac.schema import ALERT, AUTH, new_event
from collector.inventory import InventoryHolder, parse_inventory
from collector.national.summary import SummaryStage
from shipper.outputs.national.policy import SUMMARY_DATASET


def _ev(dataset, system, host, agent, kind="event", severity=None):
    ev = new_event(dataset, kind=kind)
    if severity is not None:
        ev["event"]["severity"] = severity
    ev["canhgac"] = {"system": {"id": system}}
    ev["host"] = {"name": host}
    ev["agent"] = {"id": agent}
    return ev


def test_summary_counts_per_system_and_reports_silent_systems():
    inv = InventoryHolder(parse_inventory({"systems": [
        {"id": "dvc", "name": "Cổng dịch vụ công", "unit": "Sở TT&TT", "level": 3,
         "hosts": ["web-1", "web-2"]},
        {"id": "mail", "name": "Thư điện tử", "unit": "Sở TT&TT", "level": 2, "hosts": ["mx"]},
    ]}, "inv.yaml"))
    st = SummaryStage(inv, now=1000.0)
    st.process([_ev(AUTH, "dvc", "web-1", "a1") for _ in range(3)]
               + [_ev("host.metrics", "dvc", "web-1", "a1"),
                  _ev(ALERT, "dvc", "web-1", "a1", kind="alert", severity=73),
                  _ev(ALERT, "dvc", "web-1", "a1", kind="alert", severity=21),
                  new_event(SUMMARY_DATASET, kind="metric")])
    out = {e["canhgac"]["system"]["id"]: e for e in st.flush(now=4600.0)}
    assert set(out) == {"dvc", "mail"}
    s = out["dvc"]["canhgac"]["summary"]
    assert out["dvc"]["event"]["dataset"] == SUMMARY_DATASET
    assert s["events"] == 6 and s["events_by_dataset"] == {"auth": 3, "host_metrics": 1, "alert": 2}
    assert s["alerts_by_severity"] == {"low": 1, "medium": 0, "high": 1, "critical": 0}
    assert s["agents"] == {"reporting": 1, "hosts_reporting": 1, "hosts_expected": 2,
                           "coverage": 0.5}
    assert s["period"]["start"].startswith("1970-01-01T00:16:40")
    assert out["dvc"]["canhgac"]["system"]["name"] == "Cổng dịch vụ công"
    assert out["dvc"]["canhgac"]["system"]["level"] == 3
    assert out["mail"]["canhgac"]["summary"]["events"] == 0
    # The next period starts empty.
    assert all(e["canhgac"]["summary"]["events"] == 0 for e in st.flush(now=8200.0))


def test_host_selectors_and_case_in_summaries():
    """Issue 9 findings: a system whose 3 agents report (``dvc-app-*``) was summarised with
    coverage 0.0 (the glob taken for a host), and so was host PORTAL-WEB-01 (case)."""
    inv = InventoryHolder(parse_inventory({"systems": [
        {"id": "dvc", "name": "DVC", "unit": "U", "level": 3, "hosts": ["dvc-app-*"]},
        {"id": "portal", "name": "Cổng", "unit": "U", "level": 2, "hosts": ["portal-web-01"]},
        {"id": "quiet", "name": "Q", "unit": "U", "level": 1, "hosts": ["q-*"]},
    ]}, "inv.yaml"))
    st = SummaryStage(inv, now=0.0)
    st.process([_ev(AUTH, "dvc", f"dvc-app-{i}", f"a{i}") for i in range(3)]
               + [_ev(AUTH, "portal", "PORTAL-WEB-01", "p1")])
    out = {e["canhgac"]["system"]["id"]: e["canhgac"]["summary"]["agents"]
           for e in st.flush(now=3600.0)}
    assert out["dvc"] == {"reporting": 3, "hosts_reporting": 3, "hosts_expected": 3, "coverage": 1.0}
    assert out["portal"] == {"reporting": 1, "hosts_reporting": 1, "hosts_expected": 1,
                             "coverage": 1.0}
    assert out["quiet"]["coverage"] == 0.0
