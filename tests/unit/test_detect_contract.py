"""The probes' real event shapes meet the built-in rules.

Real sshd / useradd / usermod log lines go through the agent's auth-log parser
and then through the collector's detect stage: if either side renames a field
or an action, this fails here rather than in a SOC on the day of an attack.
"""

from __future__ import annotations

from datetime import UTC, datetime

from agent.probes.authparse import parse_line
from collector.detect.engine import Engine, EngineLimits
from collector.detect.loader import BUILTIN_DIR, builtin_packs, load_paths

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def engine() -> Engine:
    loaded = load_paths([(BUILTIN_DIR / p, f"canhgac/{p}") for p in builtin_packs()])
    return Engine([lr.rule for lr in loaded], EngineLimits(), clock=lambda: NOW.timestamp())


def parsed(lines: list[str]) -> list[dict]:
    out = []
    for line in lines:
        doc = parse_line(line, NOW)
        doc.setdefault("host", {"hostname": "web-01"})
        out.append(doc)
    return out


def names(alerts: list[dict]) -> list[str]:
    return [a["rule"]["name"] for a in alerts]


def test_sshd_brute_force_then_success_from_real_lines() -> None:
    lines = []
    for i in range(3):
        lines.append(f"2026-11-23T11:59:{10 + i:02d}.000000+00:00 web-01 sshd[9{i}]: "
                     f"Invalid user oracle from 203.0.113.7 port 5{i}022")
        lines.append(f"2026-11-23T11:59:{10 + i:02d}.500000+00:00 web-01 sshd[9{i}]: "
                     f"Failed password for invalid user oracle from 203.0.113.7 port 5{i}022 ssh2")
    for i in range(3):
        lines.append(f"2026-11-23T11:59:{20 + i:02d}.000000+00:00 web-01 sshd[8{i}]: "
                     f"Failed password for root from 203.0.113.7 port 6{i}022 ssh2")
    lines.append("2026-11-23T11:59:30.000000+00:00 web-01 sshd[70]: "
                 "Accepted password for root from 203.0.113.7 port 61000 ssh2")
    alerts = engine().process(parsed(lines))
    assert names(alerts) == ["SSH brute force", "SSH login succeeded after brute force"]
    assert {a["source"]["ip"] for a in alerts} == {"203.0.113.7"}
    assert alerts[0]["canhgac"]["alert"]["count"] == 5
    assert alerts[1]["user"]["name"] == "root"


def test_uid0_and_new_user_from_real_lines() -> None:
    lines = [
        "2026-11-23T11:00:00.000000+00:00 web-01 useradd[100]: new user: name=toor, UID=0, "
        "GID=0, home=/root2, shell=/bin/bash, from=/dev/pts/0",
        "2026-11-23T11:00:01.000000+00:00 web-01 useradd[101]: new user: name=backup2, UID=1002, "
        "GID=1002, home=/home/backup2, shell=/bin/bash, from=/dev/pts/0",
        "2026-11-23T11:00:02.000000+00:00 web-01 usermod[102]: change user 'bob' UID from "
        "'1001' to '0'",
    ]
    alerts = engine().process(parsed(lines))
    assert sorted(names(alerts)) == sorted([
        "Account with UID 0 other than root", "New local user account", "New local user account",
        "Account with UID 0 other than root"])
    assert {a["user"]["name"] for a in alerts if a["event"]["severity"] == 99} == {"toor", "bob"}


def test_network_sensor_facts_meet_the_network_rules() -> None:
    from agent.probes.netdetect import Arp, ArpDetector, PortScanDetector, Syn

    t = NOW.timestamp()
    scans = PortScanDetector(min_ports=20)
    for port in range(1, 101):
        scans.feed(Syn("10.20.0.2", "10.20.0.1", port, t + port / 1000))
    arp = ArpDetector()
    facts = arp.feed(Arp(2, "02:42:ac:11:00:01", "10.20.0.1", "02:42:ac:11:00:02", "10.20.0.3",
                         "02:42:ac:11:00:01", t))
    facts += arp.feed(Arp(2, "02:42:ac:11:00:99", "10.20.0.1", "02:42:ac:11:00:02", "10.20.0.3",
                          "02:42:ac:11:00:99", t + 1))
    facts += scans.flush(t + 120)
    for doc in facts:
        doc["host"] = {"hostname": "sensor-01"}
    alerts = engine().process(facts)
    assert sorted(names(alerts)) == ["ARP spoofing", "Port scan"]
    by_name = {a["rule"]["name"]: a for a in alerts}
    assert by_name["Port scan"]["source"]["ip"] == "10.20.0.2"
    assert by_name["ARP spoofing"]["source"]["mac"] == "02:42:ac:11:00:99"
