"""The mock center's HTTP API (aiohttp) and its TLS listener.

The listener does the TLS handshake itself (``loop.start_tls``) instead of
handing an SSLContext to aiohttp: that is what lets the ``slow_tls`` fault
delay a handshake without blocking the event loop, and lets ``stop_listening``
cut every live connection to simulate the center going away mid-stream.
"""

from __future__ import annotations

import asyncio
import fnmatch
import gzip
import hmac
import logging
import ssl
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from canhgac.signing import (
    DEFAULT_SKEW_SECONDS,
    ReplayCache,
    SignatureError,
    Verified,
    Verifier,
)
from canhgac.timeutil import now_rfc3339, parse_rfc3339
from national_center.faults import Faults
from national_center.indicators import IndicatorSpec, IndicatorStore
from national_center.storage import Line, Storage

log = logging.getLogger("national_center")

API_VERSION = "1.0"
MAX_DECOMPRESSED = 64 * 1024 * 1024
MAX_COMPRESSED = 16 * 1024 * 1024
MAX_LINES = 20_000
ACCEPTED_KINDS = frozenset({"alert", "event", "metric", "state"})


@dataclass
class CenterSettings:
    keys: dict[str, bytes]
    db: Path
    cert: Path
    key: Path
    host: str = "127.0.0.1"
    port: int = 0
    indicators: Path | None = None
    skew_seconds: float = DEFAULT_SKEW_SECONDS
    admin_token: str = ""  # empty: admin endpoints only from loopback peers
    faults: Faults = field(default_factory=Faults)
    handshake_timeout: float = 30.0
    systems: dict[str, list[str]] = field(default_factory=dict)  # key id -> system id globs


class _TlsFront(asyncio.Protocol):
    """Accepts TCP, (optionally) waits, upgrades to TLS, then hands over to aiohttp."""

    def __init__(self, center: MockCenter) -> None:
        self.center = center
        self.raw: asyncio.Transport | None = None
        self.inner: asyncio.Protocol | None = None
        self.tls: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.raw = transport
        transport.pause_reading()  # the ClientHello waits in the kernel until start_tls
        conns = self.center._conns
        if len(conns) >= 256:
            # After the hand-over aiohttp owns the connection and we hear nothing of
            # its end, so closed ones are pruned here; the set stays ~ live connections.
            conns.difference_update([c for c in conns if c.raw is None or c.raw.is_closing()])
        conns.add(self)
        self._task = asyncio.get_running_loop().create_task(self._upgrade())

    async def _upgrade(self) -> None:
        assert self.raw is not None
        delay = self.center.faults.slow_tls
        try:
            if delay > 0:
                center = self.center
                center.slow_tls_waiting += 1
                center.slow_tls_peak = max(center.slow_tls_peak, center.slow_tls_waiting)
                try:
                    await asyncio.sleep(delay)
                finally:
                    center.slow_tls_waiting -= 1
            if self.raw.is_closing():
                return
            tls = await asyncio.get_running_loop().start_tls(
                self.raw, self, self.center.ssl_context, server_side=True,
                ssl_handshake_timeout=self.center.settings.handshake_timeout,
            )
        except (OSError, ssl.SSLError, ConnectionError, TimeoutError, asyncio.CancelledError) as exc:
            log.debug("TLS handshake failed: %s", exc)
            self.abort()
            return
        if tls is None:
            return
        self.tls = tls
        inner = self.center.runner.server()  # type: ignore[misc]  # aiohttp RequestHandler
        self.inner = inner
        tls.set_protocol(inner)
        inner.connection_made(tls)
        if self._buffer:
            data, self._buffer = bytes(self._buffer), bytearray()
            inner.data_received(data)  # type: ignore[attr-defined]

    # Only called between the handshake and handing over (app data that raced us).
    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.data_received(data)  # type: ignore[attr-defined]
        else:
            self._buffer.extend(data)

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.center._conns.discard(self)
        if self.inner is not None and self.tls is None:
            self.inner.connection_lost(exc)

    def abort(self) -> None:
        self.center._conns.discard(self)
        for t in (self.tls, self.raw):
            if t is not None:
                t.abort()
        if self._task is not None and not self._task.done():
            self._task.cancel()


