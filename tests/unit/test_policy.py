"""Central agent policy on the collector (issue 14, "Central policy"): documents, scopes,
level defaults from the compliance model, versions, and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from canhgac.cli import main
from canhgac.errors import ConfigError
from collector.inventory import parse_inventory
from collector.policy.model import effective, etag, parse_policy
from collector.policy.store import PolicyStore

INV = parse_inventory({"systems": [
    {"id": "cong-ttdt", "name": "Cổng", "unit": "Sở Thông tin và Truyền thông", "level": 3},
    {"id": "his", "name": "HIS", "unit": "Sở Y tế", "level": 2}]}, "inv.yaml")
LEVEL_PROBES = {1: ["host_metrics"], 2: ["host_metrics", "session"],
                3: ["host_metrics", "session", "file_integrity"], 4: [], 5: []}


def test_scopes_apply_in_order_over_the_level_defaults() -> None:
    doc = parse_policy({
        "defaults": {"probes": {"process": {"interval": "10s"}, "session": False}},
        "levels": {3: {"probes": {"process": {"interval": "5s"}}}},
        "units": {"Sở Y tế": {"probes": {"auth_log": {"paths": ["/var/log/his.log"]}}}},
        "systems": {"cong-ttdt": {"probes": {"process": {"min_lifetime": "1s"}}}},
    }, "policy.yaml", INV)
    cong, his = INV.systems
    got = effective(doc, cong, LEVEL_PROBES)["probes"]
    assert got == {"host_metrics": {"enabled": True}, "session": {"enabled": False},
                   "file_integrity": {"enabled": True},
                   "process": {"interval": "5s", "min_lifetime": "1s"}}
    got = effective(doc, his, LEVEL_PROBES)["probes"]
    assert got["auth_log"] == {"paths": ["/var/log/his.log"]}
    assert got["process"] == {"interval": "10s"} and got["session"] == {"enabled": False}
    # no policy at all: a new level-3 system gets the level-3 probe set
    assert effective(parse_policy({}, "p"), cong, LEVEL_PROBES)["probes"] == {
        n: {"enabled": True} for n in LEVEL_PROBES[3]}


def test_etag_follows_what_the_agent_gets() -> None:
    doc = parse_policy({}, "p")
    cong, his = INV.systems
    a = etag(1, effective(doc, cong, LEVEL_PROBES))
    assert a == etag(1, effective(doc, cong, LEVEL_PROBES))
    assert a != etag(1, effective(doc, his, LEVEL_PROBES))  # another level, another body
    assert a != etag(2, effective(doc, cong, LEVEL_PROBES))


def test_every_problem_at_once_with_did_you_mean() -> None:
    with pytest.raises(ConfigError) as err:
        parse_policy({"default": {}, "levels": {7: {}, 3: {"probe": {}}},
                      "units": {"Sở Y te": {}}, "systems": {"cong-ttd": {}},
                      "defaults": {"probes": {"proces": {}, "session": {"enabled": "yes"},
                                              "auth_log": 5}}}, "policy.yaml", INV)
    text = str(err.value)
    for fragment in (
        "policy.yaml: default: unknown key (did you mean 'defaults'?)",
        "policy.yaml: levels.7: a security level is 1 to 5",
        "policy.yaml: levels.3.probe: unknown key (did you mean 'probes'?)",
        "policy.yaml: units.Sở Y te: unknown unit 'Sở Y te' (did you mean 'Sở Y tế'?)",
        "policy.yaml: systems.cong-ttd: unknown system 'cong-ttd' (did you mean 'cong-ttdt'?)",
        "policy.yaml: defaults.probes.proces: unknown probe (did you mean 'process'?)",
        "policy.yaml: defaults.probes.session.enabled: expected true or false, got 'yes'",
        "policy.yaml: defaults.probes.auth_log: expected a mapping, true or false",
    ):
        assert fragment in text, fragment
    assert text.startswith("8 problems in policy.yaml")


def test_store_keeps_every_version(tmp_path: Path) -> None:
    store = PolicyStore(tmp_path / "policy.db")
    assert store.latest_version() == 0 and store.get().document == {}  # type: ignore[union-attr]
    one = store.add({"defaults": {"probes": {"process": {"interval": "10s"}}}}, "first")
    two = store.add({}, "back to defaults")
    assert (one.version, two.version) == (1, 2) and store.latest_version() == 2
    assert store.get(1).document == one.document  # type: ignore[union-attr]
    assert store.get(9) is None
    assert [v.note for v in store.history()] == ["first", "back to defaults"]
    store.close()


def test_cli_set_show_diff_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump({"systems": [
        {"id": "cong-ttdt", "name": "Cổng", "unit": "Sở TT&TT", "level": 3}]},
        allow_unicode=True), encoding="utf-8")
    cfg = tmp_path / "collector.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 'st'}\ninventory: {inv}\n"
                   "coverage: {required_probes: {3: [host_metrics, session]}}\n", encoding="utf-8")
    policy = tmp_path / "policy.yaml"
    policy.write_text("defaults:\n  probes:\n    process: {interval: 10s}\n", encoding="utf-8")
    c = ["--config", str(cfg)]
    assert main(["collector", "policy", "set", str(policy), *c, "--note", "chu kỳ 10s"]) == 0
    assert "policy version 1 stored" in capsys.readouterr().out
    assert main(["collector", "policy", "set", str(policy), *c]) == 0
    assert "unchanged" in capsys.readouterr().out
    assert main(["collector", "policy", "show", "--system", "cong-ttdt", *c]) == 0
    shown = capsys.readouterr().out
    assert "level 3" in shown
    assert yaml.safe_load(shown) == {"probes": {"host_metrics": {"enabled": True},
                                                "session": {"enabled": True},
                                                "process": {"interval": "10s"}}}
    policy.write_text("defaults:\n  probes:\n    process: {interval: 5s}\n", encoding="utf-8")
    assert main(["collector", "policy", "diff", str(policy), *c]) == 1
    out = capsys.readouterr().out
    assert "-    process:" not in out and "-      interval: 10s" in out and "+      interval: 5s" in out
    policy.write_text("systems:\n  cong-ttd: {}\n", encoding="utf-8")
    assert main(["collector", "policy", "set", str(policy), *c]) == 2
    assert "did you mean 'cong-ttdt'" in capsys.readouterr().err
    assert main(["collector", "policy", "history", *c]) == 0
    assert "chu kỳ 10s" in capsys.readouterr().out
    assert main(["collector", "policy", "show", "--version", "7", *c]) == 2
    assert "no policy version 7 (versions 0 to 1)" in capsys.readouterr().err
