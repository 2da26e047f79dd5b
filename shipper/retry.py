"""Exponential backoff with full jitter (AWS architecture blog style), bounded."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(slots=True)
class Backoff:
    initial: float = 0.2
    maximum: float = 30.0
    multiplier: float = 2.0
    attempt: int = 0

    def next_delay(self, advised: float | None = None) -> float:
        """Delay before the next attempt; a server's Retry-After wins when larger."""
        cap = min(self.maximum, self.initial * (self.multiplier ** self.attempt))
        self.attempt += 1
        delay = random.uniform(cap / 2, cap)
        if advised is not None:
            delay = max(delay, min(advised, self.maximum * 4))
        return delay

    def reset(self) -> None:
        self.attempt = 0
