"""A synthetic event source for load tests, soak tests and crash-recovery proofs.

Disabled unless configured. With ``ledger`` set, it appends ``I <id>`` before
handing a batch to the durable queue and ``C <id>`` after the commit returns,
fsyncing each time, so a test can check exactly which events the agent had
accepted when it was killed: every C must arrive at the collector, nothing
outside the I set may.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from agent.probes.base import Emit, Probe, ProbeConfig, ProbeContext
from canhgac.config import field_meta
from canhgac.schema import RAW, new_event


@dataclass
class SyntheticConfig(ProbeConfig):
    rate: float = field(default=100.0, metadata=field_meta(min=0.1, max=1_000_000))
    batch: int = field(default=50, metadata=field_meta(min=1, max=10_000))
    count: int = field(default=0, metadata=field_meta(min=0))  # 0: no end
    ledger: Path | None = None


class SyntheticProbe(Probe[SyntheticConfig]):
    name = "synthetic"
    datasets = (RAW,)
    default_enabled = False

    def __init__(self, config: SyntheticConfig, context: ProbeContext) -> None:
        super().__init__(config, context)
        self.emitted = 0

    def _committed_before(self) -> int:
        ledger = self.config.ledger
        if ledger is None or not ledger.exists():
            return 0
        with open(ledger, "rb") as fh:
            return sum(1 for line in fh if line.startswith(b"C "))

    def _open_ledger(self) -> BinaryIO | None:
        return open(self.config.ledger, "ab") if self.config.ledger else None

    @staticmethod
    def _append(fh: BinaryIO, tag: str, ids: list[str]) -> None:
        fh.write("".join(f"{tag} {i}\n" for i in ids).encode())
        fh.flush()
        os.fsync(fh.fileno())

    async def run(self, emit: Emit) -> None:
        cfg = self.config
        self.emitted = self._committed_before()
        fh = self._open_ledger()
        try:
            interval = cfg.batch / cfg.rate
            seq = self.emitted
            while cfg.count == 0 or self.emitted < cfg.count:
                n = cfg.batch if cfg.count == 0 else min(cfg.batch, cfg.count - self.emitted)
                events = [
                    new_event(RAW, action="synthetic",
                              message=f"synthetic event {seq + i}", labels={"seq": str(seq + i)})
                    for i in range(n)
                ]
                seq += n
                ids = [e["event"]["id"] for e in events]
                if fh:
                    self._append(fh, "I", ids)
                await emit(events)
                if fh:
                    self._append(fh, "C", ids)
                self.emitted += n
                await asyncio.sleep(interval)
            await asyncio.Event().wait()  # done: stay "running" without work
        finally:
            if fh:
                fh.close()

    def status(self) -> dict[str, int]:
        return {"emitted": self.emitted}
