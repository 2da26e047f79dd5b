"""A signed HTTPS client for the national center API, shared by output, indicator pull and check.

Every request is signed afresh (new timestamp and nonce), so a retry is never
mistaken for a replay. The secret is held here only and never logged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDictProxy

from canhgac import signing
from canhgac.national.link import LinkConfig
from canhgac.tls import client_context


@dataclass(slots=True)
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    rtt: float  # seconds from send to full body received

    def json(self) -> object:
        import orjson

        return orjson.loads(self.body) if self.body else None


class NationalClient:
    def __init__(self, link: LinkConfig, secret: bytes, user_agent: str = "canhgac") -> None:
        self.link = link
        self._secret = secret
        self._ua = user_agent
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"NationalClient({self.link.base!r}, key_id={self.link.key_id!r})"

    async def open(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=client_context(self.link.ca), limit=8)
            timeout = aiohttp.ClientTimeout(
                total=self.link.timeout, sock_connect=self.link.connect_timeout
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=timeout, headers={"User-Agent": self._ua},
                auto_decompress=True,
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        content: bytes = b"",
        *,
        wire: bytes | None = None,
        batch_id: str = "",
        headers: dict[str, str] | None = None,
        signed: bool = True,
    ) -> Reply:
        """Send; ``content`` is what is signed, ``wire`` (gzip of it) what is sent, if given.

        Raises aiohttp.ClientError / TimeoutError / OSError on transport failure.
        """
        await self.open()
        assert self._session is not None
        hdrs: dict[str, str] = dict(headers or {})
        if signed:
            hdrs.update(signing.sign(self.link.key_id, self._secret, method, path, content,
                                     batch_id=batch_id))
        data: bytes | None = content if method != "GET" else None
        if wire is not None:
            data = wire
            hdrs["Content-Encoding"] = "gzip"
        if data is not None:
            hdrs.setdefault("Content-Type", "application/x-ndjson")
        t0 = time.perf_counter()
        async with self._session.request(method, self.link.base + path, data=data,
                                         headers=hdrs) as resp:
            body = await resp.read()
            return Reply(resp.status, resp.headers, body, time.perf_counter() - t0)
