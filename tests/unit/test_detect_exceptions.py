"""detection.exceptions: a deployment's known-good activity, skipped by the rule it names,
counted, and every mistake in it named by its collector.yaml key (issue 15, item 8)."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from canhgac.config import load_section
from canhgac.errors import ConfigError
from collector.detect.config import DetectionConfig
from collector.detect.engine import Engine
from collector.detect.metrics import DetectionMetrics
from collector.detect.ruleset import select

BACKUP = {"rule": "canhgac_new_listening_port", "reason": "Bacula backup agent (change 2026-114)",
          "when": {"server.port": 9102, "process.name": ["bacula-fd", "bareos-fd"]}}


def _cfg(*exceptions: dict[str, Any]) -> DetectionConfig:
    data = {"packs": ["host"], "exceptions": list(exceptions)}
    return load_section(data, DetectionConfig, "collector.yaml", "detection")


def _listen(port: int, name: str, host: str = "h1") -> dict[str, Any]:
    return {"event": {"dataset": "socket", "type": ["start"], "id": f"{host}-{port}"},
            "host": {"hostname": host}, "server": {"ip": "0.0.0.0", "port": port},
            "process": {"pid": 7, "name": name}}


def test_an_exception_skips_only_what_it_describes() -> None:
    engine = Engine([lr.rule for lr in select(_cfg(BACKUP), "collector.yaml").loaded])
    assert engine.process([_listen(9102, "bacula-fd")]) == []
    assert engine.process([_listen(9102, "BAREOS-FD", host="h2")]) == []
    # The same port from another program, or another port: alerts as before.
    assert len(engine.process([_listen(9102, "nc", host="h3")])) == 1
    assert len(engine.process([_listen(9103, "bacula-fd", host="h4")])) == 1
    rid = next(r.meta.id for r in engine.rules if r.meta.name == "canhgac_new_listening_port")
    assert engine.stats()["excepted"][rid] == 2
    registry = CollectorRegistry()
    registry.register(DetectionMetrics(engine))
    assert f'canhgac_detect_excepted_total{{rule="{rid}"}} 2.0' in generate_latest(registry).decode()


def test_rules_without_exceptions_are_untouched() -> None:
    engine = Engine([lr.rule for lr in select(_cfg(BACKUP), "collector.yaml").loaded])
    others = [r for r in engine.rules if r.meta.name != "canhgac_new_listening_port"]
    assert others and all(r.exceptions == () for r in others)


@pytest.mark.parametrize(("exc", "path", "words"), [
    ({**BACKUP, "rule": "no_such_rule"}, "detection.exceptions[0].rule", "no loaded rule"),
    ({**BACKUP, "reason": " "}, "detection.exceptions[0].reason", "say why"),
    ({**BACKUP, "when": {}}, "detection.exceptions[0].when", "except everything"),
    ({**BACKUP, "when": {"Bogus": 1}}, "detection.exceptions[0].when.Bogus", "unknown field"),
    ({**BACKUP, "when": {"process.name|contians": "x"}},
     "detection.exceptions[0].when.process.name|contians", "unknown modifier"),
])
def test_exception_mistakes_name_their_key(exc: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        select(_cfg(exc), "collector.yaml")
    assert err.value.path == path and words in err.value.problem


def test_an_exception_needs_rule_reason_and_when() -> None:
    with pytest.raises(ConfigError) as err:
        _cfg({"rule": "x", "when": {"a.b": 1}})
    assert "reason" in str(err.value)
