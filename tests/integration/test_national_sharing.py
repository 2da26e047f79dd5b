"""What leaves the province in alert reports, through the real detection and national
output, read back at the mock center (issue 10, "What is shared with the national center").

Field classes: victim identities (user names, the host's own and internal addresses) leave
pseudonymised, in every field *and* in the free text built from them (``message``,
``canhgac.alert.key``); attacker observables (external addresses, domains, file hashes)
leave in clear and as STIX 2.1 cyber-observable objects.
"""

from __future__ import annotations

import orjson
import pytest
from aiohttp import web

from canhgac.config import load_section
from canhgac.schema import AUTH, IAM, new_event
from collector.config import CollectorConfig
from national_center.testing import TEST_KEY_ID, start_center
from shipper.outputs.national.observables import sco
from tests.fixtures.collector import wait_for

pytestmark = pytest.mark.integration
SECRET = b"national-sharing-secret-01234567"
ATTACKER = "45.77.10.20"
INSIDER = "10.20.30.99"


@pytest.fixture
async def center(tmp_path, test_ca):
    c = await start_center(tmp_path / "center", test_ca, keys={TEST_KEY_ID: SECRET})
    yield c
    await c.close()


def _owned(ev: dict) -> dict:
    ev["canhgac"] = {"system": {"id": "dvc", "level": 3}}
    ev["host"] = {"hostname": "web-01", "ip": ["10.0.5.21", "203.0.113.80"]}
    return ev


def ssh_failures(source: str) -> list[dict]:
    return [_owned(new_event(AUTH, action="ssh_login", outcome="failure",
                             user={"name": "backup2"}, source={"ip": source, "port": 50122},
                             process={"name": "sshd"}))
            for _ in range(5)]


def new_account() -> dict:
    ev = _owned(new_event(IAM, action="useradd", user={"name": "backup2", "id": "1002"}))
    ev["event"]["category"] = ["iam"]
    ev["event"]["type"] = ["user", "creation"]
    ev["message"] = "new user: name=backup2, UID=1002, GID=1002, home=/home/backup2"
    return ev


async def test_alerts_share_attacker_observables_and_hide_victims(center, test_ca, tmp_path):
    from collector.app import build_context

    cfg = load_section({
        "state_dir": str(tmp_path / "c"),
        "national": {"link": {"url": center.url, "key_id": TEST_KEY_ID,
                              "secret": "hex:" + SECRET.hex(), "ca": str(test_ca.cert),
                              "timeout": "5s", "connect_timeout": "2s"}},
        "outputs": {"national": {"policy": {"default": {"min_severity": "low"}},
                                 "redact": {"internal_networks": ["203.0.113.80/32"]}}},
    }, CollectorConfig, "collector.yaml")
    ctx = build_context(cfg, "collector.yaml", ("collector.national", "collector.detect"))
    runner = web.AppRunner(ctx.app)
    await runner.setup()
    try:
        await ctx.inject(ssh_failures(ATTACKER) + ssh_failures(INSIDER) + [new_account()])
        assert await wait_for(lambda: len(center.storage.event_ids(kind="alert")) == 3, 30)
    finally:
        await runner.cleanup()

    alerts = {r["doc"]["rule"]["name"] + ("" if ATTACKER not in orjson.dumps(r["doc"]).decode()
                                          else " (external)"): r["doc"]
              for r in center.storage.reports() if r["doc"]["event"]["kind"] == "alert"}
    assert set(alerts) == {"SSH brute force (external)", "SSH brute force",
                           "New local user account"}
    everything = orjson.dumps(list(alerts.values())).decode()
    # victims: the user name, the internal attacker-side address, the host's own addresses
    for secret in ("backup2", INSIDER, "10.0.5.21", "203.0.113.80", "/home/backup2"):
        assert secret not in everything, secret

    external = alerts["SSH brute force (external)"]
    assert external["source"]["ip"] == ATTACKER
    assert f"source.ip={ATTACKER}" in external["canhgac"]["alert"]["key"]
    assert external["canhgac"]["observables"] == [sco("ipv4-addr", {"value": ATTACKER})]

    internal = alerts["SSH brute force"]
    assert internal["source"]["ip"].startswith("h:")
    assert "observables" not in internal["canhgac"]
    assert internal["source"]["ip"] in internal["message"]  # rebuilt from the fields

    account = alerts["New local user account"]
    pseudonym = account["user"]["name"]
    assert pseudonym.startswith("h:")
    assert f"user.name={pseudonym}" in account["canhgac"]["alert"]["key"]
    assert f"user.name={pseudonym}" in account["message"]
    assert all(ip.startswith("h:") for ip in account["host"]["ip"])
