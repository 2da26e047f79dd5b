"""The Debian packaging's pieces that need no root: the agent unit's capabilities follow
the default probes, the CLI of a partial install, the packaged configs, the rule packs
of an installed environment. The packages themselves are tested for real, in a clean
Debian 12 root, by tests/integration/test_packages.py."""

from __future__ import annotations

import importlib.util
import re
import sys
from importlib.metadata import EntryPoint
from pathlib import Path
from types import ModuleType

import pytest

from agent.capabilities import dropin, needed
from agent.config import load, resolve_probes
from canhgac import cli
from collector.config import load as load_collector
from collector.detect.loader import builtin_dir

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"


def _package_module(name: str) -> ModuleType:
    """A module of deploy/package (build scripts, not an installed package)."""
    sys.path.insert(0, str(ROOT / "deploy" / "package"))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "deploy" / "package" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "deploy" / "package"))


def _unit_values(unit: str, key: str) -> list[str]:
    text = (UNITS / unit).read_text(encoding="utf-8")
    return [m.group(1) for m in re.finditer(rf"(?m)^{key}=(.*)$", text)]


def _enabled(path: Path | None) -> list[str]:
    cfg, source = load(path)
    return [s.name for s in resolve_probes(cfg, source) if s.status == "enabled"]


@pytest.mark.parametrize("key", ["AmbientCapabilities", "CapabilityBoundingSet"])
def test_agent_unit_grants_exactly_what_the_default_probes_need(key: str) -> None:
    """The unit as shipped serves the shipped agent.yaml: no capability more, none less."""
    (value,) = _unit_values("canhgac-agent.service", key)
    assert value.split() == needed(_enabled(ROOT / "configs" / "agent.yaml"))
    assert value.split() == needed(_enabled(None))


def test_collector_unit_has_no_capabilities() -> None:
    assert _unit_values("canhgac-collector.service", "CapabilityBoundingSet") == [""]
    assert _unit_values("canhgac-collector.service", "AmbientCapabilities") == [""]


def test_capabilities_follow_the_enabled_probes(tmp_path: Path) -> None:
    conf = tmp_path / "agent.yaml"
    conf.write_text("probes:\n  network_sensor: false\n  auth_log: false\n  file_integrity: false\n",
                    encoding="utf-8")
    assert needed(_enabled(conf)) == ["CAP_NET_ADMIN", "CAP_SYS_PTRACE"]
    conf.write_text("probes:\n  network_sensor: false\n  auth_log: false\n  file_integrity: false\n"
                    "  process: false\n  socket: false\n", encoding="utf-8")
    assert needed(_enabled(conf)) == []
    text = dropin([])
    assert "\nAmbientCapabilities=\n" in text and text.endswith("CapabilityBoundingSet=\n")


def test_dropin_resets_then_sets() -> None:
    lines = dropin(["CAP_NET_RAW"]).splitlines()
    i = lines.index("AmbientCapabilities=")
    assert lines[i + 1] == "AmbientCapabilities=CAP_NET_RAW"
    assert lines[lines.index("CapabilityBoundingSet=") + 1] == "CapabilityBoundingSet=CAP_NET_RAW"


def test_cli_lists_commands_whose_libraries_are_missing_not(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """The agent package has no Sigma or Elasticsearch: --help must still work there."""
    real = cli.discover()
    ghost = EntryPoint(name="ghost", value="canhgac_no_such_module:register", group=cli.GROUP)
    monkeypatch.setattr(cli, "discover", lambda: {**real, "ghost": ghost})
    parser = cli.build_parser()
    assert "ghost" not in parser.format_help()
    assert cli.main(["ghost"]) == 2
    err = capsys.readouterr().err
    assert "command 'ghost' is not available in this installation" in err
    assert "canhgac_no_such_module" in err


def test_builtin_rules_found_in_an_installed_environment(tmp_path: Path) -> None:
    """A wheel has no configs/: the packages put the packs in <prefix>/share/canhgac/rules."""
    installed = tmp_path / "share" / "canhgac" / "rules"
    installed.mkdir(parents=True)
    assert builtin_dir((tmp_path / "configs" / "rules", installed)) == installed
    assert builtin_dir((ROOT / "configs" / "rules", installed)) == ROOT / "configs" / "rules"


def test_packaged_configs_load_and_point_at_var_lib(tmp_path: Path) -> None:
    roles = _package_module("roles")
    deb = _package_module("deb")
    agent_yaml = tmp_path / "agent.yaml"
    agent_yaml.write_text(deb.packaged_config(roles.AGENT, ROOT), encoding="utf-8")
    cfg, _ = load(agent_yaml)
    assert str(cfg.state_dir) == "/var/lib/canhgac/agent"
    collector_yaml = tmp_path / "collector.yaml"
    collector_yaml.write_text(deb.packaged_config(roles.COLLECTOR, ROOT), encoding="utf-8")
    ccfg, _ = load_collector(str(collector_yaml))
    assert str(ccfg.state_dir) == "/var/lib/canhgac/collector"


def test_lock_parsing_keeps_pins_and_drops_markers(tmp_path: Path) -> None:
    env = _package_module("environment")
    lock = tmp_path / "requirements.lock"
    lock.write_text("# comment\nPyYAML==6.0.3\n    # via x\natheris==3.0.0 ; platform_machine == 'x86_64'\n"
                    "elasticsearch[async]==8.19.3\n", encoding="utf-8")
    assert env.locked(lock) == {"pyyaml": "6.0.3", "atheris": "3.0.0", "elasticsearch": "8.19.3"}
