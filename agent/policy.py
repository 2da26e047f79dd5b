"""The central policy as the agent applies it (collector: ``GET /v1/agent/policy``).

The agent asks with every heartbeat, with ``If-None-Match``; a new version is merged
under agent.yaml's own ``probes:`` (local overrides win, key by key), resolved exactly
as agent.yaml is (each probe checks its own keys), and only then applied: probes whose
section changed are restarted, the others keep running. A policy a probe cannot take is
refused as a whole — the previous one stays in force — and the refusal is reported in
every heartbeat until a good version comes. The last applied policy is kept in
``state_dir/policy.json``, so a restart applies it before the collector is reachable.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from agent.enroll import Credentials, tls_context, write_private
from canhgac import __version__
from canhgac.protocol import HEADER, PROTOCOL_VERSION
from shipper.outputs.http.client import HttpClient, HttpClientError

log = logging.getLogger(__name__)

POLICY_FILE = "policy.json"


@dataclass
class PolicyState:
    version: int | None = None  # applied; None: none yet (agent.yaml alone)
    etag: str = ""
    probes: dict[str, Any] = field(default_factory=dict)  # the applied policy's sections
    error: str = ""  # why the latest version offered was refused ("" when none was)
    refused_version: int | None = None

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version}
        if self.error:
            out["error"] = self.error
            out["refused_version"] = self.refused_version
        return out


def merged(policy: dict[str, Any], local: dict[str, Any]) -> dict[str, Any]:
    """Policy sections with agent.yaml's probes on top (a local key wins over the policy's)."""
    out: dict[str, Any] = {}
    for name in sorted({*policy, *local}):
        section: dict[str, Any] = {}
        wrong: Any = None
        for source in (policy.get(name), local.get(name)):
            if isinstance(source, bool):
                section["enabled"] = source
            elif isinstance(source, dict):
                section.update(copy.deepcopy(source))
            elif source is not None:
                wrong = source  # not a section: resolve_probes names it
        out[name] = wrong if wrong is not None else section
    return out


def load_state(state_dir: Path) -> PolicyState:
    path = state_dir / POLICY_FILE
    try:
        raw = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return PolicyState()
    except (OSError, orjson.JSONDecodeError) as exc:
        log.warning("%s unreadable (%s): starting from agent.yaml alone", path, exc)
        return PolicyState()
    probes = raw.get("probes") if isinstance(raw, dict) else None
    version = raw.get("version") if isinstance(raw, dict) else None
    if not isinstance(probes, dict) or not isinstance(version, int):
        return PolicyState()
    return PolicyState(version=version, etag=str(raw.get("etag") or ""), probes=probes)


def save_state(state_dir: Path, state: PolicyState) -> None:
    write_private(state_dir / POLICY_FILE, orjson.dumps(
        {"version": state.version, "etag": state.etag, "probes": state.probes},
        option=orjson.OPT_INDENT_2))


async def fetch(creds: Credentials, etag: str, timeout: float = 10.0
                ) -> tuple[int, dict[str, Any] | None, str]:
    """(status, body, etag): 200 with a new policy, 304 unchanged; raises HttpClientError."""
    client = HttpClient(creds.collector, tls_context(creds.ca or None), timeout,
                        user_agent=f"canhgac-agent/{__version__}")
    headers = {"Authorization": f"Bearer {creds.token}", HEADER: str(PROTOCOL_VERSION)}
    if etag:
        headers["If-None-Match"] = etag
    try:
        resp = await client.get("/v1/agent/policy", headers)
    finally:
        await client.close()
    if resp.status != 200:
        return resp.status, None, etag
    try:
        body = orjson.loads(resp.body)
    except orjson.JSONDecodeError as exc:
        raise HttpClientError(f"policy answer is not JSON: {exc}") from None
    return 200, body if isinstance(body, dict) else None, resp.headers.get("etag", "")
