"""The probe contract.

A probe is an independent asyncio task that watches one aspect of the host and
emits ECS events. The supervisor (agent.runtime) starts every enabled probe,
restarts one that raises (with backoff, counted), and never lets one probe stop
the agent. Probes know the kernel (canhgac.*) and nothing else of the agent.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

# Hands a list of events to the agent's durable queue; returns once they are
# committed (so a probe that persists a position can do so after emit returns).
Emit = Callable[[list[dict[str, Any]]], Awaitable[None]]


@dataclass
class ProbeConfig:
    """Base config every probe accepts; probes subclass it with their own keys."""

    enabled: bool = True


@dataclass(frozen=True)
class ProbeContext:
    agent_id: str
    hostname: str
    state_dir: Path  # a directory private to this probe (positions, baselines)
    level: int | None = None  # the system's level when known (selects default watch lists)


class Probe(ABC):
    #: registry name, the key under ``probes:`` in agent.yaml
    name: ClassVar[str]
    #: ECS datasets this probe produces (the coverage model reads these)
    datasets: ClassVar[tuple[str, ...]]
    #: config dataclass for this probe
    config_class: ClassVar[type[ProbeConfig]] = ProbeConfig
    #: enabled when agent.yaml does not mention the probe
    default_enabled: ClassVar[bool] = True

    def __init__(self, config: ProbeConfig, context: ProbeContext) -> None:
        self.config = config
        self.context = context

    @abstractmethod
    async def run(self, emit: Emit) -> None:
        """Run until cancelled. Raise to be restarted by the supervisor."""

    def status(self) -> dict[str, Any]:
        """Extra facts for the heartbeat (e.g. kernel drops, files watched)."""
        return {}

    @classmethod
    def describe_config(cls) -> dict[str, Any]:
        return {f.name: f.default for f in dataclasses.fields(cls.config_class)}
