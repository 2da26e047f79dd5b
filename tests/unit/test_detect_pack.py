"""The built-in rule pack: every rule is complete, and every embedded test passes."""

from __future__ import annotations

import re

import pytest

from collector.detect.loader import BUILTIN_DIR, builtin_packs, load_paths
from collector.detect.testing import run_case

LOADED = load_paths([(BUILTIN_DIR / p, f"canhgac/{p}") for p in builtin_packs()])
CASES = [
    pytest.param(lr, i, id=f"{lr.rule.meta.name}:{case.get('name', i)}")
    for lr in LOADED
    for i, case in enumerate(lr.tests)
]

# The issue's list: each must be covered by a built-in rule (by name).
REQUIRED = {
    "canhgac_ssh_brute_force", "canhgac_ssh_brute_force_success", "canhgac_new_listening_port",
    "canhgac_new_user_account", "canhgac_uid0_account", "canhgac_sensitive_file_change",
    "canhgac_cron_systemd_persistence", "canhgac_reverse_shell", "canhgac_port_scan",
    "canhgac_arp_spoof", "canhgac_agent_offline", "canhgac_privileged_group_membership",
}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_pack_covers_the_issue_list() -> None:
    assert {lr.rule.meta.name for lr in LOADED} >= REQUIRED
    assert set(builtin_packs()) == {"agent", "auth", "host", "network"}


@pytest.mark.parametrize("lr", LOADED, ids=lambda lr: lr.rule.meta.name)
def test_rule_is_complete(lr) -> None:
    meta = lr.rule.meta
    assert UUID.match(meta.id), meta.id
    assert meta.name.startswith("canhgac_")
    assert meta.description and meta.title
    assert meta.level in ("low", "medium", "high", "critical")
    assert meta.techniques and all(re.match(r"^T\d{4}(\.\d{3})?$", t) for t in meta.techniques)
    assert meta.tactics
    assert meta.ruleset.startswith("canhgac/")
    assert len(lr.tests) >= 2, "each rule needs a positive and a negative test"
    assert any(c["expect"]["alerts"] == 0 for c in lr.tests), "no negative test"
    assert any(c["expect"]["alerts"] > 0 for c in lr.tests), "no positive test"


@pytest.mark.parametrize(("lr", "index"), CASES)
def test_embedded_case(lr, index: int) -> None:
    result = run_case(lr.doc, lr.tests[index], index)
    assert result.passed, result.problems


def test_alerts_from_the_pack_carry_the_contract_fields() -> None:
    lr = next(lr for lr in LOADED if lr.rule.meta.name == "canhgac_ssh_brute_force_success")
    alert = run_case(lr.doc, lr.tests[0], 0).alerts[0]
    assert alert["event"]["kind"] == "alert"
    assert alert["event"]["dataset"] == "alert"
    assert alert["event"]["severity"] == 99
    assert alert["canhgac"]["alert"]["severity"] == "critical"
    assert alert["rule"]["id"] == lr.rule.meta.id
    assert alert["rule"]["name"] == "SSH login succeeded after brute force"
    assert alert["rule"]["description"].startswith("A successful SSH login")
    assert alert["threat"]["framework"] == "MITRE ATT&CK"
    assert "T1110.001" in alert["threat"]["technique"]["id"]
    assert len(alert["canhgac"]["alert"]["source_event_ids"]) == 6
