"""Sharing policy, personal-data minimisation and batch encoding of the national output."""

from __future__ import annotations

import gzip

import orjson
import pytest

from canhgac.config import load_section
from canhgac.errors import ConfigError
from canhgac.schema import ALERT, AUTH, new_event
from collector.inventory import InventoryHolder, parse_inventory
from shipper.outputs.national.config import (
    NationalOutputConfig,
    PolicyConfig,
    RedactConfig,
    hash_key,
    load_link,
)
from shipper.outputs.national.encoder import Encoder
from shipper.outputs.national.policy import SUMMARY_DATASET, Policy, severity_label
from shipper.outputs.national.redact import REDACTED, Redactor

KEY = b"k" * 32


def alert(severity=None, label=None, level=3, system="sys-a"):
    ev = new_event(ALERT, kind="alert")
    if severity is not None:
        ev["event"]["severity"] = severity
    ev["canhgac"] = {"system": {"id": system, "level": level}}
    if label:
        ev["canhgac"]["alert"] = {"severity": label}
    return ev


def telemetry(dataset=AUTH, level=3):
    ev = new_event(dataset)
    ev["canhgac"] = {"system": {"id": "sys-a", "level": level}}
    return ev


@pytest.mark.parametrize("num,label", [(0, "low"), (21, "low"), (22, "medium"), (47, "medium"),
                                       (48, "high"), (73, "high"), (74, "critical"),
                                       (99, "critical")])
def test_severity_ranges(num, label):
    assert severity_label(alert(num)) == label


def test_label_wins_and_missing_severity_is_medium():
    assert severity_label(alert(99, label="low")) == "low"
    assert severity_label(alert()) == "medium"


def test_default_policy_alerts_medium_up_and_summaries_never_telemetry():
    p = Policy(PolicyConfig())
    assert p.decide(alert(21)) == "below_severity"
    assert p.decide(alert(47)) == "share:alert"
    assert p.decide(alert(99)) == "share:alert"
    assert p.decide(new_event(SUMMARY_DATASET, kind="metric")) == "share:summary"
    assert p.decide(telemetry()) == "telemetry"
    assert p.decide({"no": "event"}) == "malformed"


def test_policy_per_level():
    cfg = load_section({"levels": {4: {"min_severity": "low", "telemetry": True,
                                       "telemetry_datasets": ["auth"]},
                                   2: {"alerts": False, "summaries": False}}},
                       PolicyConfig, "c.yaml", "outputs.national.policy")
    p = Policy(cfg)
    assert p.decide(alert(21, level=4)) == "share:alert"
    assert p.decide(telemetry(AUTH, level=4)) == "share:telemetry"
    assert p.decide(telemetry("process", level=4)) == "telemetry"
    assert p.decide(alert(99, level=2)) == "alerts_disabled"
    summary = new_event(SUMMARY_DATASET, kind="metric")
    summary["canhgac"] = {"system": {"id": "x", "level": 2}}
    assert p.decide(summary) == "summaries_disabled"
    assert p.decide(alert(21, level=3)) == "below_severity"  # default for other levels


def test_bad_level_in_policy_names_the_path():
    with pytest.raises(ConfigError) as exc:
        load_section({"policy": {"levels": {7: {}}}}, NationalOutputConfig, "c.yaml",
                     "outputs.national")
    assert "outputs.national.policy.levels.7" in str(exc.value)


def test_inventory_opt_out_and_level_lookup():
    inv = InventoryHolder(parse_inventory({"systems": [
        {"id": "on", "name": "A", "unit": "U", "level": 3, "national": {"enabled": True}},
        {"id": "off", "name": "B", "unit": "U", "level": 3},
        {"id": "old", "name": "C", "unit": "U", "level": 3, "national": {"enabled": True},
         "status": "retired", "retired_on": "2025-01-01"},
    ]}, "inv.yaml"))
    p = Policy(PolicyConfig(), inv)
    # Issue 9: agents of retired systems are never forwarded to the national center.
    assert p.decide(alert(99, system="old")) == "system_retired"
    a = alert(99, system="on")
    b = alert(99, system="off")
    assert p.decide(a) == "share:alert"
    assert p.decide(b) == "system_opted_out"
    # Unknown to the inventory: never reported to the national center as the province's
    # (issue 9 finding: its alerts and summaries still went out).
    assert p.decide(alert(99, system="unlisted")) == "unknown_system"
    # Without an inventory in force, no system can be called unknown: the level decides.
    assert Policy(PolicyConfig(), InventoryHolder()).decide(alert(99, system="x")) == "share:alert"


def test_redaction_modes_nested_flat_and_lists():
    cfg = load_section({"fields": {"user.name": "hash", "source.ip": "truncate",
                                   "process.command_line": "redact", "user.email": "drop",
                                   "related.ip": "hash", "message": "keep"}},
                       RedactConfig, "c.yaml")
    r = Redactor(cfg, KEY)
    doc = {"user": {"name": "nguyen.van.a", "email": "a@example.vn"},
           "source": {"ip": "203.0.113.77"}, "process.command_line": "mysql -psecret",
           "related": {"ip": ["203.0.113.77", "2001:db8::1"]}, "message": "hello"}
    r.apply(doc)
    assert doc["user"]["name"].startswith("h:") and "nguyen" not in doc["user"]["name"]
    assert "email" not in doc["user"]
    assert doc["source"]["ip"] == "203.0.113.0"
    assert doc["process.command_line"] == REDACTED
    assert all(v.startswith("h:") for v in doc["related"]["ip"])
    assert doc["message"] == "hello"
    # Stable under the same key (the center can correlate), different under another.
    assert Redactor(cfg, KEY).pseudonym("nguyen.van.a") == doc["user"]["name"]
    assert Redactor(cfg, b"z" * 32).pseudonym("nguyen.van.a") != doc["user"]["name"]


