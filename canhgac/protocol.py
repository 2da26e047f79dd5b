"""The agent ↔ collector protocol version: part of the contract both sides import.

Agents send it in ``X-Canhgac-Protocol`` on every request. A collector serves every
protocol version up to its own (an agent one release behind keeps working while the
collector is upgraded first, the supported order); a request announcing a newer one
is refused with a message saying to upgrade the collector. Agents before 0.2.0 send
no header: that is protocol 1. Bumped only for an incompatible change of the wire
format (docs/protocol.md, "Versions").
"""

from __future__ import annotations

PROTOCOL_VERSION = 1
HEADER = "X-Canhgac-Protocol"


def parse(value: str | None) -> int | None:
    """The protocol a request announces (1 when absent); None when it is not a number."""
    if value is None:
        return 1
    text = value.strip()
    return int(text) if text.isdigit() and len(text) < 6 else None


def minor_of(version: str) -> tuple[int, int] | None:
    """(major, minor) of "0.2.0"; None for anything else."""
    parts = version.split(".")
    if len(parts) < 2 or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    return int(parts[0]), int(parts[1])
