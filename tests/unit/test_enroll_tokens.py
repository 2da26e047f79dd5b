"""An unused enrollment token can be listed and revoked (issue 12 finding: it could not)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from canhgac.cli import main
from collector.auth import AuthStore, EnrollmentError


def test_list_and_revoke_an_unused_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = ["--state-dir", str(tmp_path)]
    assert main(["collector", "enroll-token", "--system", "cong-ttdt", *state]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    token_id = AuthStore.token_id(token)
    assert f"revoke-token {token_id}" in out.err

    assert main(["collector", "enroll-tokens", "--format", "json", *state]) == 0
    listed = orjson.loads(capsys.readouterr().out)
    assert [(t["id"], t["system_id"], t["uses_left"]) for t in listed] == [(token_id, "cong-ttdt", 1)]
    assert token not in str(listed)  # the token itself is never shown again

    assert main(["collector", "revoke-token", token_id, *state]) == 0
    assert main(["collector", "revoke-token", token_id, *state]) == 2  # already spent
    assert main(["collector", "revoke-token", "zz", *state]) == 2
    capsys.readouterr()
    auth = AuthStore(tmp_path / "auth.db")
    with pytest.raises(EnrollmentError):
        auth.enroll(token, "web-01")
    assert auth.enroll_tokens() == []
    auth.close()


def test_collector_agents_shows_state_version_probes_and_unknown_systems(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 9 finding: `collector agents` showed neither online/offline, version nor probe
    health, and an agent of a system missing from the inventory passed unnoticed."""
    import yaml

    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump({"systems": [
        {"id": "cong-ttdt", "name": "Cổng", "unit": "Sở TT&TT", "level": 3},
        {"id": "cu", "name": "Cũ", "unit": "Sở TT&TT", "level": 2, "status": "retired",
         "retired_on": "2025-01-01"}]}, allow_unicode=True), encoding="utf-8")
    cfg = tmp_path / "collector.yaml"
    cfg.write_text(f"state_dir: {tmp_path}\ninventory: {inv}\n", encoding="utf-8")
    auth = AuthStore(tmp_path / "auth.db")
    for system, host in (("cong-ttdt", "web-01"), ("ghost", "old-01"), ("cu", "cu-01")):
        agent_id, secret, _ = auth.enroll(auth.create_enroll_token(system), host)
        rec = auth.authenticate(f"{agent_id}.{secret}")
        assert rec is not None
        auth.touch(rec, {"version": "0.1.0", "probes": {"process": {"state": "running"},
                                                        "auth_log": {"state": "backoff"}}})
    auth.flush_seen()
    auth.close()
    assert main(["collector", "agents", "--config", str(cfg), "--format", "json"]) == 0
    facts = {f["hostname"]: f for f in orjson.loads(capsys.readouterr().out)}
    assert facts["web-01"]["state"] == "online" and facts["web-01"]["version"] == "0.1.0"
    assert facts["web-01"]["probes_failing"] == ["auth_log"] and facts["web-01"]["system_known"]
    assert not facts["old-01"]["system_known"]
    assert facts["old-01"]["flag"] == "system_not_in_inventory"
    assert facts["cu-01"]["flag"] == "system_retired" and facts["web-01"]["flag"] == ""
    assert main(["collector", "agents", "--config", str(cfg), "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert "ghost (NOT IN INVENTORY)" in out and "1/2 running — auth_log" in out
    assert "cu (RETIRED)" in out and "online" in out
    assert main(["collector", "agents", "--config", str(cfg), "--lang", "vi"]) == 0
    out = capsys.readouterr().out
    assert "ghost (KHÔNG CÓ TRONG DANH MỤC)" in out and "1/2 đang chạy — auth_log" in out
    assert "cu (ĐÃ DỪNG)" in out and "trực tuyến" in out and "TÁC TỬ" in out
