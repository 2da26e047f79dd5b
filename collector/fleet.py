"""When an agent counts as online: one definition for /metrics, coverage and the CLI.

An agent is online while its last request (events or heartbeat) is at most
``offline_after`` old; the default is three heartbeat intervals, so one lost
heartbeat never flips it. Revoked agents are neither online nor offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from canhgac import __version__
from canhgac.protocol import minor_of
from collector.auth import AgentRecord
from collector.config import CollectorConfig

AgentState = Literal["online", "offline", "revoked"]
MISSED_HEARTBEATS = 3


@dataclass(frozen=True)
class Presence:
    offline_after: float

    @classmethod
    def of(cls, config: CollectorConfig) -> Presence:
        """From ``offline_after`` in collector.yaml, else 3 x ``heartbeat_interval``."""
        if config.offline_after is not None:
            return cls(float(config.offline_after))
        return cls(MISSED_HEARTBEATS * float(config.heartbeat_interval))

    def online(self, agent: AgentRecord, now: float) -> bool:
        last = agent.last_seen
        return agent.revoked is None and bool(last) and now - float(last or 0) <= self.offline_after

    def state(self, agent: AgentRecord, now: float) -> AgentState:
        if agent.revoked is not None:
            return "revoked"
        return "online" if self.online(agent, now) else "offline"


def agent_version(agent: AgentRecord) -> str:
    """The version an agent reported in its last heartbeat ("" before the first)."""
    hb = agent.heartbeat if isinstance(agent.heartbeat, dict) else {}
    version = hb.get("version")
    return version if isinstance(version, str) else ""


def behind(version: str, ours: str = __version__) -> bool:
    """An agent on an older release than the collector (supported: one minor behind)."""
    theirs, mine = minor_of(version), minor_of(ours)
    return theirs is not None and mine is not None and theirs < mine