class MockCenter:
    """The service. ``start()`` may be called again after ``stop_listening()`` (same port)."""

    def __init__(self, settings: CenterSettings) -> None:
        self.settings = settings
        self.faults = settings.faults
        self.storage = Storage(settings.db)
        self.verifier = Verifier(settings.keys, settings.skew_seconds,
                                 ReplayCache(settings.skew_seconds, store=self.storage))
        self.indicators = IndicatorStore()
        if settings.indicators is not None:
            self.indicators.load(settings.indicators)
        self.ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ssl_context.load_cert_chain(str(settings.cert), str(settings.key))
        self.port = settings.port
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="national-mock-db")
        self._conns: set[_TlsFront] = set()
        self._server: asyncio.base_events.Server | None = None
        self.app = self._make_app()
        # The body is inflated by us, bounded, and only after the signature checks out.
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                    auto_decompress=False)
        self._setup_done = False
        self.rejections: dict[str, int] = {}
        # Handshakes inside an injected slow_tls delay now, and at most at once.
        self.slow_tls_waiting = 0
        self.slow_tls_peak = 0

    @property
    def url(self) -> str:
        host = self.settings.host
        host = f"[{host}]" if ":" in host else host
        return f"https://{host}:{self.port}"

    # -- lifecycle -------------------------------------------------------
    async def start(self) -> int:
        if not self._setup_done:
            await self.runner.setup()
            self._setup_done = True
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _TlsFront(self), self.settings.host, self.port, reuse_address=True,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("national center mock listening on %s", self.url)
        return self.port

    async def stop_listening(self) -> None:
        """Go away: stop accepting and cut every open connection (the storage stays)."""
        if self._server is not None:
            self._server.close()
            for conn in list(self._conns):
                conn.abort()
            await self._server.wait_closed()
            self._server = None

    async def close(self) -> None:
        await self.stop_listening()
        if self._setup_done:
            await self.runner.cleanup()
            self._setup_done = False
        self._executor.shutdown(wait=True)
        self.storage.close()

    async def _db(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- app -------------------------------------------------------------
    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_COMPRESSED, middlewares=[self._faults_mw])
        app.router.add_post("/v1/reports", self.reports)
        app.router.add_get("/v1/indicators", self.get_indicators)
        app.router.add_get("/v1/ping", self.ping)
        app.router.add_post("/v1/ping", self.signed_ping)
        app.router.add_get("/admin/faults", self.admin_get_faults)
        app.router.add_put("/admin/faults", self.admin_put_faults)
        app.router.add_delete("/admin/faults", self.admin_reset_faults)
        app.router.add_post("/admin/indicators", self.admin_add_indicator)
        app.router.add_get("/admin/stats", self.admin_stats)
        return app

    @web.middleware
    async def _faults_mw(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        f = self.faults
        left = f.unavailable()
        if left is not None:
            return _error(503, "unavailable", "injected 503 window",
                          headers={"Retry-After": str(max(1, round(min(left, f.retry_after))))})
        if f.latency > 0 or f.latency_jitter > 0:
            await asyncio.sleep(f.latency + f.jitter())
        if f.chance(f.error_rate):
            return _error(500, "injected", "injected server error")
        if f.chance(f.drop_rate):
            return _cut(request)
        return await handler(request)

    def _verify_headers(self, request: web.Request) -> Verified:
        if self.faults.reject_signatures:
            raise SignatureError("injected", "signatures rejected (injected fault)")
        return self.verifier.verify_headers(request.method, request.path_qs, request.headers)

    def _verify(self, request: web.Request, body: bytes) -> Verified:
        if self.faults.reject_signatures:
            raise SignatureError("injected", "signatures rejected (injected fault)")
        return self.verifier.verify(request.method, request.path_qs, request.headers, body)

    def _reject(self, exc: SignatureError) -> web.Response:
        self.rejections[exc.reason] = self.rejections.get(exc.reason, 0) + 1
        self.storage.bump(f"rejected_requests:{exc.reason}")
        return _error(401, exc.reason, str(exc), headers={"WWW-Authenticate": "CANHGAC-HMAC-SHA256"})

    async def reports(self, request: web.Request) -> web.StreamResponse:
        # Headers first: an unsigned or forged request costs no body read and no inflation.
        try:
            who = self._verify_headers(request)
        except SignatureError as exc:
            return self._reject(exc)
        try:
            wire = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, "too_large", f"body larger than {MAX_COMPRESSED} bytes")
        try:
            body = _decode(wire, request.headers.get("Content-Encoding", ""))
        except ValueError as exc:
            return _error(413 if "larger" in str(exc) else 400, "bad_body", str(exc))
        try:
            self.verifier.check_body(who, body)
        except SignatureError as exc:
            return self._reject(exc)
        if not who.batch_id:
            return _error(400, "no_batch_id", "X-Canhgac-Batch-Id is required")
        known = await self._db(self.storage.known_batch, who.key_id, who.batch_id)
        if known is not None:
            known["duplicate_batch"] = True
            return web.json_response(known, dumps=_dumps)
        lines, errors, total = _parse_lines(body, self.settings.systems.get(who.key_id))
        if total > MAX_LINES:
            return _error(413, "too_many_lines", f"at most {MAX_LINES} lines per batch")
        ack: dict[str, Any] = {
            "batch_id": who.batch_id, "received": total, "accepted": 0, "duplicates": 0,
            "rejected": len(errors), "errors": errors, "duplicate_batch": False,
        }
        ack = await self._db(self.storage.store_batch, who.key_id, who.batch_id, lines, ack)
        if self.faults.chance(self.faults.drop_after_store_rate):
            return _cut(request)
        return web.json_response(ack, dumps=_dumps)

    async def get_indicators(self, request: web.Request) -> web.StreamResponse:
        try:
            self._verify(request, b"")
        except SignatureError as exc:
            return self._reject(exc)
        after_text = request.query.get("added_after")
        after = None
        if after_text:
            try:
                after = parse_rfc3339(after_text)
            except ValueError:
                return _error(400, "bad_added_after", "added_after must be RFC 3339")
        body, etag = self.indicators.bundle(after)
        inm = request.headers.get("If-None-Match", "")
        if inm and any(hmac.compare_digest(t.strip(), etag) for t in inm.split(",")):
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=body, content_type="application/stix+json",
                            headers={"ETag": etag, "X-Canhgac-Api-Version": API_VERSION})

    async def ping(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"time": now_rfc3339(), "epoch": time.time(),
                                  "api_version": API_VERSION}, dumps=_dumps)

    async def signed_ping(self, request: web.Request) -> web.StreamResponse:
        """The signed no-op: proves key, clock and signing agree, stores nothing."""
        body = await request.read()
        try:
            who = self._verify(request, body)
        except SignatureError as exc:
            return self._reject(exc)
        return web.json_response({"time": now_rfc3339(), "epoch": time.time(),
                                  "verified": True, "key_id": who.key_id,
                                  "api_version": API_VERSION}, dumps=_dumps)

    # -- admin -----------------------------------------------------------
    def _admin_ok(self, request: web.Request) -> bool:
        token = self.settings.admin_token
        if token:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            return hmac.compare_digest(given.encode(), token.encode())
        peer = request.transport.get_extra_info("peername") if request.transport else None
        return bool(peer) and peer[0] in ("127.0.0.1", "::1")

    async def admin_get_faults(self, request: web.Request) -> web.StreamResponse:
        if not self._admin_ok(request):
            return _error(403, "forbidden", "admin token required")
        return web.json_response(self.faults.as_dict(), dumps=_dumps)

    async def admin_put_faults(self, request: web.Request) -> web.StreamResponse:
        if not self._admin_ok(request):
            return _error(403, "forbidden", "admin token required")
        try:
            changes = orjson.loads(await request.read())
            if not isinstance(changes, dict):
                raise ValueError("expected a JSON object")
            self.faults.update(changes)
        except (ValueError, KeyError, orjson.JSONDecodeError) as exc:
            return _error(400, "bad_faults", str(exc))
        log.warning("faults now: %s", self.faults.as_dict())
        return web.json_response(self.faults.as_dict(), dumps=_dumps)

    async def admin_reset_faults(self, request: web.Request) -> web.StreamResponse:
        if not self._admin_ok(request):
            return _error(403, "forbidden", "admin token required")
        self.faults.reset()
        return web.json_response(self.faults.as_dict(), dumps=_dumps)

    async def admin_add_indicator(self, request: web.Request) -> web.StreamResponse:
        if not self._admin_ok(request):
            return _error(403, "forbidden", "admin token required")
        from canhgac.config import load_section
        from canhgac.errors import ConfigError

        try:
            spec = load_section(orjson.loads(await request.read()), IndicatorSpec, "request")
        except (ConfigError, orjson.JSONDecodeError) as exc:
            return _error(400, "bad_indicator", str(exc))
        return web.json_response(self.indicators.add(spec), dumps=_dumps)

    async def admin_stats(self, request: web.Request) -> web.StreamResponse:
        if not self._admin_ok(request):
            return _error(403, "forbidden", "admin token required")
        counters = await self._db(self.storage.counters)
        total = await self._db(self.storage.count)
        return web.json_response({"reports": total, "counters": counters,
                                  "indicators": len(self.indicators)}, dumps=_dumps)


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status,
                             headers=headers, dumps=_dumps)


