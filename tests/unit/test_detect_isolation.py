"""One bad rule stops nothing (issue 15, "Isolation"): refused with its reason, the rest load.

Before: a collector whose rules_dirs held one bad file refused to start, `rules test DIR`
stopped at the first bad file, and a hot reload with one bad file kept every good file
beside it from applying.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import orjson
from prometheus_client import CollectorRegistry, generate_latest

from canhgac.cli import main
from canhgac.config import load_section
from collector.config import CollectorConfig
from collector.detect import setup
from collector.detect.loader import BUILTIN_DIR, load_rules
from collector.pipeline import Pipeline

SIGMA = Path(__file__).resolve().parents[1] / "fixtures" / "sigma"
BRUTE = BUILTIN_DIR / "auth" / "ssh_brute_force.yml"


def _rules_dir(tmp_path: Path) -> Path:
    d = tmp_path / "province"
    d.mkdir()
    shutil.copy(BRUTE, d / "good.yml")
    (d / "broken.yml").write_text("title: [unclosed\n", encoding="utf-8")
    return d


def test_a_collector_starts_with_a_bad_rule_beside_good_ones(tmp_path: Path) -> None:
    d = _rules_dir(tmp_path)
    config = load_section({"detection": {"packs": [], "rules_dirs": [str(d)]}}, CollectorConfig,
                          "c.yaml")
    started: list[object] = []
    ctx = SimpleNamespace(config=config, source="c.yaml", pipeline=Pipeline(),
                          registry=CollectorRegistry(), add_startable=started.append)
    engine = setup(ctx)  # type: ignore[arg-type]
    assert engine is not None and [r.meta.title for r in engine.rules] == ["SSH brute force"]
    text = generate_latest(ctx.registry).decode()
    assert 'canhgac_detect_rules_refused{reason="yaml"} 1.0' in text
    assert 'canhgac_detect_rules_refused{reason="logsource"} 0.0' in text


def test_rules_list_shows_loaded_and_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    d = _rules_dir(tmp_path)
    cfg = tmp_path / "collector.yaml"
    cfg.write_text(f"detection:\n  packs: []\n  rules_dirs: [{d}]\n", encoding="utf-8")
    assert main(["rules", "list", "--config", str(cfg), "--format", "json"]) == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert [r["title"] for r in doc["loaded"]] == ["SSH brute force"]
    assert [(Path(r["source"]).name, r["reason"]) for r in doc["refused"]] == [("broken.yml", "yaml")]
    assert main(["rules", "list", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "broken.yml" in out and "1 rule(s) loaded, 1 refused (yaml 1)" in out


def test_log_source_is_checked_before_fields() -> None:
    """Issue 15 finding: auditd rules were refused as 'unmapped field type'."""
    result = load_rules([(SIGMA / "auditd", "sigmahq")])
    assert len(result.refused) == 3
    assert result.loaded == []
    assert {r.reason for r in result.refused} == {"no_auditd_telemetry"}
    assert all(r.message.startswith("no auditd telemetry") for r in result.refused)
