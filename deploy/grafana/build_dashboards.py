"""Builds deploy/grafana/dashboards/*.json (run it after editing; the JSON is committed).

    .venv/bin/python deploy/grafana/build_dashboards.py [--check]

Panels are written as code so every one gets the same datasource, thresholds and
filters; tests/unit/test_coverage_dashboards.py fails when the committed JSON
differs from what this script builds, and tests/integration/test_prometheus.py
runs every expression against a live Prometheus.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
DS = {"type": "prometheus", "uid": "canhgac-prometheus"}
SEL = 'unit=~"$unit",level=~"$level"'


def var(name: str, label: str, metric: str = "canhgac_system_info") -> dict[str, Any]:
    """A multi-value template variable whose "All" is the regex .* (used as =~)."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": f"label_values({metric}, {name})", "refId": f"var-{name}"},
        "definition": f"label_values({metric}, {name})",
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "refresh": 2,
        "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


BUILT: dict[str, str] = {}


class D:
    def __init__(self, uid: str, title: str, desc: str, variables: Iterable[dict] = ()) -> None:
        self.d = {
            "uid": uid,
            "title": title,
            "description": desc,
            "tags": ["canhgac"],
            "schemaVersion": 38,
            "version": 1,
            "editable": False,
            "timezone": "browser",
            "time": {"from": "now-24h", "to": "now"},
            "refresh": "1m",
            "templating": {"list": list(variables)},
            "panels": [],
            "annotations": {"list": []},
        }
        self.y = 0
        self.x = 0
        self.id = 1

    def panel(self, title: str, kind: str, targets: list, w: int = 12, h: int = 8, desc: str = "",
              **extra: Any) -> dict[str, Any]:
        """Lay panels left to right, wrapping at Grafana's 24 columns."""
        if self.x + w > 24:
            self.x = 0
            self.y += h
        p = {
            "id": self.id,
            "title": title,
            "type": kind,
            "datasource": DS,
            "description": desc,
            "gridPos": {"x": self.x, "y": self.y, "w": w, "h": h},
            "targets": [],
        }
        for i, t in enumerate(targets):
            expr, legend = (t, "") if isinstance(t, str) else t
            tgt = {"refId": chr(65 + i), "datasource": DS, "expr": expr, "legendFormat": legend}
            if kind in ("table", "stat", "bargauge", "gauge"):
                tgt["instant"] = True
                tgt["range"] = False
                if kind == "table":
                    tgt["format"] = "table"
            p["targets"].append(tgt)
        p.update(extra)
        self.id += 1
        self.x += w
        if self.x >= 24:
            self.x = 0
            self.y += h
        return p

    def add(self, *a: Any, **k: Any) -> None:
        self.d["panels"].append(self.panel(*a, **k))

    def row(self, title: str) -> None:
        if self.x:
            self.x = 0
            self.y += 8
        self.d["panels"].append(
            {
                "id": self.id,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1},
                "panels": [],
            }
        )
        self.id += 1
        self.y += 1

    def save(self, name: str) -> None:
        BUILT[name] = json.dumps(self.d, ensure_ascii=False, indent=2) + "\n"


PCT = {
    "defaults": {
        "unit": "percentunit",
        "min": 0,
        "max": 1,
        "thresholds": {
            "mode": "absolute",
            "steps": [
                {"color": "red", "value": None},
                {"color": "yellow", "value": 0.5},
                {"color": "green", "value": 1},
            ],
        },
    },
    "overrides": [],
}
FLAG = {
    "defaults": {
        "mappings": [
            {
                "type": "value",
                "options": {
                    "0": {"text": "không / no", "color": "red"},
                    "1": {"text": "có / yes", "color": "green"},
                },
            }
        ]
    },
    "overrides": [],
}

