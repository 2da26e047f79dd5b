"""The agent's own health: heartbeat events and the local status file.

The same snapshot goes two ways: upstream as an ``agent.health`` event (so the
collector sees probes failing, queue backlog and drops — "every drop is counted
and reported upstream") and to ``state_dir/status.json`` for
``canhgac agent status`` on the host itself.

The snapshot lives under ``canhgac_agent.*``: ECS has no fields for an agent's
internals, and ``canhgac.*`` belongs to the collector (it overwrites it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from canhgac.schema import AGENT_HEALTH, new_event

STATUS_FILE = "status.json"


def heartbeat_event(snapshot: dict[str, Any], state: str = "running") -> dict[str, Any]:
    body = {k: v for k, v in snapshot.items() if k not in ("pid", "updated_epoch", "state_dir")}
    body["state"] = state
    return new_event(
        AGENT_HEALTH, kind="state", category=["host"], type=["info"], action="agent-heartbeat",
        canhgac_agent=body,
    )


def write_status(state_dir: Path, snapshot: dict[str, Any]) -> None:
    """Atomically replace status.json (readers never see half a file)."""
    path = state_dir / STATUS_FILE
    tmp = path.with_name(path.name + ".tmp")
    data = orjson.dumps(snapshot, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
                        default=str)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def read_status(state_dir: Path) -> dict[str, Any] | None:
    try:
        return orjson.loads((state_dir / STATUS_FILE).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError):
        return None
