"""Is a link up, since when, and what went wrong last: kept the same way by every output.

An error is logged when it is new (a different message) or when the link was up
until now, so a flapping link is visible in the log and a link that stays down
with the same error does not flood it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass


@dataclass(slots=True)
class LinkHealth:
    up: bool = False
    last_success: float = 0.0  # Unix time
    last_error: str = ""
    last_error_time: float = 0.0  # Unix time

    def succeeded(self, now: float | None = None) -> None:
        self.up = True
        self.last_success = time.time() if now is None else now

    def failed(self, message: str, logger: logging.Logger, what: str) -> None:
        """Record a failure; warn on ``logger`` as ``what: message`` unless already said."""
        if message != self.last_error or self.up:
            logger.warning("%s: %s", what, message)
        self.up = False
        self.last_error = message
        self.last_error_time = time.time()
