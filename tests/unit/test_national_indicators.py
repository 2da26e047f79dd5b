"""STIX indicators: the center's bundle, the collector's parser, matching and alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from canhgac.config import load_section
from canhgac.schema import DNS, NETWORK, new_event
from canhgac.timeutil import format_rfc3339
from collector.national.config import IndicatorsConfig
from collector.national.indicators import IndicatorCache, IndicatorSet, IndicatorStage
from collector.national.stix import parse_bundle, parse_pattern
from national_center.indicators import IndicatorSpec, IndicatorStore, pattern

SHA = "a" * 64


def store_with(*specs: dict) -> IndicatorStore:
    st = IndicatorStore()
    for s in specs:
        st.add(load_section(s, IndicatorSpec, "test"))
    return st


def compiled(*specs: dict) -> IndicatorSet:
    body, _ = store_with(*specs).bundle()
    inds, unsupported = parse_bundle(orjson.loads(body))
    assert unsupported == 0
    return IndicatorSet(inds)


@pytest.mark.parametrize("kind,value", [("ipv4", "203.0.113.5"), ("ipv6", "2001:db8::5"),
                                        ("domain", "evil.example"),
                                        ("url", "http://evil.example/a?b='c'"),
                                        ("sha256", SHA)])
def test_pattern_round_trip(kind, value):
    assert parse_pattern(pattern(kind, value)) == (kind, value)


def test_unsupported_revoked_and_expired_are_skipped():
    past = format_rfc3339(datetime.now(UTC) - timedelta(days=1))
    bundle = {"type": "bundle", "objects": [
        {"type": "indicator", "id": "indicator--1", "pattern_type": "stix",
         "pattern": "[ipv4-addr:value = '1.1.1.1'] AND [domain-name:value = 'x']"},
        {"type": "indicator", "id": "indicator--2", "pattern": "[ipv4-addr:value = '2.2.2.2']",
         "revoked": True},
        {"type": "indicator", "id": "indicator--3", "pattern": "[ipv4-addr:value = '3.3.3.3']",
         "valid_until": past},
        {"type": "malware", "id": "malware--1"},
        {"type": "indicator", "id": "indicator--4", "pattern": "[ipv4-addr:value = '4.4.4.4']"},
    ]}
    inds, unsupported = parse_bundle(bundle)
    assert [i.value for i in inds] == ["4.4.4.4"] and unsupported == 1


def test_matching_each_kind():
    s = compiled({"type": "ipv4", "value": "203.0.113.5"},
                 {"type": "ipv4", "value": "198.51.100.0/24"},
                 {"type": "ipv6", "value": "2001:db8::5"},
                 {"type": "domain", "value": "Evil.Example."},
                 {"type": "url", "value": "http://bad.example/x"},
                 {"type": "sha256", "value": SHA})
    assert s.match_ip("203.0.113.5").value == "203.0.113.5"
    assert s.match_ip("198.51.100.200").value == "198.51.100.0/24"
    assert s.match_ip("2001:0db8:0000::0005").value == "2001:db8::5"
    assert s.match_ip("203.0.113.6") is None
    assert s.match_ip("not an ip") is None
    assert s.match_domain("evil.example").type == "domain"
    assert s.match_domain("cdn.EVIL.example.").type == "domain"
    assert s.match_domain("notevil.example") is None
    assert s.match_url("http://bad.example/x").type == "url"
    assert s.match_hash(SHA.upper()).type == "sha256"
    assert s.by_type == {"ipv4": 2, "ipv6": 1, "domain": 1, "url": 1, "sha256": 1}


def _event(dataset=NETWORK, system="sys-a", **fields):
    ev = new_event(dataset, **fields)
    ev["canhgac"] = {"system": {"id": system, "name": "Cổng dịch vụ công", "level": 3},
                     "unit": {"name": "Sở Thông tin và Truyền thông"}}
    ev["host"] = {"name": "web-1"}
    return ev


def test_stage_annotates_and_raises_one_alert_naming_the_indicator():
    stage = IndicatorStage(IndicatorsConfig())
    body, _ = store_with({"type": "domain", "value": "evil.example", "name": "C2 of APT-X",
                          "severity": "critical"}).bundle()
    stage.load(*parse_bundle(orjson.loads(body)))
    hit = _event(DNS, dns={"question": {"name": "a.evil.example"}})
    miss = _event(DNS, dns={"question": {"name": "gov.vn"}})
    alerts = stage.process([hit, miss])
    assert len(alerts) == 1
    a = alerts[0]
    assert a["event"]["kind"] == "alert" and a["event"]["severity"] == 99
    assert "C2 of APT-X" in a["rule"]["name"] and "C2 of APT-X" in a["message"]
    assert a["threat"]["indicator"]["url"]["domain"] == "evil.example"
    assert a["canhgac"]["system"]["id"] == "sys-a"
    assert a["canhgac"]["alert"]["source_event_ids"] == [hit["event"]["id"]]
    assert a["canhgac"]["unit"]["name"] == "Sở Thông tin và Truyền thông"
    assert hit["threat"]["enrichments"][0]["matched"]["field"] == "dns.question.name"
    assert "threat" not in miss
    # Alerts are not matched again (no alert storms from our own alerts).
    assert stage.process(alerts) == []


def test_suppression_per_indicator_and_system():
    stage = IndicatorStage(IndicatorsConfig(suppress=600))
    body, _ = store_with({"type": "ipv4", "value": "203.0.113.5"}).bundle()
    stage.load(*parse_bundle(orjson.loads(body)))
    evs = [_event(source={"ip": "203.0.113.5"}) for _ in range(5)]
    evs.append(_event(system="sys-b", destination={"ip": "203.0.113.5"}))
    alerts = stage.process(evs)
    assert len(alerts) == 2
    assert stage.counters.matches == 6 and stage.counters.suppressed == 4
    assert all("threat" in e for e in evs)


def test_one_alert_per_indicator_even_if_two_fields_match():
    stage = IndicatorStage(IndicatorsConfig(suppress=0))
    body, _ = store_with({"type": "ipv4", "value": "203.0.113.5"}).bundle()
    stage.load(*parse_bundle(orjson.loads(body)))
    ev = _event(source={"ip": "203.0.113.5"}, destination={"ip": "203.0.113.5"})
    assert len(stage.process([ev])) == 1


def test_center_bundle_etag_and_added_after():
    import time

    from canhgac.timeutil import parse_rfc3339

    st = store_with({"type": "ipv4", "value": "203.0.113.5"})
    body1, etag1 = st.bundle()
    assert st.bundle()[1] == etag1
    cut = parse_rfc3339(orjson.loads(body1)["objects"][0]["modified"])
    time.sleep(0.01)  # timestamps have millisecond precision
    st.add(load_section({"type": "domain", "value": "new.example"}, IndicatorSpec, "t"))
    body2, etag2 = st.bundle()
    assert etag2 != etag1
    newer, _ = st.bundle(cut)
    objs = orjson.loads(newer)["objects"]
    assert [o["pattern"] for o in objs] == ["[domain-name:value = 'new.example']"]
    assert all(o["spec_version"] == "2.1" for o in orjson.loads(body2)["objects"])


def test_center_loads_yaml_and_rejects_bad_values(tmp_path):
    f = tmp_path / "ind.yaml"
    f.write_text("indicators:\n  - {type: ipv4, value: 203.0.113.9, name: scanner}\n"
                 "  - {type: sha256, value: " + SHA + "}\n")
    st = IndicatorStore()
    assert st.load(f) == 2
    f.write_text("indicators:\n  - {type: ipv4, value: 999.1.1.1}\n")
    from canhgac.errors import ConfigError

    with pytest.raises(ConfigError) as exc:
        st.load(f)
    assert "indicators[0].value" in str(exc.value)


def test_cache_round_trip(tmp_path):
    cache = IndicatorCache(tmp_path / "national" / "indicators.json")
    assert cache.load() == (None, "")
    cache.save({"type": "bundle", "objects": []}, '"e1"')
    assert cache.load() == ({"type": "bundle", "objects": []}, '"e1"')
    cache.path.write_text("{corrupt")
    assert cache.load() == (None, "")


def test_sample_indicator_file_loads():
    from pathlib import Path

    st = IndicatorStore()
    n = st.load(Path(__file__).parents[2] / "configs" / "national-indicators.yaml")
    inds, unsupported = parse_bundle(orjson.loads(st.bundle()[0]))
    assert n == len(inds) > 0 and unsupported == 0
