"""Reason codes and the stateless half of ingest (``prepare``), without a server."""

from __future__ import annotations

import gzip
import pickle

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from canhgac.config import load_section
from canhgac.errors import ConfigError
from canhgac.schema import new_event
from collector.auth import AgentRecord
from collector.config import CollectorConfig
from collector.enrich import Enricher
from collector.ingest_workers import (
    BatchJob,
    Prepared,
    Refused,
    _enricher_for,
    default_workers,
    prepare,
)
from collector.inventory import Inventory, InventoryHolder, System
from collector.metrics import IngestMetrics
from collector.validate import REJECT_CODES, Invalid, Limits, parse_line

LIMITS = Limits(max_event_bytes=4096, max_depth=6, max_future_skew=300, max_age=86400)
AGENT = AgentRecord("agent-1", "hash", "sys-1", "web-01", 0.0)
SYSTEM = System(id="sys-1", name="Cổng dịch vụ công", unit="Sở TT&TT", level=3)


def line(**over: object) -> bytes:
    ev = new_event("auth")
    ev.update(over)
    return orjson.dumps(ev)


# One line per code, and the code each must get (the text of the reason is free to change).
BY_CODE: dict[str, list[bytes]] = {
    "size": [b"x" * 5000],
    "json": [b"nope", b"1", b"[1, 2]"],
    "depth": [line(a={"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}),
              b"[" * 2000 + b"]" * 2000],
    "schema": [line(event="x"), orjson.dumps({**new_event("bogus")}),
               orjson.dumps({**new_event("auth"), "event": {"id": "a b", "dataset": "auth"}}),
               orjson.dumps({**new_event("auth"), "event": {**new_event("auth")["event"],
                                                            "kind": "nope"}})],
    "timestamp": [line(**{"@timestamp": 5}), line(**{"@timestamp": "2024-13-01T00:00:00Z"}),
                  line(**{"@timestamp": "2024-01-01T00:00:00"}),
                  line(**{"@timestamp": "2999-01-01T00:00:00Z"}),
                  line(**{"@timestamp": "2001-01-01T00:00:00Z"})],
    "field_type": [line(source={"ip": "1.2.3"}), line(destination={"ip": 7}),
                   line(source={"port": "22"}), line(source="1.2.3.4")],
}


def test_every_code_is_produced_by_some_line_and_only_codes_are_produced():
    assert set(BY_CODE) == set(REJECT_CODES)
    for code, lines in BY_CODE.items():
        for raw in lines:
            with pytest.raises(Invalid) as info:
                parse_line(raw, LIMITS)
            assert info.value.code == code, (raw[:60], str(info.value))
            assert str(info.value) == info.value.reason and info.value.reason


def test_code_does_not_depend_on_words_in_the_payload():
    # The old text bucketing sent a dataset named like this to "field_type".
    with pytest.raises(Invalid) as info:
        parse_line(orjson.dumps(new_event("an ip port")), LIMITS)
    assert info.value.code == "schema"
    with pytest.raises(Invalid) as info:
        parse_line(orjson.dumps({**new_event("auth"), "event": {**new_event("auth")["event"],
                                                                "kind": "@timestamp"}}), LIMITS)
    assert info.value.code == "schema"


def test_invalid_survives_pickling():
    exc = pickle.loads(pickle.dumps(Invalid("json", "not JSON")))
    assert (exc.code, exc.reason, str(exc)) == ("json", "not JSON", "not JSON")


def test_metrics_export_every_code_as_a_label_from_the_start():
    registry = CollectorRegistry()
    m = IngestMetrics(registry)
    text = generate_latest(registry).decode()
    for code in REJECT_CODES:
        assert f'canhgac_ingest_events_rejected_total{{reason="{code}"}} 0.0' in text
    m.rejected.labels("depth").inc(3)
    assert 'canhgac_ingest_events_rejected_total{reason="depth"} 3.0' in generate_latest(
        registry).decode()


def job(**over: object) -> BatchJob:
    base = dict(limits=LIMITS, max_decompressed_bytes=1 << 20, max_events_per_batch=100,
                agent=AGENT, system=("sys-1", SYSTEM.name, SYSTEM.unit, 3))
    base.update(over)
    return BatchJob(**base)  # type: ignore[arg-type]


def enricher() -> Enricher:
    return Enricher(InventoryHolder(Inventory(systems=[SYSTEM])))


def test_prepare_keeps_good_lines_lists_bad_ones_with_code_and_attributes():
    good = new_event("process", action="start")
    good["canhgac"] = {"system": {"id": "other", "level": 5}, "scan": {"ports": 3}}
    health = new_event("agent.health")
    health["canhgac_agent"] = {"version": "x"}
    body = b"\n".join([orjson.dumps(good), b"{bad", b"", line(source={"port": 70000}),
                       orjson.dumps(health), b"   "])
    enr = enricher()
    out = prepare(gzip.compress(body), True, job(), enr)
    assert isinstance(out, Prepared)
    assert out.received == 4 and len(out.events) == 2
    assert [(e["line"], e["code"]) for e in out.errors] == [(1, "json"), (2, "field_type")]
    assert out.rejected_by_code == {"json": 1, "field_type": 1}
    assert out.overrides == 1 and enr.overrides == 1
    ev = out.events[0]
    assert ev["canhgac"]["system"] == {"id": "sys-1", "name": SYSTEM.name, "level": 3}
    assert ev["canhgac"]["unit"] == {"name": SYSTEM.unit} and ev["canhgac"]["scan"] == {"ports": 3}
    assert ev["agent"]["id"] == "agent-1" and ev["event"]["ingested"]
    assert out.security and out.health == 1


def test_prepare_priority_and_health_of_telemetry_only_batches():
    body = b"\n".join(orjson.dumps(new_event(ds)) for ds in ("host.metrics", "agent.health",
                                                              "host.metrics"))
    out = prepare(body, False, job(), enricher())
    assert isinstance(out, Prepared) and not out.security and out.health == 1


def test_prepare_refuses_bad_gzip_bombs_and_too_many_lines():
    enr = enricher()
    assert isinstance(r := prepare(b"plain", True, job(), enr), Refused) and r.status == 400
    assert "bad gzip body" in r.message
    trunc = prepare(gzip.compress(line())[:-6], True, job(), enr)
    assert isinstance(trunc, Refused) and trunc.status == 400 and "truncated" in trunc.message
    bomb = prepare(gzip.compress(b"0" * (3 << 20)), True, job(), enr)
    assert isinstance(bomb, Refused) and (bomb.status, bomb.limit) == (413, 1 << 20)
    many = prepare(b"\n".join([line()] * 101), False, job(), enr)
    assert isinstance(many, Refused) and many.status == 413 and "101 events" in many.message


def test_worker_enricher_matches_the_main_process_enricher():
    ev = new_event("auth")
    ev["canhgac"] = {"system": {"id": "else"}, "agent": {"id": "forged"}, "probe": 1}
    main_side = [orjson.loads(orjson.dumps(ev))]
    worker_side = [orjson.loads(orjson.dumps(ev))]
    enricher().apply(main_side, AGENT)
    w = _enricher_for(("sys-1", SYSTEM.name, SYSTEM.unit, 3))
    w.apply(worker_side, AGENT)
    for e in (main_side[0], worker_side[0]):
        e["event"].pop("ingested")
    assert main_side == worker_side
    unknown = [orjson.loads(orjson.dumps(ev))]
    _enricher_for(None).apply(unknown, AGENT)
    assert unknown[0]["canhgac"]["system"] == {"id": "sys-1"}


def test_default_workers_leave_a_core_for_the_event_loop():
    assert [default_workers(c) for c in (1, 2, 3, 4, 8, 64)] == [0, 1, 2, 3, 4, 4]
    assert default_workers() >= 0


def test_ingest_workers_option():
    assert load_section({}, CollectorConfig, "t").ingest_workers == "auto"
    assert load_section({"ingest_workers": 0}, CollectorConfig, "t").ingest_workers == 0
    assert load_section({"ingest_workers": 3}, CollectorConfig, "t").ingest_workers == 3
    for bad in (-1, 65, "many", True):
        with pytest.raises(ConfigError, match="ingest_workers"):
            load_section({"ingest_workers": bad}, CollectorConfig, "t")


def test_protocol_doc_lists_every_code():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    for code in REJECT_CODES:
        assert f"| `{code}` |" in doc


def test_worker_sockets_hold_a_whole_answer():
    """A 500-event answer (~330 KB) fits in a worker socket's send buffer, so the worker
    never waits in sendall for a busy event loop before starting its next batch."""
    import socket

    from collector.ingest_workers import widen

    a, b = socket.socketpair()
    try:
        before = a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        widen(a)
        after = a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        with open("/proc/sys/net/core/wmem_max") as f:
            cap = 2 * int(f.read())
        assert after >= min(cap, 2 * 4 * 1024 * 1024) and after > before
    finally:
        a.close()
        b.close()
