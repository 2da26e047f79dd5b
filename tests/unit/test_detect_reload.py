"""Rules reload when their files change; a broken edit keeps the rules in force."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from canhgac.config import load_section
from collector.detect.config import DetectionConfig
from collector.detect.engine import Engine
from collector.detect.reload import RuleWatcher
from collector.detect.ruleset import select

SHELL = """
title: shell
id: 6a1d3f2e-7e4b-4a5e-9c1b-2f3e4d5c6b7a
level: high
logsource: {product: canhgac, service: process}
detection: {sel: {process.name: sh}, condition: sel}
"""
FAILS = """
title: fails
id: thr-1
kind: threshold
level: medium
dataset: auth
group_by: source.ip
detection: {f: {event.outcome: failure}, condition: f}
threshold: {count: 3, window: 1h}
"""


def _ev(dataset: str, **fields) -> dict:
    return {"event": {"dataset": dataset, "id": "x"}, **fields}


def _touch(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def _setup(tmp_path: Path, interval: str = "0s") -> tuple[RuleWatcher, Engine, Path]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "shell.yml").write_text(SHELL, encoding="utf-8")
    (rules / "fails.yml").write_text(FAILS, encoding="utf-8")
    cfg = load_section({"packs": [], "rules_dirs": [str(rules)], "reload_interval": interval},
                       DetectionConfig, "c.yaml", "detection")
    loaded = select(cfg, "c.yaml").loaded
    engine = Engine([lr.rule for lr in loaded])
    return RuleWatcher(engine, cfg, "c.yaml", loaded), engine, rules


async def test_edit_add_and_broken_edit(tmp_path: Path) -> None:
    watcher, engine, rules = _setup(tmp_path)
    assert await watcher.check() is False  # nothing moved
    fail = _ev("auth", source={"ip": "1.1.1.1"})
    fail["event"]["outcome"] = "failure"
    assert engine.process([fail, fail]) == []  # 2 of 3 in the threshold window

    _touch(rules / "shell.yml", SHELL.replace("process.name: sh", "process.name: bash"))
    assert await watcher.check() is True
    assert engine.process([_ev("process", process={"name": "sh"})]) == []
    assert len(engine.process([_ev("process", process={"name": "bash"})])) == 1
    # The unchanged threshold rule kept its window: the third failure fires.
    assert len(engine.process([fail])) == 1

    # A broken edit: the file is refused, its last good rule stays in force (with its
    # state: still throttled), and a good file added beside it applies (issue 15).
    _touch(rules / "shell.yml", SHELL.replace("level: high", "level: severe"))
    (rules / "other.yml").write_text(SHELL.replace("6a1d3f2e", "8c1d3f2e").replace(
        "title: shell", "title: other").replace("process.name: sh", "process.name: zsh"),
        encoding="utf-8")
    assert await watcher.check() is True
    assert [(str(Path(r.source).name), r.reason, r.path) for r in watcher.refused] == [
        ("shell.yml", "metadata", "level")]
    assert len(engine.process([_ev("process", process={"name": "bash"})])) == 0  # throttled
    assert sorted(r.meta.title for r in engine.rules) == ["fails", "other", "shell"]
    assert len(engine.process([_ev("process", process={"name": "zsh"})])) == 1
    (rules / "other.yml").unlink()

    (rules / "more.yml").write_text(SHELL.replace("6a1d3f2e", "7b1d3f2e").replace(
        "title: shell", "title: more"), encoding="utf-8")
    _touch(rules / "shell.yml", SHELL)
    assert await watcher.check() is True
    assert sorted(r.meta.title for r in engine.rules) == ["fails", "more", "shell"]
    assert watcher.reloads_ok == 3 and watcher.refused == []


async def test_watch_task_polls_and_stops(tmp_path: Path) -> None:
    watcher, engine, rules = _setup(tmp_path, interval="50ms")
    await watcher.start()
    try:
        (rules / "fails.yml").unlink()
        for _ in range(250):  # up to 5 s
            if len(engine.rules) == 1:
                break
            await asyncio.sleep(0.02)
    finally:
        await watcher.stop()
    assert [r.meta.title for r in engine.rules] == ["shell"]


async def test_disabled_watcher_starts_nothing(tmp_path: Path) -> None:
    watcher, _, _ = _setup(tmp_path, interval="0s")
    await watcher.start()
    assert watcher._task is None
    await watcher.stop()
