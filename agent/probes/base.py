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
from typing import Any, ClassVar, Generic, TypeVar, get_args, get_origin

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


ConfigT = TypeVar("ConfigT", bound=ProbeConfig)


class Probe(ABC, Generic[ConfigT]):
    """Subclass as ``class XProbe(Probe[XConfig])``: ``self.config`` is then an
    ``XConfig`` for the type checker, and ``config_class`` is set to ``XConfig``
    (agent.config validates the probe's section of agent.yaml with it)."""

    #: registry name, the key under ``probes:`` in agent.yaml
    name: ClassVar[str]
    #: ECS datasets this probe produces (the coverage model reads these)
    datasets: ClassVar[tuple[str, ...]]
    #: config dataclass for this probe: the type argument of ``Probe[...]``
    config_class: ClassVar[type[ProbeConfig]] = ProbeConfig
    #: enabled when agent.yaml does not mention the probe
    default_enabled: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            if get_origin(base) is Probe:
                (arg,) = get_args(base)
                if isinstance(arg, type) and issubclass(arg, ProbeConfig):
                    if "config_class" in cls.__dict__ and cls.__dict__["config_class"] is not arg:
                        raise TypeError(f"{cls.__name__}: config_class contradicts Probe[{arg.__name__}]")
                    cls.config_class = arg

    def __init__(self, config: ConfigT, context: ProbeContext) -> None:
        self.config: ConfigT = config
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
