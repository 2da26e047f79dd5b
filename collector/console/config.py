"""The ``console:`` section of collector.yaml (docs/console.md).

Timeouts are the two a shared SOC screen needs: an idle one, so a console left
open on an unattended desk signs itself out, and an absolute one, so a stolen
cookie is worth one shift at most.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from canhgac.config import Duration, field_meta, load_section


@dataclass
class ConsoleConfig:
    enabled: bool = True
    idle_timeout: Duration = Duration(30 * 60)  # no page opened or action taken for this long
    absolute_timeout: Duration = Duration(12 * 3600)  # since sign-in, whatever happens
    # The live alert queue's refresh: a new alert shows within this plus ~0.1 s (issue 11: 2 s;
    # bench/console_alert_latency.py). Each open alert page costs one ~3 ms request per poll.
    poll_interval: Duration = Duration(1)
    max_sessions: int = field(default=1000, metadata=field_meta(min=1, max=100_000))
    utc_offset_hours: int = field(default=7, metadata=field_meta(min=-12, max=14))  # times shown


def load_config(raw: Any, source: str) -> ConsoleConfig:
    return load_section(raw or {}, ConsoleConfig, source, "console")