def test_default_redaction_covers_the_personal_fields():
    r = Redactor(RedactConfig(), KEY)
    doc = {"user": {"name": "an"}, "source": {"ip": "10.9.8.7"},
           "process": {"command_line": "curl -u an:pw", "args": ["curl", "-u", "an:pw"]},
           "url": {"query": "token=abc", "domain": "example.vn"}}
    r.apply(doc)
    text = orjson.dumps(doc).decode()
    for secret in ("an:pw", "10.9.8.7", '"an"', "token=abc"):
        assert secret not in text
    assert doc["url"]["domain"] == "example.vn"


def test_truncate_non_ip_is_redacted_and_ipv6_keeps_48():
    r = Redactor(load_section({"fields": {"a": "truncate", "b": "truncate"}}, RedactConfig, "c"),
                 KEY)
    doc = {"a": "not-an-ip", "b": "2001:db8:1:2::5"}
    r.apply(doc)
    assert doc == {"a": REDACTED, "b": "2001:db8:1::"}


def test_hash_key_is_generated_once_and_private(tmp_path):
    k1 = hash_key(RedactConfig(), tmp_path)
    k2 = hash_key(RedactConfig(), tmp_path)
    assert k1 == k2 and len(k1) == 32
    assert (tmp_path / "national" / "redaction.key").stat().st_mode & 0o777 == 0o600
    configured = load_section({"hash_key": "hex:" + "11" * 32}, RedactConfig, "c")
    assert hash_key(configured, tmp_path) == b"\x11" * 32


def _encoder(max_events=2000, max_bytes=8 << 20, inventory=None):
    return Encoder(Policy(PolicyConfig(), inventory), Redactor(RedactConfig(), KEY),
                   max_events, max_bytes, 1)


def test_encoder_filters_counts_and_indexes():
    lines = [orjson.dumps(x) for x in (alert(99), telemetry(), alert(10), alert(73))] + [b"{bad"]
    enc = _encoder().encode("national:1-5", lines)
    assert len(enc.requests) == 1
    req = enc.requests[0]
    assert req.indexes == [0, 3]
    assert enc.filtered == {"telemetry": 1, "below_severity": 1, "malformed": 1}
    assert enc.shared == {"alert": 2}
    assert gzip.decompress(req.gz) == req.body
    assert req.systems == {"sys-a"}
    sent = [orjson.loads(x) for x in req.body.splitlines()]
    assert [d["event"]["id"] for d in sent] == [orjson.loads(lines[i])["event"]["id"]
                                               for i in (0, 3)]


def test_batch_ids_are_stable_per_content_and_split_by_size():
    lines = [orjson.dumps(alert(99)) for _ in range(5)]
    a = _encoder(max_events=2).encode("national:1-5", lines)
    b = _encoder(max_events=2).encode("national:1-5", lines)
    assert [r.batch_id for r in a.requests] == [r.batch_id for r in b.requests]
    assert [len(r.indexes) for r in a.requests] == [2, 2, 1]
    assert len({r.batch_id for r in a.requests}) == 3
    # The same lease id with different content (a retry of a subset) gets a new id.
    c = _encoder(max_events=2).encode("national:1-5", lines[2:])
    assert c.requests[0].batch_id not in {r.batch_id for r in a.requests}


def test_link_config_errors_name_the_key():
    for raw, where in (({"link": {"url": "http://x"}}, "national.link.url"),
                       ({"link": {"url": "https://x", "key_id": "a b"}}, "national.link.key_id"),
                       ({"link": {"url": "https://x", "key_id": "k"}}, "national.link.secret"),
                       ({"link": {"url": "https://x", "key_id": "k", "secret": "short"}},
                        "national.link.secret"),
                       ({"link": {"urll": "https://x"}}, "national.link.urll")):
        with pytest.raises(ConfigError) as exc:
            load_link(raw, "collector.yaml")
        assert f"collector.yaml: {where}" in str(exc.value)
    ok = load_link({"link": {"url": "https://ncsc.example.vn", "key_id": "vn-tth",
                             "secret": "hex:" + "ab" * 32}}, "c")
    assert ok.secret_bytes("c") == b"\xab" * 32
    assert "ab" * 32 not in repr(ok)


def test_secret_file(tmp_path):
    f = tmp_path / "secret"
    f.write_text("hex:" + "cd" * 32 + "\n")
    link = load_link({"link": {"url": "https://x", "key_id": "k", "secret_file": str(f)}}, "c")
    assert link.secret_bytes("c") == b"\xcd" * 32
    f.unlink()
    with pytest.raises(ConfigError) as exc:
        link.secret_bytes("c")
    assert "national.link.secret_file" in str(exc.value)


def test_sample_collector_sections_load(monkeypatch):
    from pathlib import Path

    import yaml

    from collector.national.config import NationalSection

    monkeypatch.setenv("CANHGAC_NATIONAL_SECRET", "hex:" + "ab" * 32)
    path = Path(__file__).parents[2] / "configs" / "national-collector.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    nat = load_section(doc["national"], NationalSection, str(path), "national")
    out = load_section(doc["outputs"]["national"], NationalOutputConfig, str(path),
                       "outputs.national")
    assert nat.link.configured and out.policy.for_level(4).min_severity == "low"
    assert out.redact.all_fields()["message"] == "text"
    from national_center.keys import load_keys

    keys = load_keys(path.parent / "national-keys.yaml")
    assert set(keys) == {"vn-tth", "vn-hd"} and all(len(k) == 32 for k in keys.values())
