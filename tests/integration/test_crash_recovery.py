"""kill -9 anywhere loses nothing and duplicates nothing (real processes, real TLS).

The agent's synthetic probe records every event id before (I) and after (C) its
durable commit. After the crash and restart, the collector's store must hold
every committed id, and nothing that was never generated.
"""

from __future__ import annotations

import time

import pytest

from tests.fixtures.common import free_port
from tests.fixtures.procs import AgentProc, CollectorProc, diagnose, read_ledger, wait_until

pytestmark = pytest.mark.integration

COUNT = 6000
SYNTH = "json_extract(doc, '$.event.action') = 'synthetic'"


def synthetic(ledger, count: int = COUNT) -> dict:
    return {"synthetic": {"rate": 1500, "batch": 50, "count": count, "ledger": str(ledger)}}


def test_collector_kill9_mid_stream_loses_nothing(tmp_path):
    collector = CollectorProc(tmp_path, free_port()).start()
    agent = AgentProc(tmp_path)
    try:
        agent.enroll(collector)
        ledger = tmp_path / "ledger.txt"
        agent.start(synthetic(ledger))
        assert wait_until(lambda: len(collector.stored(SYNTH)) > 500, 30), diagnose(tmp_path)
        collector.kill9()
        time.sleep(1.5)  # the agent keeps generating into its queue meanwhile
        collector.start()
        assert wait_until(lambda: len(read_ledger(ledger)[1]) >= COUNT, 60), diagnose(tmp_path)
        _, committed = read_ledger(ledger)
        assert wait_until(lambda: set(collector.stored(SYNTH)) >= committed, 60), (
            f"{len(committed - set(collector.stored(SYNTH)))} committed events missing\n"
            + diagnose(tmp_path))
        stored = collector.stored(SYNTH)
        assert len(stored) == len(set(stored)) == len(committed)
        assert set(stored) == committed
    finally:
        agent.stop()
        collector.stop()


def test_agent_kill9_mid_stream_loses_nothing(tmp_path):
    collector = CollectorProc(tmp_path, free_port()).start()
    agent = AgentProc(tmp_path)
    try:
        agent.enroll(collector)
        ledger = tmp_path / "ledger.txt"
        agent.start(synthetic(ledger))
        assert wait_until(lambda: len(read_ledger(ledger)[1]) > 1500, 30), diagnose(tmp_path)
        agent.kill9()
        agent.start(synthetic(ledger))  # resumes from its durable queue
        assert wait_until(lambda: len(read_ledger(ledger)[1]) >= COUNT, 60), diagnose(tmp_path)
        intent, committed = read_ledger(ledger)
        assert wait_until(lambda: set(collector.stored(SYNTH)) >= committed, 60), (
            f"{len(committed - set(collector.stored(SYNTH)))} committed events missing\n"
            + diagnose(tmp_path))
        time.sleep(1)
        stored = set(collector.stored(SYNTH))
        assert committed <= stored <= intent
        # At most the one batch in flight at the kill was generated but not committed.
        assert len(intent - committed) <= 50
    finally:
        agent.stop()
        collector.stop()


def test_agent_sigterm_exits_quickly_and_keeps_its_queue(tmp_path):
    collector = CollectorProc(tmp_path, free_port()).start()
    agent = AgentProc(tmp_path)
    try:
        agent.enroll(collector)
        collector.stop()  # nobody to deliver to: the backlog stays in the agent's queue
        ledger = tmp_path / "ledger.txt"
        agent.start(synthetic(ledger, 500))
        assert wait_until(lambda: len(read_ledger(ledger)[1]) >= 500, 30), diagnose(tmp_path)
        t0 = time.time()
        assert agent.stop() == 0
        assert time.time() - t0 < 8
        collector.start()
        agent.start(synthetic(ledger, 500))
        _, committed = read_ledger(ledger)
        assert wait_until(lambda: set(collector.stored(SYNTH)) >= committed, 60), (
            f"{len(committed - set(collector.stored(SYNTH)))} committed events missing\n"
            + diagnose(tmp_path))
    finally:
        agent.stop()
        collector.stop()
