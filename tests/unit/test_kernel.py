"""Kernel pieces: ids, time, tables, validation of one line, example configs."""

from __future__ import annotations

import unicodedata
import uuid
from pathlib import Path

import orjson
import pytest

from canhgac.config import load_file
from canhgac.ids import uuid7
from canhgac.schema import get_path, new_event, priority_of, set_path
from canhgac.table import cell_width, render
from canhgac.timeutil import parse_duration, parse_rfc3339
from collector.validate import Invalid, Limits, parse_line

ROOT = Path(__file__).resolve().parents[2]
LIMITS = Limits(max_event_bytes=4096, max_depth=6, max_future_skew=300, max_age=86400)


def test_uuid7_is_v7_unique_and_ordered():
    ids = [uuid7() for _ in range(5000)]
    assert len(set(ids)) == 5000
    assert ids == sorted(ids)
    u = uuid.UUID(ids[0])
    assert u.version == 7 and u.variant == uuid.RFC_4122


def test_new_event_sets_id_timestamp_and_ecs():
    ev = new_event("auth", category=["authentication"], outcome="failure", user={"name": "root"})
    assert ev["event"]["id"] and ev["@timestamp"].endswith("Z")
    assert ev["ecs"]["version"].startswith("8.")
    assert get_path(ev, "user.name") == "root"
    set_path(ev, "source.ip", "10.0.0.1")
    assert ev["source"] == {"ip": "10.0.0.1"}
    assert priority_of("host.metrics") < priority_of("auth")


def test_durations_and_timestamps():
    assert parse_duration("15m") == 900 and parse_duration(2) == 2 and parse_duration("500ms") == 0.5
    for bad in ("", "5 minutes", "-1s", True):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_rfc3339("2024-09-30T00:00:00Z").tzinfo is not None


def test_table_aligns_vietnamese_nfc_and_nfd():
    nfc = "Sở Thông tin và Truyền thông"
    nfd = unicodedata.normalize("NFD", nfc)
    assert cell_width(nfd) == cell_width(nfc) == len(nfc)
    out = render([("UNIT", "N"), (nfc, 1), (nfd, 22)])
    lines = out.splitlines()
    assert lines[1].index("1") == lines[2].index("22")
    assert nfc in out  # diacritics intact, normalised to NFC


def line(**over) -> bytes:
    ev = new_event("auth")
    ev.update(over)
    return orjson.dumps(ev)


def test_parse_line_accepts_good_and_names_each_problem():
    assert parse_line(line(), LIMITS)["event"]["dataset"] == "auth"
    cases = {
        b"x" * 5000: "bytes, limit",
        b"nope": "not JSON",
        b"1": "JSON object",
        line(event="x"): "missing object field 'event'",
        line(**{"@timestamp": 5}): "@timestamp must be",
        line(**{"@timestamp": "2024-13-01T00:00:00Z"}): "not RFC 3339",
        line(source={"ip": "1.2.3"}): "source.ip is not an IP",
        line(destination={"ip": 7}): "destination.ip must be a string",
        line(source={"port": "22"}): "source.port must be an integer",
        line(source="1.2.3.4"): "source must be an object",
        line(a={"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}): "nesting deeper than 6",
    }
    for raw, reason in cases.items():
        with pytest.raises(Invalid, match=reason):
            parse_line(raw, LIMITS)
    ev = new_event("bogus")
    with pytest.raises(Invalid, match="not a known dataset"):
        parse_line(orjson.dumps(ev), LIMITS)
    ev = new_event("auth")
    ev["event"]["id"] = "a b"
    with pytest.raises(Invalid, match="event.id"):
        parse_line(orjson.dumps(ev), LIMITS)
    assert parse_line(line(source={"ip": "2001:db8::1", "port": 22}), LIMITS)


def test_nested_brackets_inside_strings_do_not_count_as_depth():
    assert parse_line(line(message="{{{{{{{{[[[[[[[[" * 10), LIMITS)


def test_example_configs_load():
    from agent.config import AgentConfig
    from collector.config import CollectorConfig

    load_file(ROOT / "configs/collector.yaml", CollectorConfig)
    load_file(ROOT / "configs/agent.yaml", AgentConfig)


def test_link_health_logs_a_new_error_or_a_fall_once(caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    from canhgac.health import LinkHealth

    log = logging.getLogger("test.link")
    h = LinkHealth()
    with caplog.at_level(logging.WARNING, logger="test.link"):
        h.failed("refused", log, "out")
        h.failed("refused", log, "out")  # same error, still down: said already
        h.failed("timeout", log, "out")  # a different error: said
        h.succeeded(now=5.0)
        h.failed("timeout", log, "out")  # down again after being up: said again
    assert [r.getMessage() for r in caplog.records] == ["out: refused", "out: timeout", "out: timeout"]
    assert not h.up and h.last_error == "timeout" and h.last_success == 5.0


def test_state_databases_are_private_wherever_they_are(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 12 finding: a store path outside the state dir was created 0644."""
    import stat

    from shipper.outputs.store.service import open_store

    db = open_store(tmp_path / "elsewhere" / "events.db")
    db.execute("INSERT INTO events(id, ts, doc) VALUES('a', 1, '{}')")
    for name in ("events.db", "events.db-wal"):
        assert stat.S_IMODE((tmp_path / "elsewhere" / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE((tmp_path / "elsewhere").stat().st_mode) == 0o700
    db.close()


async def test_wait_for_event_never_swallows_a_cancellation() -> None:
    """A cancel arriving as the wait ends must still cancel (asyncio.wait_for on 3.11 could
    drop it, and a loop built on it would then never stop: found under `make test-stress`)."""
    import asyncio

    from canhgac.tasks import wait_for_event

    for _ in range(200):
        event = asyncio.Event()
        task = asyncio.create_task(wait_for_event(event, 10))
        await asyncio.sleep(0)
        event.set()  # the wait completes ...
        task.cancel()  # ... and a cancel arrives in the same loop iteration
        try:
            await task
        except asyncio.CancelledError:
            continue
        raise AssertionError("the cancellation was swallowed")
    assert await wait_for_event(asyncio.Event(), 0.01) is False
