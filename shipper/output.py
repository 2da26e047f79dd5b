"""The contract between the delivery loop and an output (http, elasticsearch, national, store).

An output receives a batch of NDJSON lines and says, per line, what happened.
It never retries by itself: retry, backoff and dead-lettering live in
``shipper.delivery`` so every output gets the same, tested behaviour.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from shipper.queue import DurableQueue


@dataclass(slots=True)
class Batch:
    batch_id: str  # stable across retries of the same lease
    lines: list[bytes]


@dataclass(slots=True)
class SendResult:
    """Outcome of one send. Indexes refer to ``Batch.lines``.

    Every line must be in exactly one of: delivered (implicit: not listed),
    ``retry`` (transient, e.g. per-item 429/5xx), ``dead`` (permanent, with reason:
    the delivery loop keeps it in the spool's dead-letter table) or
    ``dead_lettered`` (permanent, and the output already kept it in a dead-letter
    destination of its own, e.g. Elasticsearch's dead-letter data stream: the loop
    counts it dead-lettered, not delivered, and stores nothing).
    """

    retry: list[int] = field(default_factory=list)
    dead: list[tuple[int, str]] = field(default_factory=list)
    dead_lettered: list[int] = field(default_factory=list)
    retry_after: float | None = None  # server-advised wait before retrying

    @classmethod
    def ok(cls) -> SendResult:
        return cls()


class TransientError(Exception):
    """The whole batch failed in a way worth retrying (connection, 5xx, 429, timeout)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """The whole batch can never be delivered as is (e.g. 400 for every line)."""


class Output(Protocol):
    name: str

    async def start(self) -> None:
        """Connect, install templates, etc. May raise TransientError (retried)."""

    async def send(self, batch: Batch) -> SendResult:
        """Deliver ``batch``; raise TransientError/PermanentError for whole-batch outcomes."""

    async def close(self) -> None: ...


@runtime_checkable
class Probed(Protocol):
    """An output that can tell cheaply whether its destination is back (optional).

    While the delivery loop waits out a backoff after a whole-batch TransientError,
    it calls ``probe`` every few seconds (one call at a time per loop, bounded by a
    timeout) and retries at once when it returns True. An output declares it by
    subclassing this protocol, so a renamed method breaks the type check.
    """

    async def probe(self) -> bool:
        """True when a send is worth retrying now; False when down or unknown. Never raises."""
        ...


class BuildContext(Protocol):
    """What an output factory (``build(raw, ctx)``) may use of the process that runs it.

    The collector's context satisfies it; a factory never sees more of the collector.
    """

    source: str  # the config file, for error messages
    state_dir: Path
    registry: CollectorRegistry
    spool: DurableQueue | None  # set before any lifespan starts

    def add_lifespan(
        self, lifespan: Callable[[], contextlib.AbstractAsyncContextManager[None]]
    ) -> None: ...
