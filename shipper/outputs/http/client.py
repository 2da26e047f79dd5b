"""A minimal HTTP/1.1 client on asyncio streams: keep-alive, TLS, POST (and a bodiless GET).

Why not aiohttp's ClientSession here: importing aiohttp's client costs ~13 MB
of resident memory (its Cython parsers, websocket, cookie, multipart and
pickle machinery), a third of the agent's whole 45 MB budget on every server,
for a hop that only ever POSTs one body and reads a small JSON ack. This
client does exactly that: one persistent connection, Content-Length bodies
out, Content-Length / chunked / close-delimited bodies in, a hard cap on the
response size, and a total timeout per request. TLS verification is the
standard library's (``ssl.create_default_context`` with our CA).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
MAX_HEADER_LINES = 100


class HttpClientError(Exception):
    """Transport failure (connect, TLS, reset, timeout, malformed response)."""


class CertificateError(HttpClientError):
    """The server's certificate did not verify against the configured CA."""


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


class HttpClient:
    def __init__(self, base_url: str, ssl_context: ssl.SSLContext | None, timeout: float,
                 user_agent: str = "canhgac") -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.base_path = parts.path.rstrip("/")
        host_header = f"[{self.host}]" if ":" in self.host else self.host
        default_port = (self.tls and self.port == 443) or (not self.tls and self.port == 80)
        self.host_header = host_header if default_port else f"{host_header}:{self.port}"
        self.ssl_context = ssl_context if self.tls else None
        self.timeout = timeout
        self.user_agent = user_agent
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            except (OSError, TimeoutError, ssl.SSLError):
                pass

    async def _connect(self) -> None:
        try:
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.ssl_context,
                server_hostname=self.host if self.ssl_context else None,
                limit=256 * 1024,
            )
        except ssl.SSLCertVerificationError as exc:
            raise CertificateError(exc.verify_message or str(exc)) from None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> Response:
        """POST ``body``; one retry on a fresh connection if a kept-alive one was stale."""
        return await self.request("POST", path, body, headers)

    async def get(self, path: str, headers: dict[str, str]) -> Response:
        return await self.request("GET", path, b"", headers)

    async def request(self, method: str, path: str, body: bytes,
                      headers: dict[str, str]) -> Response:
        async with self._lock:
            for attempt in (0, 1):
                reused = self._writer is not None
                try:
                    async with asyncio.timeout(self.timeout):
                        if self._writer is None:
                            await self._connect()
                        return await self._exchange(method, path, body, headers)
                except TimeoutError:
                    await self.close()
                    raise HttpClientError(f"timeout after {self.timeout:g}s") from None
                except CertificateError:
                    await self.close()
                    raise
                except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        HttpClientError) as exc:
                    await self.close()
                    if reused and attempt == 0:
                        continue  # the server closed an idle keep-alive connection
                    raise HttpClientError(f"{type(exc).__name__}: {exc}") from None
        raise HttpClientError("unreachable")  # pragma: no cover

    async def _exchange(self, method: str, path: str, body: bytes,
                        headers: dict[str, str]) -> Response:
        assert self._reader is not None and self._writer is not None
        head = [f"{method} {self.base_path}{path} HTTP/1.1", f"Host: {self.host_header}",
                f"User-Agent: {self.user_agent}", f"Content-Length: {len(body)}",
                "Connection: keep-alive"]
        head.extend(f"{k}: {v}" for k, v in headers.items())
        self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        try:
            await self._writer.drain()
        except (ConnectionError, ssl.SSLError):
            # The server may have answered (e.g. 413) and closed before reading
            # everything: its answer, if any, is still in our receive buffer.
            if self._reader.at_eof() and not self._reader._buffer:  # type: ignore[attr-defined]
                raise
        resp = await self._read_response()
        if resp.headers.get("connection", "").lower() == "close":
            await self.close()
        return resp

    async def _read_response(self) -> Response:
        assert self._reader is not None
        reader = self._reader
        while True:
            status_line = await reader.readuntil(b"\r\n")
            parts = status_line.decode("latin-1").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
                raise HttpClientError(f"malformed status line {status_line[:80]!r}")
            status = int(parts[1])
            headers: dict[str, str] = {}
            for _ in range(MAX_HEADER_LINES):
                line = await reader.readuntil(b"\r\n")
                if line == b"\r\n":
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            else:
                raise HttpClientError("too many response headers")
            if 100 <= status < 200:
                continue  # 100 Continue and friends: the real answer follows
            break
        if status in (204, 304):
            body = b""  # never a body (RFC 9112 §6.3), whatever the headers say
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked(reader)
        elif "content-length" in headers:
            n = int(headers["content-length"])
            if n > MAX_RESPONSE_BYTES:
                raise HttpClientError(f"response too large ({n} bytes)")
            body = await reader.readexactly(n)
        else:
            body = await reader.read(MAX_RESPONSE_BYTES)
            headers["connection"] = "close"
        return Response(status, headers, body)

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        out = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return bytes(out)
            if len(out) + size > MAX_RESPONSE_BYTES:
                raise HttpClientError("response too large")
            out += await reader.readexactly(size)
            await reader.readexactly(2)
