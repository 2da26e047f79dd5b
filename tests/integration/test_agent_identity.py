"""The agent is what the collector says it is (issue 9 findings):

- `agent enroll --hostname X` was shown by the collector as X while the running agent
  reported the OS name;
- the agent never learnt its system's level (`ProbeContext.level` was never set), so the
  level-3 default file-integrity watch list never applied outside tests.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from agent.config import AgentConfig
from agent.enroll import enroll, load_credentials
from agent.identity import refresh
from agent.runtime import AgentRuntime, RuntimeOptions
from canhgac.config import load_section
from tests.fixtures.collector import start_collector


def _inventory(path: Path, level: int) -> None:
    path.write_text(yaml.safe_dump({"systems": [
        {"id": "cong-ttdt", "name": "Cổng thông tin điện tử", "unit": "Sở TT&TT",
         "level": level}]}, allow_unicode=True), encoding="utf-8")


async def test_enrolled_hostname_and_level_reach_the_agent(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yaml"
    _inventory(inv, 3)
    running, runner = await start_collector(tmp_path, {"inventory": str(inv)})
    try:
        state = tmp_path / "agent"
        creds = await enroll(running.url, running.enroll_token("cong-ttdt"), running.ca, state,
                             hostname="portal-web-01")
        assert (creds.hostname, creds.level) == ("portal-web-01", 3)
        assert load_credentials(state) is not None
        assert load_credentials(state).level == 3  # type: ignore[union-attr]

        # The runtime uses the enrolled name for every event it stamps, not the OS name.
        cfg = load_section({"state_dir": str(state)}, AgentConfig, "agent.yaml")
        rt = AgentRuntime(cfg, "agent.yaml", RuntimeOptions(probes=[]))
        rt._prepare()
        assert rt.hostname == "portal-web-01"
        event: dict = {"event": {"dataset": "auth"}}
        rt._stamp(event)
        assert event["host"]["hostname"] == "portal-web-01"

        # The inventory moves the system to level 4: the next refresh learns it and keeps it.
        _inventory(inv, 4)
        assert running.ctx.inventory.reload()  # what the file watcher or SIGHUP does
        creds = await refresh(creds, state)
        assert creds.level == 4 and load_credentials(state).level == 4  # type: ignore[union-attr]

        # A collector that cannot be reached changes nothing.
        await runner.cleanup()
        runner = None
        again = await refresh(creds, state)
        assert (again.level, again.hostname) == (4, "portal-web-01")
    finally:
        if runner is not None:
            await runner.cleanup()
