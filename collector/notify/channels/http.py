"""One aiohttp session per HTTP channel, made in the running loop on first use."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from canhgac.tls import client_context
from collector.notify.channels import SendError, http_error


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


    async def post(self, url: str, **kwargs: Any) -> str:
        """POST; "HTTP <status>" when accepted, else the SendError that says if a retry helps."""
        try:
            async with self.session().post(url, **kwargs) as r:
                text = await r.text(errors="replace")
                if r.status >= 300:
                    raise http_error(r.status, text, r.headers.get("Retry-After"))
                return f"HTTP {r.status}"
        except SendError:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise transport_error(exc) from None


def transport_error(exc: BaseException) -> SendError:
    """A connection or timeout failure: always worth retrying."""
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return SendError("timed out")
    return SendError(f"{type(exc).__name__}: {exc}"[:300])
