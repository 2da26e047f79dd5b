"""agent.yaml: every error names the file, the key path and the problem."""

from __future__ import annotations

import pytest

from agent.config import AgentConfig, load, resolve_probes
from agent.probes import PROBES
from canhgac.errors import ConfigError


def write(tmp_path, text: str):
    p = tmp_path / "agent.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults():
    cfg, source = load(None)
    assert source == "(defaults)"
    assert cfg.queue.max_bytes == 256 * 1024 * 1024
    assert cfg.heartbeat_interval is None
    assert cfg.collector.flush_interval == 10.0


def test_example_config_loads():
    from pathlib import Path

    cfg, _ = load(Path(__file__).parents[2] / "configs" / "agent.yaml")
    assert isinstance(cfg, AgentConfig)


@pytest.mark.parametrize(
    ("text", "path", "problem"),
    [
        ("heartbeat_interval: soon\n", "heartbeat_interval", "not a duration"),
        ("queue:\n  max_bytes: 10\n", "queue.max_bytes", "at least"),
        ("collector:\n  url: ftp://x\n", "collector.url", "https://"),
        ("collector:\n  batch_size: 3\n", "collector.batch_size", "unknown key"),
        ("probes:\n  procss: {}\n", "probes.procss", "unknown probe"),
        ("collector:\n  token: ${CANHGAC_TEST_UNSET_VAR}\n", "collector.token",
         "CANHGAC_TEST_UNSET_VAR"),
    ],
)
def test_errors_name_file_and_key_path(tmp_path, text, path, problem):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(p)
    assert info.value.source == str(p)
    assert info.value.path == path
    assert problem in info.value.problem
    assert str(info.value).startswith(f"{p}: {path}: ")


def test_probe_sections_are_validated_by_the_probe(tmp_path):
    p = write(tmp_path, "probes:\n  process:\n    interval: fast\n")
    cfg, source = load(p)
    with pytest.raises(ConfigError) as info:
        resolve_probes(cfg, source)
    assert info.value.path == "probes.process.interval"
    assert str(p) in str(info.value)

    p = write(tmp_path, "probes:\n  socket:\n    colour: red\n")
    cfg, source = load(p)
    with pytest.raises(ConfigError) as info:
        resolve_probes(cfg, source)
    assert info.value.path == "probes.socket.colour"


def test_secret_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CANHGAC_TEST_TOKEN", "a1.s3cret")
    cfg, _ = load(write(tmp_path, "collector:\n  token: ${CANHGAC_TEST_TOKEN}\n"))
    assert cfg.collector.token == "a1.s3cret"
    assert "s3cret" not in repr(cfg.collector.token)


def test_enable_disable_and_unavailable_probes(tmp_path, monkeypatch):
    monkeypatch.setitem(PROBES, "ghost", "agent.probes.ghost_does_not_exist:GhostProbe")
    p = write(tmp_path, "probes:\n  process: false\n  socket:\n    interval: 30s\n  ghost: {}\n")
    cfg, source = load(p)
    specs = {s.name: s for s in resolve_probes(cfg, source)}
    assert specs["process"].status == "disabled"
    assert specs["socket"].status == "enabled" and specs["socket"].config.interval == 30
    assert specs["host_metrics"].status == "enabled"
    assert specs["ghost"].status == "unavailable"
    assert "ghost_does_not_exist" in specs["ghost"].error
