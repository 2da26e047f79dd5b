"""Notification channels: each turns a rendered message into one delivery attempt.

A channel's ``send(payload)`` returns a short description of what the receiver
said (``HTTP 200``) or raises ``SendError``: ``permanent`` when retrying cannot
help (the receiver refused the message itself), otherwise it is retried with
backoff, honouring ``retry_after`` when the receiver gave one.
"""

from __future__ import annotations

from typing import Any, Protocol


class SendError(Exception):
    def __init__(self, message: str, *, permanent: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class Channel(Protocol):
    name: str
    kind: str  # webhook | email | alertmanager | chat

    async def send(self, payload: dict[str, Any]) -> str: ...

    async def close(self) -> None: ...


def http_error(status: int, body: str, retry_after: str | None = None) -> SendError:
    """An HTTP answer as a SendError: 408, 425, 429 and 5xx are worth retrying, other 4xx not."""
    transient = status in (408, 425, 429) or status >= 500
    advised: float | None = None
    if retry_after:
        try:
            advised = float(retry_after)
        except ValueError:
            advised = None
    return SendError(f"HTTP {status}: {body[:200]}", permanent=not transient, retry_after=advised)
