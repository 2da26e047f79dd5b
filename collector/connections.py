"""Slow and greedy clients: deadlines and caps on the collector's connections.

aiohttp bounds request sizes but not time: a client that sends half a request line,
or announces a body and never sends it, holds a connection (and a file descriptor)
for as long as it likes. Here, every connection:

- must finish its TLS handshake within ``handshake_timeout``;
- must deliver a request's headers within ``header_timeout`` of connecting, and the
  next request's within the same time after a response (keep-alive);
- must be handled, body included, within ``request_timeout`` (408 otherwise);
- counts against ``max_connections`` in total and ``max_connections_per_ip``;
  a connection over either cap is closed at once.

The guard wraps aiohttp's protocol factory (asyncio sees a thin delegating
protocol), so aiohttp itself is unchanged; the middleware tells the guard when a
request's handler starts and ends.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.web_runner import BaseRunner, BaseSite

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ConnectionLimits:
    handshake_timeout: float = 10.0
    header_timeout: float = 10.0
    request_timeout: float = 60.0
    max_connections: int = 1000
    max_connections_per_ip: int = 100


@dataclass
class GuardCounts:
    """Exported on /metrics as canhgac_connections_* ."""

    open: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # over_total, over_per_ip
    timed_out: Counter[str] = field(default_factory=Counter)  # header, request


class ConnectionGuard:
    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.counts = GuardCounts()
        self._per_ip: Counter[str] = Counter()
        self._by_transport: dict[asyncio.BaseTransport, _Guarded] = {}

    def wrap(self, factory: Callable[[], asyncio.BaseProtocol]) -> Callable[[], asyncio.Protocol]:
        return lambda: _Guarded(self, factory())

    def per_ip(self, ip: str) -> int:
        return self._per_ip[ip]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        guarded = self._by_transport.get(request.transport) if request.transport else None
        if guarded is not None:
            guarded.request_started()
        try:
            async with asyncio.timeout(self.limits.request_timeout):
                return await handler(request)
        except TimeoutError:
            self.counts.timed_out["request"] += 1
            raise web.HTTPRequestTimeout(
                text=f"request not completed within {self.limits.request_timeout:g} s\n",
                headers={"Connection": "close"}) from None
        finally:
            if guarded is not None:
                guarded.request_done()

    # -- bookkeeping for _Guarded --------------------------------------------
    def _admit(self, g: _Guarded, ip: str) -> bool:
        if self.counts.open >= self.limits.max_connections:
            self.counts.refused["over_total"] += 1
            return False
        if self._per_ip[ip] >= self.limits.max_connections_per_ip:
            self.counts.refused["over_per_ip"] += 1
            return False
        self.counts.open += 1
        self._per_ip[ip] += 1
        assert g.transport is not None
        self._by_transport[g.transport] = g
        return True

    def _release(self, g: _Guarded, ip: str) -> None:
        self.counts.open -= 1
        self._per_ip[ip] -= 1
        if self._per_ip[ip] <= 0:
            del self._per_ip[ip]
        if g.transport is not None:
            self._by_transport.pop(g.transport, None)


class _Guarded(asyncio.Protocol):
    """Delegates to aiohttp's request handler; adds admission and the header deadline."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.BaseProtocol) -> None:
        self.guard = guard
        self.inner: Any = inner
        self.transport: asyncio.BaseTransport | None = None
        self.ip = ""
        self.admitted = False
        self.in_request = 0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.ip = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if not self.guard._admit(self, self.ip):
            transport.abort()  # type: ignore[attr-defined]
            return
        self.admitted = True
        self.inner.connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.admitted:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return bool(self.inner.eof_received()) if self.admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.admitted:
            self.admitted = False
            self.guard._release(self, self.ip)
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.inner.resume_writing()

    # -- the header deadline ---------------------------------------------------
    def request_started(self) -> None:
        self.in_request += 1
        self._disarm()

    def request_done(self) -> None:
        self.in_request -= 1
        if self.in_request == 0 and self.admitted:
            self._arm()  # the next request on this keep-alive connection has the same deadline

    def _arm(self) -> None:
        self._disarm()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.guard.limits.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self.in_request == 0 and self.transport is not None and not self.transport.is_closing():
            self.guard.counts.timed_out["header"] += 1
            self.transport.abort()  # type: ignore[attr-defined]


class GuardedSite(BaseSite):
    """A TCP site whose connections pass through a ConnectionGuard."""

    def __init__(self, runner: BaseRunner, host: str, port: int, guard: ConnectionGuard, *,
                 ssl_context: ssl.SSLContext | None = None, backlog: int = 1024) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self._port = port
        self._guard = guard
        self._listening: asyncio.Server | None = None

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        """The bound port (the configured one may be 0)."""
        if self._listening is None or not self._listening.sockets:
            return self._port
        return int(self._listening.sockets[0].getsockname()[1])

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = self._listening = await loop.create_server(
            self._guard.wrap(server), self._host, self._port, ssl=self._ssl_context,
            backlog=self._backlog, reuse_address=True,
            ssl_handshake_timeout=self._guard.limits.handshake_timeout if self._ssl_context else None,
            family=socket.AF_UNSPEC)


class GuardMetrics:
    """canhgac_connections_open, _refused_total{reason}, _timed_out_total{reason}."""

    def __init__(self, guard: ConnectionGuard) -> None:
        self.guard = guard

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        c = self.guard.counts
        yield GaugeMetricFamily("canhgac_connections_open", "Client connections open (after TLS)",
                                value=c.open)
        refused = CounterMetricFamily("canhgac_connections_refused",
                                      "Connections closed at once for a cap, by reason",
                                      labels=["reason"])
        for reason in ("over_total", "over_per_ip"):
            refused.add_metric([reason], c.refused[reason])
        yield refused
        timed = CounterMetricFamily("canhgac_connections_timed_out",
                                    "Connections or requests closed for a deadline, by which",
                                    labels=["deadline"])
        for which in ("header", "request"):
            timed.add_metric([which], c.timed_out[which])
        yield timed
