"""An agent one minor release behind works with this collector (issue 14, "Upgrades and
versions"): the previous release's wheel (tests/data, built from the release's tree)
enrolls, ships events and heartbeats; the collector shows it as older, on /metrics and in
`collector agents`. A request announcing a newer protocol is refused with a clear message.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import orjson

from canhgac import __version__
from canhgac.cli import main
from canhgac.protocol import HEADER, PROTOCOL_VERSION
from tests.fixtures.common import free_port
from tests.fixtures.procs import AgentProc, CollectorProc, diagnose, wait_until

PREVIOUS = Path(__file__).resolve().parents[1] / "data" / "canhgac-0.1.0-py3-none-any.whl"
PREVIOUS_PROBES = ("host_metrics", "host_inventory", "process", "socket", "session", "auth_log",
                   "file_integrity", "network_sensor", "synthetic")


def _metrics(collector: CollectorProc) -> str:
    token = (collector.state / "metrics.token").read_text().strip()
    req = urllib.request.Request(f"{collector.url}/metrics",
                                 headers={"Authorization": f"Bearer {token}"})
    ctx = ssl.create_default_context(cafile=str(collector.ca))
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        return r.read().decode()


def test_previous_release_agent_works_and_is_shown_older(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert __version__.startswith("0.2."), "rebuild tests/data's wheel from the previous release"
    old = tmp_path / "canhgac-0.1.0"
    with zipfile.ZipFile(PREVIOUS) as wheel:
        wheel.extractall(old)
    collector = CollectorProc(tmp_path, free_port()).start()
    agent = AgentProc(tmp_path, name="old-agent", code=old)
    try:
        agent.enroll(collector)
        agent.start({"synthetic": {"rate": 50, "batch": 10, "count": 200}}, known=PREVIOUS_PROBES)
        synthetic = "json_extract(doc, '$.event.action') = 'synthetic'"
        assert wait_until(lambda: len(collector.stored(synthetic)) == 200, 60), diagnose(tmp_path)
        assert wait_until(lambda: 'canhgac_agents_version{version="0.1.0"} 1.0'
                             in _metrics(collector), 60), diagnose(tmp_path)
        assert "canhgac_agents_behind_collector 1.0" in _metrics(collector)

        def facts() -> dict:
            assert main(["collector", "agents", "--state-dir", str(collector.state),
                         "--format", "json"]) == 0
            (one,) = orjson.loads(capsys.readouterr().out)
            return one

        # the collector writes heartbeats to its database every few seconds
        assert wait_until(lambda: facts()["version"] == "0.1.0", 60)
        assert facts()["version_behind"] is True

        # A newer protocol than ours is refused, saying what to do.
        req = urllib.request.Request(f"{collector.url}/v1/events", data=b"{}", method="POST",
                                     headers={HEADER: str(PROTOCOL_VERSION + 1)})
        ctx = ssl.create_default_context(cafile=str(collector.ca))
        try:
            urllib.request.urlopen(req, context=ctx, timeout=10)
            raise AssertionError("accepted")
        except urllib.error.HTTPError as exc:
            assert exc.code == 400 and "upgrade the collector" in exc.read().decode()
    finally:
        agent.stop()
        collector.stop()
