"""Config errors name the file, the key path and the problem; nothing else gets through."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from canhgac.cli import main
from canhgac.config import Duration, Secret, field_meta, load_file, load_section
from canhgac.errors import ConfigError
from collector.config import CollectorConfig


@dataclass
class Inner:
    port: int = field(default=1, metadata=field_meta(min=1, max=65535))
    mode: Literal["a", "b"] = "a"


@dataclass
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)
    items: list[Inner] = field(default_factory=list)
    wait: Duration = Duration(5)
    token: Secret | None = None


@pytest.mark.parametrize(
    ("data", "path", "problem"),
    [
        ({}, "name", "is required"),
        ({"name": "x", "nmae": 1}, "nmae", "unknown key"),
        ({"name": "x", "inner": {"port": "80"}}, "inner.port", "expected an integer"),
        ({"name": "x", "inner": {"port": 0}}, "inner.port", "at least 1"),
        ({"name": "x", "inner": {"port": True}}, "inner.port", "expected an integer"),
        ({"name": "x", "inner": {"mode": "c"}}, "inner.mode", "must be one of 'a', 'b'"),
        ({"name": "x", "items": [{}, {"port": 70000}]}, "items[1].port", "at most 65535"),
        ({"name": "x", "items": {"port": 1}}, "items", "expected a list"),
        ({"name": "x", "wait": "soon"}, "wait", "not a duration"),
        ({"name": ["x"]}, "name", "expected a string"),
        ({"name": "x", "token": "${CANHGAC_TEST_UNSET_VAR}"}, "token", "CANHGAC_TEST_UNSET_VAR is not set"),
    ],
)
def test_errors_name_path_and_problem(data, path, problem):
    with pytest.raises(ConfigError) as exc:
        load_section(data, Outer, "f.yaml")
    assert exc.value.source == "f.yaml"
    assert exc.value.path == path
    assert problem in exc.value.problem
    assert str(exc.value).startswith(f"f.yaml: {path}: ")


def test_values_convert_and_env_expands(monkeypatch):
    monkeypatch.setenv("CANHGAC_T", "s3cret")
    cfg = load_section({"name": "Sở TT&TT", "wait": "2m", "token": "${CANHGAC_T}",
                        "inner": {"port": 8443}}, Outer, "f")
    assert cfg.wait == 120 and cfg.token == "s3cret" and "s3cret" not in repr(cfg.token)
    assert cfg.name == "Sở TT&TT"
    assert load_section({"name": "${CANHGAC_NOPE:-dflt}"}, Outer, "f").name == "dflt"


def test_yaml_syntax_error_names_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("listen:\n  port: 1\n bad: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_file(p, CollectorConfig)
    assert "line" in exc.value.path and "invalid YAML" in exc.value.problem


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_file(tmp_path / "nope.yaml", CollectorConfig)
    p = tmp_path / "latin1.yaml"
    p.write_bytes("state_dir: S\xf4\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_file(p, CollectorConfig)


def test_cli_reports_config_error_in_one_line_exit_2(tmp_path, capsys, monkeypatch):
    p = tmp_path / "collector.yaml"
    p.write_text("limits:\n  max_depth: 100\n")
    monkeypatch.setenv("CANHGAC_LANG", "en")
    assert main(["collector", "run", "--config", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"canhgac: error: {p}: limits.max_depth: must be at most 64, got 100"
    assert "Traceback" not in err
    monkeypatch.setenv("CANHGAC_LANG", "vi")
    assert main(["collector", "run", "--config", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"canhgac: lỗi: {p}: limits.max_depth: phải từ 64 trở xuống, đang là 100"


def test_unknown_component_is_a_config_error(tmp_path, capsys, monkeypatch):
    p = tmp_path / "collector.yaml"
    p.write_text(f"state_dir: {tmp_path}/s\ncomponents: [detect, magic]\n")
    monkeypatch.setenv("CANHGAC_LANG", "en")
    assert main(["collector", "run", "--config", str(p)]) == 2
    assert "components[1]: unknown component 'magic'" in capsys.readouterr().err
    monkeypatch.setenv("CANHGAC_LANG", "vi")
    assert main(["collector", "run", "--config", str(p)]) == 2
    assert "components[1]: thành phần không hợp lệ 'magic'" in capsys.readouterr().err


def test_duplicate_keys_are_errors_not_silent_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("listen:\n  port: 1\n  port: 2\n")
    with pytest.raises(ConfigError) as exc:
        load_file(p, CollectorConfig)
    assert "duplicate key 'port'" in exc.value.problem and exc.value.path == "line 3, column 3"


def test_multi_document_config_is_refused(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("listen: {}\n---\nlisten: {}\n")
    with pytest.raises(ConfigError, match="several YAML documents"):
        load_file(p, CollectorConfig)
