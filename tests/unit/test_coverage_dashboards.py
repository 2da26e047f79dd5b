"""Static checks of deploy/grafana and deploy/prometheus that need no server.

The live checks (every expression returns data) are in
tests/integration/test_prometheus.py; these catch a broken file in a second.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def _datasource_uids() -> set[str]:
    prov = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "canhgac.yaml").read_text())
    return {d["uid"] for d in prov["datasources"]}


def test_provisioning_has_prometheus_and_elasticsearch() -> None:
    prov = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "canhgac.yaml").read_text())
    assert {d["type"] for d in prov["datasources"]} == {"prometheus", "elasticsearch"}
    es = next(d for d in prov["datasources"] if d["type"] == "elasticsearch")
    assert es["jsonData"]["index"] == "logs-canhgac.*" and es["jsonData"]["timeField"] == "@timestamp"
    dash = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "canhgac.yaml").read_text())
    assert dash["providers"][0]["type"] == "file"


def test_elasticsearch_datasource_is_used() -> None:
    types = {p["datasource"]["type"] for path in DASHBOARDS
             for p in json.loads(path.read_text(encoding="utf-8"))["panels"] if "datasource" in p}
    assert types == {"prometheus", "elasticsearch"}


def test_four_dashboards_with_unique_uids() -> None:
    uids = [json.loads(p.read_text(encoding="utf-8"))["uid"] for p in DASHBOARDS]
    assert sorted(uids) == ["canhgac-coverage", "canhgac-fleet", "canhgac-national",
                            "canhgac-pipeline"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    dash = json.loads(path.read_text(encoding="utf-8"))
    uids = _datasource_uids()
    defined = {v["name"] for v in dash["templating"]["list"]}
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dash["panels"]:
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in uids, panel["title"]
        assert panel["targets"], panel["title"]
        for t in panel["targets"]:
            assert t["datasource"]["uid"] == panel["datasource"]["uid"], panel["title"]
            text = t["expr"] if panel["datasource"]["type"] == "prometheus" else t["query"]
            used = set(re.findall(r"\$(\w+)", text)) - {"__rate_interval", "__interval",
                                                         "__range"}
            assert used <= defined, (panel["title"], used - defined)
    if path.name in ("canhgac-coverage.json", "canhgac-fleet.json"):
        assert {"unit", "level"} <= defined  # the filters the issue asks for
    assert "Thừa Thiên Huế" not in path.read_text(encoding="utf-8")  # no province hard-coded


def test_rules_file_has_the_required_alerts() -> None:
    groups = yaml.safe_load((ROOT / "deploy/prometheus/rules/canhgac.rules.yml").read_text())
    names = {r["alert"] for g in groups["groups"] for r in g["rules"]}
    assert {"CanhgacLayerCoverageBelowFull", "CanhgacAgentOffline", "CanhgacNationalLinkDown",
            "CanhgacSpoolLag", "CanhgacCertificateExpiring"} <= names


def test_committed_dashboards_match_the_builder() -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(GRAFANA / "build_dashboards.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