# 1. coverage overview
d = D(
    "canhgac-coverage",
    "canhgac — Bao phủ 4 lớp / 4-layer coverage",
    "Per information system: coverage by each protection layer (1 on-site, 2 monitoring, "
    "3 independent assessment, 4 national link) and level obligations. "
    "Definitions: docs/coverage.md.",
    [var("unit", "Đơn vị / unit"), var("level", "Cấp độ / level")],
)
d.row("Toàn tỉnh / province")
d.add(
    "Bao phủ theo lớp / coverage by layer (province)",
    "bargauge",
    [("canhgac_province_layer_coverage_ratio", "{{layer}}")],
    w=12,
    h=6,
    fieldConfig=PCT,
    options={"orientation": "horizontal", "displayMode": "gradient"},
)
d.add(
    "Hệ thống / systems",
    "stat",
    [("canhgac_province_systems", "{{state}}")],
    w=12,
    h=6,
    options={"reduceOptions": {"calcs": ["lastNotNull"]}, "textMode": "value_and_name"},
)
d.row("Hệ thống × lớp / systems × layers")
d.add(
    "Bao phủ / coverage (systems × layers)",
    "table",
    [f"canhgac_layer_coverage_ratio{{{SEL}}}"],
    w=24,
    h=10,
    fieldConfig=PCT,
    desc="1 = fully covered. Reasons: canhgac coverage --format json",
    transformations=[
        {
            "id": "groupingToMatrix",
            "options": {"columnField": "layer", "rowField": "system", "valueField": "Value"},
        }
    ],
    options={"cellHeight": "sm"},
)
d.add(
    "Nghĩa vụ cấp độ / level obligations",
    "table",
    [
        f"canhgac_system_level_approved{{{SEL}}}",
        f"canhgac_system_plan_deployed{{{SEL}}}",
        f"canhgac_system_obligation_overdue{{{SEL}}} == 1",
    ],
    w=12,
    h=9,
    fieldConfig=FLAG,
    transformations=[{"id": "merge", "options": {}}],
)
d.add(
    "Đánh giá độc lập: số ngày / days since assessment",
    "bargauge",
    [(f"canhgac_system_assessment_age_days{{{SEL}}}", "{{system}}")],
    w=12,
    h=9,
    fieldConfig={
        "defaults": {
            "unit": "d",
            "thresholds": {
                "mode": "absolute",
                "steps": [
                    {"color": "green", "value": None},
                    {"color": "yellow", "value": 300},
                    {"color": "red", "value": 366},
                ],
            },
        },
        "overrides": [],
    },
    options={"orientation": "horizontal", "displayMode": "basic"},
)
d.row("Đơn vị / units")
d.add(
    "Bao phủ theo đơn vị / coverage by unit",
    "table",
    ['canhgac_unit_layer_coverage_ratio{unit=~"$unit"}'],
    w=12,
    h=8,
    fieldConfig=PCT,
    transformations=[
        {
            "id": "groupingToMatrix",
            "options": {"columnField": "layer", "rowField": "unit", "valueField": "Value"},
        }
    ],
)
d.add(
    "Hệ thống theo đơn vị / systems by unit",
    "table",
    ['canhgac_unit_systems{unit=~"$unit"}'],
    w=12,
    h=8,
    transformations=[
        {
            "id": "groupingToMatrix",
            "options": {"columnField": "state", "rowField": "unit", "valueField": "Value"},
        }
    ],
)
d.row("Theo thời gian / over time")
d.add(
    "Bao phủ trung bình theo lớp / mean coverage by layer",
    "timeseries",
    [(f"avg by (layer) (canhgac_layer_coverage_ratio{{{SEL}}})", "{{layer}}")],
    w=12,
    fieldConfig=PCT,
)
d.add(
    "Cảnh báo trễ SLA, chưa xử lý / alerts late and unresolved (layer 1)",
    "timeseries",
    [
        (f"sum by (system) (canhgac_system_alerts_late{{{SEL}}})", "late {{system}}"),
        (f"sum by (status) (canhgac_system_alerts_unresolved{{{SEL}}})", "{{status}}"),
    ],
    w=12,
)
ES = {"type": "elasticsearch", "uid": "canhgac-elasticsearch"}
d.row("Cảnh báo / alerts (Elasticsearch)")
d.d["panels"].append(
    {
        "id": d.id,
        "title": "Cảnh báo gần đây / recent alerts",
        "type": "table",
        "datasource": ES,
        "description": "Latest alert events (event.kind: alert). "
        "Handle them with `canhgac alerts ack|resolve`.",
        "gridPos": {"x": 0, "y": d.y, "w": 24, "h": 10},
        "targets": [
            {
                "refId": "A",
                "datasource": ES,
                "query": "event.kind:alert",
                "timeField": "@timestamp",
                "bucketAggs": [],
                "metrics": [{"id": "1", "type": "raw_data", "settings": {"size": "100"}}],
            }
        ],
        "transformations": [
            {
                "id": "organize",
                "options": {
                    "includeByName": {
                        "@timestamp": True,
                        "canhgac.system.id": True,
                        "canhgac.unit.name": True,
                        "rule.name": True,
                        "event.severity": True,
                        "host.hostname": True,
                        "message": True,
                    }
                },
            }
        ],
    }
)
d.id += 1
d.y += 10
d.save("canhgac-coverage.json")

