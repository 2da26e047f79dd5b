"""One aiohttp session per HTTP channel, made in the running loop on first use."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from canhgac.tls import client_context
from collector.notify.channels import SendError


class HttpClient:
    def __init__(self, timeout: float, ca: Path | None) -> None:
        self.timeout = timeout
        self.ca = ca
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=client_context(self.ca), limit=64)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def transport_error(exc: BaseException) -> SendError:
    """A connection or timeout failure: always worth retrying."""
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return SendError("timed out")
    return SendError(f"{type(exc).__name__}: {exc}"[:300])
