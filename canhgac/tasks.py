"""Background tasks: cancel-then-await, written once.

A stopped component must not leave its loop running, and stopping must not
raise because a loop had already failed (each loop logs its own errors).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine, Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel every task, then wait until each has finished, whatever its outcome."""
    pending = [t for t in tasks if t is not None]
    for t in pending:
        t.cancel()
    for t in pending:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t


@contextlib.asynccontextmanager
async def running(coro: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """Run ``coro`` as a task for the duration of the ``async with`` block."""
    task = asyncio.create_task(coro, name=name)
    try:
        yield
    finally:
        await cancel_and_wait([task])


async def wait_for_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set (True) or ``timeout`` passes (False).

    ``asyncio.wait_for`` on Python 3.11 can swallow a cancellation that arrives just as the
    wait ends (gh-86296): a loop built on it may then never stop. ``asyncio.timeout`` tells
    its own cancellation from the caller's, so a cancel always propagates.
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
