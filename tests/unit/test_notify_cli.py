"""`canhgac notify test|status` (the subcommand's own parser: entry points are read from
the installed package, which a worktree's new command is not yet part of)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from canhgac.cli import run_command
from canhgac.errors import UserError
from collector.notify.cli import register
from collector.notify.config import parse_notify_config
from collector.notify.outbox import Outbox, Outcome
from collector.notify.router import Router
from tests.fixtures.notify import Sink, ThreadedSink, alert, inventory


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="canhgac")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return run_command(args.func, args)


def _config(tmp_path: Path, url: str) -> Path:
    f = tmp_path / "collector.yaml"
    f.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"), "notifications": {
        "channels": {"hook": {"type": "webhook", "url": url, "secret": "s"}}}}), encoding="utf-8")
    return f


def test_notify_test_sends_and_says_what_happened(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                  ) -> None:
    sink = Sink(secret="s")
    with ThreadedSink(sink) as served:
        cfg = _config(tmp_path, served.url)
        assert _run(["notify", "test", "--config", str(cfg), "--channel", "hook"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sent: webhook channel 'hook': HTTP 200 in ")
    [body] = sink.received
    assert body["kind"] == "test" and "Tin thử từ canhgac qua kênh hook" in body["text"]


def test_notify_test_failure_and_unknown_channel(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    sink = Sink(status_after_fail=401)
    with ThreadedSink(sink) as served:
        cfg = _config(tmp_path, served.url)
        assert _run(["notify", "test", "--config", str(cfg), "--channel", "hook"]) == 1
        assert "FAILED: webhook channel 'hook': HTTP 401" in capsys.readouterr().err
        with pytest.raises(UserError, match=r"no channel 'hoo' \(did you mean 'hook'\?\)"):
            _run(["notify", "test", "--config", str(cfg), "--channel", "hoo"])


def test_notify_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, "http://127.0.0.1:9/hook")
    assert _run(["notify", "status", "--config", str(cfg)]) == 0
    assert "no notifications yet" in capsys.readouterr().out
    notif = parse_notify_config(yaml.safe_load(cfg.read_text())["notifications"], str(cfg))
    router = Router(notif, inventory(), {lv: 60.0 for lv in range(1, 6)})
    box = Outbox(tmp_path / "state" / "notify.db")
    box.admit(router.candidates([alert(), alert()]), router.render)
    [first, _] = box.due("hook", 10)
    box.settle("hook", [Outcome(first.key, "retry", "HTTP 503: busy", 60.0)])
    box.close()
    assert _run(["notify", "status", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    header, row = out.splitlines()[:2]
    assert header.split()[:4] == ["CHANNEL", "TYPE", "PENDING", "OLDEST"]
    assert row.split()[:3] == ["hook", "webhook", "2"] and "HTTP 503: busy" in row
    assert _run(["notify", "status", "--config", str(cfg), "--format", "json"]) == 0
    assert '"failures": 1' in capsys.readouterr().out
