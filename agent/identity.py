"""Keep the agent's idea of itself in step with the collector's (``GET /v1/agent``).

The inventory can move a system to another level after the agent enrolled; the
level selects default probe settings (the file-integrity watch list grows at level
3). The agent asks at start and then every ``REFRESH`` seconds; a change is saved
with the credentials and applies to each probe at its next (re)start. A collector
that cannot be reached changes nothing: the stored identity stays in force.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from agent.enroll import Credentials, level_of, save_credentials, tls_context
from canhgac import __version__
from canhgac.protocol import HEADER, PROTOCOL_VERSION
from shipper.outputs.http.client import HttpClient, HttpClientError

log = logging.getLogger(__name__)

REFRESH = 600.0


async def fetch(creds: Credentials, timeout: float = 10.0) -> dict[str, Any] | None:
    """The collector's answer, or None when it cannot be had now (logged at debug).

    Through the agent's own small HTTP client: aiohttp's would cost ~13 MB of RSS."""
    client = HttpClient(creds.collector, tls_context(creds.ca or None), timeout,
                        user_agent=f"canhgac-agent/{__version__}")
    try:
        resp = await client.get("/v1/agent", {"Authorization": f"Bearer {creds.token}",
                                              HEADER: str(PROTOCOL_VERSION)})
        answer = orjson.loads(resp.body) if resp.status == 200 else None
        if resp.status != 200:
            log.debug("identity refresh: HTTP %d", resp.status)
    except (HttpClientError, ValueError, orjson.JSONDecodeError) as exc:
        log.debug("identity refresh failed: %s", exc)
        return None
    finally:
        await client.close()
    return answer if isinstance(answer, dict) else None


def merged(creds: Credentials, answer: dict[str, Any]) -> Credentials:
    hostname = answer.get("hostname")
    return replace(creds, level=level_of(answer.get("level")),
                   hostname=hostname if isinstance(hostname, str) and hostname else creds.hostname)


async def refresh(creds: Credentials, state_dir: Path) -> Credentials:
    """Ask once; save and return the updated credentials when something changed."""
    answer = await fetch(creds)
    if answer is None:
        return creds
    new = merged(creds, answer)
    if (new.level, new.hostname) != (creds.level, creds.hostname):
        await asyncio.to_thread(save_credentials, state_dir, new)
        log.info("collector says: system %s level %s (was %s), hostname %s; probes apply it "
                 "at their next start", new.system_id or "-", new.level, creds.level,
                 new.hostname)
    return new