# 2. agent fleet
d = D(
    "canhgac-fleet",
    "canhgac — Agent / agent fleet",
    "Agents per system, hosts covered by layer 2 (online agent running every probe the level requires).",
    [var("unit", "Đơn vị / unit"), var("level", "Cấp độ / level")],
)
d.add(
    "Agent theo trạng thái / agents by state (collector)",
    "stat",
    [("canhgac_agents", "{{state}}")],
    w=8,
    h=5,
    options={"reduceOptions": {"calcs": ["lastNotNull"]}, "textMode": "value_and_name"},
)
d.add(
    "Agent trực tuyến / online (filtered)",
    "stat",
    [
        (f'sum(canhgac_system_agents{{{SEL},state="online"}})', "online"),
        (f'sum(canhgac_system_agents{{{SEL},state="offline"}})', "offline"),
    ],
    w=8,
    h=5,
    options={"reduceOptions": {"calcs": ["lastNotNull"]}, "textMode": "value_and_name"},
)
d.add(
    "Host được giám sát / hosts covered (layer 2)",
    "stat",
    [
        (
            f'sum(canhgac_system_hosts{{{SEL},state="covered"}})'
            f' / sum(canhgac_system_hosts{{{SEL},state="expected"}})',
            "covered",
        )
    ],
    w=8,
    h=5,
    fieldConfig=PCT,
)
d.add(
    "Hệ thống có agent mất kết nối / systems with offline agents",
    "table",
    [f'canhgac_system_agents{{{SEL},state="offline"}} > 0'],
    w=12,
    h=9,
)
d.add(
    "Lớp 2 theo hệ thống / layer 2 by system",
    "bargauge",
    [(f'canhgac_layer_coverage_ratio{{{SEL},layer="monitoring"}}', "{{system}}")],
    w=12,
    h=9,
    fieldConfig=PCT,
    options={"orientation": "horizontal", "displayMode": "gradient"},
)
d.add(
    "Agent theo thời gian / agents over time",
    "timeseries",
    [(f"sum by (state) (canhgac_system_agents{{{SEL}}})", "{{state}}")],
    w=24,
)
d.save("canhgac-fleet.json")

