"""`canhgac rules test FILE [--events FILE.ndjson]`."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from canhgac.cli import main
from collector.detect.loader import BUILTIN_DIR

BRUTE = BUILTIN_DIR / "auth" / "ssh_brute_force.yml"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["rules", "test", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_builtin_pack_passes(capsys) -> None:
    code, out, _ = run(capsys, str(BUILTIN_DIR))
    assert code == 0
    n = len(list(BUILTIN_DIR.rglob("*.yml")))  # one rule per file in the built-in pack
    assert n >= 14
    assert f"{n} rule(s) loaded, 0 refused" in out and " FAIL " not in out


def test_one_rule_file(capsys) -> None:
    code, out, _ = run(capsys, str(BRUTE))
    assert code == 0
    assert "SSH brute force  [threshold, high]" in out
    assert "ok   five failures from one address in a minute raise one alert" in out


def test_failing_test_exits_1_and_says_why(tmp_path: Path, capsys) -> None:
    text = BRUTE.read_text(encoding="utf-8").replace("expect: {alerts: 0}", "expect: {alerts: 3}", 1)
    rule = tmp_path / "r.yml"
    rule.write_text(text, encoding="utf-8")
    code, out, _ = run(capsys, str(rule))
    assert code == 1
    assert "FAIL four failures are not enough" in out
    assert "expected 3 alert(s), got 0" in out


def test_invalid_rule_is_refused_with_its_reason_and_exits_2(tmp_path: Path, capsys) -> None:
    rule = tmp_path / "bad.yml"
    rule.write_text(BRUTE.read_text(encoding="utf-8").replace("count: 5", "count: many"),
                    encoding="utf-8")
    code, out, err = run(capsys, str(rule))
    assert code == 2
    assert (f"REFUSED (kind_options)  {rule}: threshold.count: expected a positive "
            "integer, got 'many'") in out
    assert "0 rule(s) loaded, 1 refused (kind_options 1)" in out
    assert "Traceback" not in err


def test_one_bad_file_does_not_hide_the_others(tmp_path: Path, capsys) -> None:
    """Issue 15 finding: `rules test DIR` stopped at the first bad file."""
    (tmp_path / "a-bad.yml").write_text("title: [unclosed\n", encoding="utf-8")
    (tmp_path / "b-good.yml").write_text(BRUTE.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "c-dup.yml").write_text(BRUTE.read_text(encoding="utf-8"), encoding="utf-8")
    code, out, _ = run(capsys, str(tmp_path))
    assert code == 2
    assert "SSH brute force" in out and "ok   five failures" in out  # the good one was tested
    assert "1 rule(s) loaded, 2 refused (yaml 1, duplicate_id 1)" in out


def test_invalid_test_case_exits_2(tmp_path: Path, capsys) -> None:
    rule = tmp_path / "bad.yml"
    rule.write_text(BRUTE.read_text(encoding="utf-8").replace("_repeat: 4", "_repeat: -4"),
                    encoding="utf-8")
    code, _, err = run(capsys, str(rule))
    assert code == 2
    assert "tests[1].events[0]._repeat: expected a positive integer" in err


def test_missing_file(capsys) -> None:
    code, _, err = run(capsys, "/nonexistent/rule.yml")
    assert code == 2 and "file not found" in err


def _ndjson(path: Path, docs: list[dict]) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps(d) for d in docs) + b"\n")
    return path


def test_events_are_replayed_into_a_table(tmp_path: Path, capsys) -> None:
    docs = [
        {"@timestamp": f"2026-11-23T10:00:0{i}Z",
         "event": {"dataset": "auth", "id": f"e{i}", "action": "ssh_login", "outcome": "failure"},
         "process": {"name": "sshd"}, "source": {"ip": "203.0.113.7"},
         "host": {"hostname": "web-01"}}
        for i in range(7)
    ]
    events = _ndjson(tmp_path / "ev.ndjson", docs)
    code, out, _ = run(capsys, str(BUILTIN_DIR / "auth"), "--events", str(events))
    assert code == 0
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("time "))
    assert lines[header].split() == ["time", "rule", "severity", "key", "count", "events"]
    body = lines[header + 2:]
    assert "SSH brute force" in body[0] and "high (73)" in body[0]
    assert "source.ip=203.0.113.7, host.hostname=web-01" in body[0]
    assert "SSH brute force (update)" in body[1]
    assert out.rstrip().endswith("2 alert(s)")


def test_flat_events_and_no_matches(tmp_path: Path, capsys) -> None:
    events = _ndjson(tmp_path / "ev.ndjson", [{"event.dataset": "auth", "event.outcome": "success"}])
    code, out, _ = run(capsys, str(BRUTE), "--events", str(events))
    assert code == 0 and out.rstrip().endswith("no alerts")


@pytest.mark.parametrize(("content", "problem"), [
    (b'{"event": {"dataset": "auth"}}\n{"a":\n', "line 2: not JSON"),
    (b'[1, 2]\n', "line 1: expected an ECS event object"),
])
def test_bad_events_file(tmp_path: Path, capsys, content: bytes, problem: str) -> None:
    events = tmp_path / "ev.ndjson"
    events.write_bytes(content)
    code, _, err = run(capsys, str(BRUTE), "--events", str(events))
    assert code == 2 and problem in err