def _cut(request: web.Request) -> web.Response:
    """Abort the connection: the client sees a reset, never a response."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=499)


def _decode(wire: bytes, encoding: str) -> bytes:
    """The body as signed: gzip (members in sequence) inflated to at most MAX_DECOMPRESSED."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return wire
    if encoding != "gzip":
        raise ValueError(f"Content-Encoding {encoding!r} is not supported (gzip or none)")
    out = bytearray()
    data = wire
    while data:
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out += d.decompress(data, MAX_DECOMPRESSED + 1 - len(out))
        except zlib.error as exc:
            raise ValueError(f"gzip body is corrupt: {exc}") from None
        if len(out) > MAX_DECOMPRESSED or d.unconsumed_tail:
            raise ValueError(f"body larger than {MAX_DECOMPRESSED} bytes once inflated")
        if not d.eof:
            raise ValueError("gzip body is truncated")
        data = d.unused_data
    return bytes(out)


def _parse_lines(raw: bytes, systems: list[str] | None = None,
                 ) -> tuple[list[Line], list[dict[str, Any]], int]:
    lines: list[Line] = []
    errors: list[dict[str, Any]] = []
    total = 0
    for index, text in enumerate(raw.split(b"\n")):
        if not text.strip():
            continue
        total += 1
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            errors.append({"index": index, "reason": "not JSON"})
            continue
        event = doc.get("event") if isinstance(doc, dict) else None
        if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event["id"]:
            errors.append({"index": index, "reason": "event.id missing"})
            continue
        kind = event.get("kind")
        if kind not in ACCEPTED_KINDS:
            errors.append({"index": index, "reason": f"event.kind {kind!r} not accepted"})
            continue
        canhgac = doc.get("canhgac") if isinstance(doc.get("canhgac"), dict) else {}
        system = canhgac.get("system") if isinstance(canhgac.get("system"), dict) else {}
        system_id = system.get("id")
        if systems and not (isinstance(system_id, str)
                            and any(fnmatch.fnmatchcase(system_id, p) for p in systems)):
            errors.append({"index": index,
                           "reason": f"system {system_id!r} is not registered for this key"})
            continue
        sev = event.get("severity")
        lines.append(Line(
            event_id=event["id"], kind=kind, dataset=str(event.get("dataset", "")),
            system_id=system.get("id") if isinstance(system.get("id"), str) else None,
            severity=sev if isinstance(sev, int) and not isinstance(sev, bool) else None,
            doc=text,
        ))
    return lines, errors, total


def gzip_ndjson(docs: list[dict[str, Any]]) -> bytes:
    """For tests and tools: what a well-behaved client sends."""
    return gzip.compress(b"\n".join(orjson.dumps(d) for d in docs) + b"\n", 1)
