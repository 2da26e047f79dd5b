"""`canhgac up` (issue 9 findings on the local stack)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from canhgac.errors import UserError
from collector.config import locate
from stack.up import Child, Stack, _banner, _live, _write_collector_yaml


def test_a_later_run_takes_its_inventory_option(tmp_path: Path) -> None:
    """Before: collector.yaml was written once, so `up --inventory mine.yaml` was ignored."""
    cfg = tmp_path / "collector.yaml"
    base = {"state_dir": "s", "listen": {"host": "127.0.0.1", "port": 8443},
            "inventory": "demo.yaml", "outputs": {"store": {}}}
    _write_collector_yaml(cfg, base)
    doc = yaml.safe_load(cfg.read_text())
    doc["heartbeat_interval"] = "10s"  # a user's own edit survives
    cfg.write_text(yaml.safe_dump(doc))
    _write_collector_yaml(cfg, {**base, "inventory": "mine.yaml"})
    doc = yaml.safe_load(cfg.read_text())
    assert doc["inventory"] == "mine.yaml" and doc["heartbeat_interval"] == "10s"


def test_every_command_finds_the_local_stack(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Before: `check national` said "no collector.yaml here" where `coverage` found it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CANHGAC_CONFIG", raising=False)
    assert locate(None) is None
    (tmp_path / ".canhgac").mkdir()
    (tmp_path / ".canhgac" / "collector.yaml").write_text("{}\n")
    assert locate(None) == Path(".canhgac/collector.yaml")
    (tmp_path / "collector.yaml").write_text("{}\n")
    assert locate(None) == Path("collector.yaml")
    monkeypatch.setenv("CANHGAC_CONFIG", "/etc/canhgac/collector.yaml")
    assert locate(None) == Path("/etc/canhgac/collector.yaml")
    assert locate("x.yaml") == Path("x.yaml")


def _exited(name: str, tmp_path: Path) -> Child:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    return Child(name, proc, tmp_path / f"{name}.log")


def test_the_stack_outlives_the_national_center(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Before: stopping the mock center took the whole stack down, so a link outage
    could not be rehearsed."""
    stack = Stack(tmp_path, [_exited("national", tmp_path)])
    rounds = iter([False, True])
    _live("https://127.0.0.1:9", tmp_path / "ca.pem", tmp_path / "t", stack,
          lambda: next(rounds, True))
    assert "national center mock stopped" in capsys.readouterr().out
    stack = Stack(tmp_path, [_exited("collector", tmp_path)])
    with pytest.raises(UserError, match="collector exited with code 3"):
        _live("https://127.0.0.1:9", tmp_path / "ca.pem", tmp_path / "t", stack, lambda: False)


def test_the_banner_gives_the_web_console_address(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Issue 11: `canhgac up` prints where the console is and what to sign in with."""
    stack = Stack(tmp_path, [_exited("collector", tmp_path)])
    _banner("https://127.0.0.1:8443", tmp_path / "ca.pem", tmp_path, stack)
    out = capsys.readouterr().out
    assert "https://127.0.0.1:8443/ui/" in out and str(tmp_path / "collector" / "admin.token") in out


def test_notify_webhook_adds_and_removes_the_webhook_channel(tmp_path: Path) -> None:
    cfg = tmp_path / "collector.yaml"
    base = {"state_dir": "s", "listen": {"host": "127.0.0.1", "port": 8443},
            "inventory": "demo.yaml", "outputs": {"store": {}}}
    _write_collector_yaml(cfg, {**base, "notify_webhook": "http://127.0.0.1:9000/hook"})
    doc = yaml.safe_load(cfg.read_text())
    assert doc["notifications"] == {"channels": {"webhook": {
        "type": "webhook", "url": "http://127.0.0.1:9000/hook"}}}
    assert "notify_webhook" not in doc
    from collector.notify.config import parse_notify_config

    notif = parse_notify_config(doc["notifications"], str(cfg))
    assert [(r.name, r.channels) for r in notif.routes] == [("default", ["webhook"])]
    _write_collector_yaml(cfg, base)  # a later run without the option: no such channel
    assert "notifications" not in yaml.safe_load(cfg.read_text())