# 3. pipeline health
d = D(
    "canhgac-pipeline",
    "canhgac — Đường ống / pipeline health",
    "Ingest rates and rejections, spool, and lag per output (Elasticsearch, national, store).",
    [],
)
RI = "$__rate_interval"
d.add(
    "Sự kiện nhận / events per second",
    "timeseries",
    [
        (f"sum(rate(canhgac_ingest_events_received_total[{RI}]))", "received"),
        (f"sum(rate(canhgac_ingest_events_accepted_total[{RI}]))", "accepted"),
        (f"sum(rate(canhgac_ingest_events_duplicate_total[{RI}]))", "duplicate"),
    ],
    w=12,
    fieldConfig={"defaults": {"unit": "ops"}, "overrides": []},
)
d.add(
    "Từ chối theo lý do / rejections by reason",
    "timeseries",
    [(f"sum by (reason) (rate(canhgac_ingest_events_rejected_total[{RI}]))", "{{reason}}")],
    w=12,
    fieldConfig={"defaults": {"unit": "ops"}, "overrides": []},
)
d.add(
    "Yêu cầu theo mã / ingest requests by status",
    "timeseries",
    [(f"sum by (code) (rate(canhgac_ingest_requests_total[{RI}]))", "{{code}}")],
    w=12,
)
d.add(
    "Độ trễ ingest p99 / ingest latency p99",
    "timeseries",
    [
        (
            "histogram_quantile(0.99, sum by (le) "
            f"(rate(canhgac_ingest_request_duration_seconds_bucket[{RI}])))",
            "p99",
        )
    ],
    w=12,
    fieldConfig={"defaults": {"unit": "s"}, "overrides": []},
)
d.add(
    "Độ trễ theo đầu ra / lag per output (oldest undelivered)",
    "timeseries",
    [("canhgac_output_lag_seconds", "{{output}}")],
    w=12,
    fieldConfig={"defaults": {"unit": "s"}, "overrides": []},
)
d.add(
    "Sự kiện chờ / events waiting per output",
    "timeseries",
    [("canhgac_output_lag_events", "{{output}}")],
    w=12,
)
d.add(
    "Giao / delivered, retried, dead-lettered per output",
    "timeseries",
    [
        (f"sum by (output) (rate(canhgac_output_events_delivered_total[{RI}]))", "delivered {{output}}"),
        (f"sum by (output) (rate(canhgac_output_events_retried_total[{RI}]))", "retried {{output}}"),
        (f"sum by (output) (rate(canhgac_output_events_dead_lettered_total[{RI}]))", "dead {{output}}"),
    ],
    w=12,
)
d.add(
    "Spool / spool fill and drops",
    "timeseries",
    [
        ("canhgac_spool_fill_ratio", "fill"),
        (f"sum by (priority) (rate(canhgac_spool_dropped_events_total[{RI}]))", "dropped {{priority}}"),
    ],
    w=12,
)
d.add(
    "Đầu ra hoạt động / outputs up",
    "stat",
    [("canhgac_output_up", "{{output}}")],
    w=12,
    h=5,
    fieldConfig=FLAG,
)
d.add(
    "Chứng chỉ hết hạn / certificates expire in",
    "stat",
    [("canhgac_tls_certificate_expiry_timestamp_seconds - time()", "{{cert}}")],
    w=12,
    h=5,
    fieldConfig={"defaults": {"unit": "s"}, "overrides": []},
)
d.save("canhgac-pipeline.json")

# 4. national link
d = D(
    "canhgac-national",
    "canhgac — Kết nối quốc gia / national link (layer 4)",
    "Connection to the National Cybersecurity Monitoring Center (NCSC): link state, "
    "report delivery, layer 4 per system.",
    [var("unit", "Đơn vị / unit"), var("level", "Cấp độ / level")],
)
d.add("Kết nối / link up", "stat", [("canhgac_national_link_up", "link")], w=8, h=5, fieldConfig=FLAG)
d.add(
    "Giao gần nhất / last delivery (age)",
    "stat",
    [('time() - canhgac_output_last_success_timestamp_seconds{output="national"}', "age")],
    w=8,
    h=5,
    fieldConfig={"defaults": {"unit": "s"}, "overrides": []},
)
d.add(
    "Độ trễ / national backlog age",
    "stat",
    [('canhgac_output_lag_seconds{output="national"}', "lag")],
    w=8,
    h=5,
    fieldConfig={"defaults": {"unit": "s"}, "overrides": []},
)
d.add(
    "Lớp 4 theo hệ thống / layer 4 by system",
    "bargauge",
    [(f'canhgac_layer_coverage_ratio{{{SEL},layer="national"}}', "{{system}}")],
    w=12,
    h=9,
    fieldConfig=PCT,
    options={"orientation": "horizontal", "displayMode": "gradient"},
)
d.add(
    "Kết nối theo thời gian / link over time",
    "timeseries",
    [
        ("canhgac_national_link_up", "link up"),
        (f'avg(canhgac_layer_coverage_ratio{{{SEL},layer="national"}})', "layer 4 mean"),
    ],
    w=12,
    h=9,
)
d.add(
    "Báo cáo gửi / reports delivered per second",
    "timeseries",
    [
        (f'sum(rate(canhgac_output_events_delivered_total{{output="national"}}[{RI}]))', "delivered"),
        (f'sum(rate(canhgac_output_events_dead_lettered_total{{output="national"}}[{RI}]))', "dead-lettered"),
    ],
    w=24,
)
d.save("canhgac-national.json")


def main(argv: list[str]) -> int:
    if "--check" in argv:
        stale = [
            n
            for n, text in BUILT.items()
            if not (OUT / n).exists() or (OUT / n).read_text(encoding="utf-8") != text
        ]
        if stale:
            print("out of date: " + ", ".join(stale) + " (run deploy/grafana/build_dashboards.py)")
            return 1
        return 0
    for name, text in BUILT.items():
        (OUT / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(BUILT)} dashboards to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
