"""Central policy end to end: a real collector serves it, a real agent runtime applies it
(issue 14: "Agents fetch their policy with the heartbeat (ETag), apply it without
restarting, report the applied version and any part they could not apply; a bad policy is
refused by the agent and the previous one stays in force")."""

from __future__ import annotations

from pathlib import Path

import yaml

from agent.config import AgentConfig
from agent.enroll import enroll
from agent.runtime import AgentRuntime, RuntimeOptions
from canhgac.config import load_section
from collector.policy.store import PolicyStore
from tests.fixtures.collector import start_collector, wait_for

QUIET = {name: False for name in ("process", "socket", "session", "auth_log", "file_integrity",
                                  "network_sensor", "host_inventory")}


def _agent(state: Path, **probes: object) -> AgentRuntime:
    cfg = load_section({"state_dir": str(state), "heartbeat_interval": "1s",
                        "probes": {**QUIET, **probes}}, AgentConfig, "agent.yaml")
    return AgentRuntime(cfg, "agent.yaml", RuntimeOptions(signals=False))


async def test_policy_is_applied_refused_and_kept(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump({"systems": [
        {"id": "cong-ttdt", "name": "Cổng", "unit": "Sở TT&TT", "level": 3}]},
        allow_unicode=True), encoding="utf-8")
    running, runner = await start_collector(
        tmp_path, {"inventory": str(inv),
                   "coverage": {"required_probes": {3: ["host_metrics"]}}},
        components=("collector.policy",))
    store = PolicyStore(running.state_dir / "policy.db")
    agent: AgentRuntime | None = None
    try:
        state = tmp_path / "agent"
        await enroll(running.url, running.enroll_token("cong-ttdt"), running.ca, state,
                     hostname="web-01")
        agent = _agent(state)
        await agent.start()
        # version 0: the level-3 defaults only (host_metrics, as configured here); the agent
        # asks with every heartbeat (1 s here)
        assert await wait_for(lambda: agent.policy.version == 0, 20)  # type: ignore[union-attr]
        assert agent.probes["synthetic"].spec.status == "disabled"
        host_metrics_task = agent.probes["host_metrics"].task

        store.add({"defaults": {"probes": {"synthetic": {"rate": 50, "batch": 5},
                                           "session": True}}})
        assert await wait_for(lambda: agent.policy.version == 1, 20)  # type: ignore[union-attr]
        assert agent.probes["synthetic"].spec.status == "enabled"
        assert agent.probes["host_metrics"].task is host_metrics_task  # not restarted
        assert agent.probes["session"].spec.status == "disabled"  # agent.yaml wins
        assert not await agent.check_policy()  # 304: nothing to do
        assert await wait_for(lambda: agent.probes["synthetic"].events > 0, 20)

        # A section the probe cannot take: refused whole, version 1 stays, and it is said.
        store.add({"defaults": {"probes": {"synthetic": {"rate": "fast"}}}})
        assert await wait_for(lambda: bool(agent.policy.error), 20)  # type: ignore[union-attr]
        assert agent.policy.version == 1 and agent.policy.refused_version == 2
        assert "probes.synthetic.rate" in agent.policy.error
        assert agent.probes["synthetic"].state in ("running", "starting")
        snap = await agent.heartbeat()
        assert snap["policy"] == {"version": 1, "error": agent.policy.error, "refused_version": 2}

        def reported() -> object:
            rec = next(iter(running.ctx.auth.agents()), None)
            policy = (rec.heartbeat or {}).get("policy") if rec else None
            return policy.get("refused_version") if isinstance(policy, dict) else None
        assert await wait_for(lambda: reported() == 2, 20)
        await agent.stop()

        # A restart applies the stored policy before the collector is asked.
        again = _agent(state)
        again._prepare()
        assert again.policy.version == 1 and again.probes["synthetic"].spec.status == "enabled"
        agent = None
    finally:
        if agent is not None:
            await agent.stop()
        store.close()
        await runner.cleanup()
