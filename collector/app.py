"""Assemble and run the collector: the composition root.

Wiring order, explicit: the core (auth, inventory, pipeline, ports), then the
outputs, then the optional components in ``collector.components`` order (each
reads the typed ports it uses and fills the ones it provides), then the spool and
one delivery loop per output. At start the spool opens and delivery starts, then
every lifespan in registration order, then the 1 s background tick; at stop the
same in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import os
import signal
import socket
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from canhgac.errors import ConfigError
from canhgac.message import Message
from canhgac.schema import PRIORITY_SECURITY
from canhgac.tasks import cancel_and_wait
from canhgac.tls import issue_cert, make_ca, server_context
from collector.auth import AuthStore
from collector.components import COMPONENTS, ComponentSpec, check_order
from collector.config import CollectorConfig
from collector.connections import ConnectionGuard, GuardedSite, GuardMetrics
from collector.context import CollectorContext, Ports
from collector.enroll import make_handler as enroll_handler
from collector.enroll import self_handler
from collector.fleet import Presence
from collector.ingest import Ingest
from collector.inventory import load_inventory
from collector.metrics import PipelineCollector
from collector.outputs import build_outputs
from collector.pipeline import Pipeline
from collector.protocol import protocol_middleware
from collector.scrape_auth import ScrapeAuth
from shipper.delivery import DeliveryLoop
from shipper.queue import DurableQueue

log = logging.getLogger(__name__)

CTX_KEY: web.AppKey[CollectorContext] = web.AppKey("ctx", CollectorContext)
INGEST_KEY: web.AppKey[Ingest] = web.AppKey("ingest", Ingest)
GUARD_KEY: web.AppKey[ConnectionGuard] = web.AppKey("guard", ConnectionGuard)


def _select(config: CollectorConfig, source: str,
            components: tuple[str, ...] | None) -> tuple[ComponentSpec, ...]:
    """The components to wire: by module name (tests), by ``components:`` (config), or all."""
    if components is not None:
        return tuple(c for c in COMPONENTS if c.module in components)
    if config.components is None:
        return COMPONENTS
    known = {c.name: c for c in COMPONENTS}
    for i, name in enumerate(config.components):
        if name not in known:
            raise ConfigError(source, f"components[{i}]", Message(
                "unknown component {name!r} (known: {known})",
                "thành phần không hợp lệ {name!r} (các thành phần: {known})",
                name=name, known=", ".join(known)))
    return tuple(c for c in COMPONENTS if c.name in config.components)


def build_context(
    config: CollectorConfig, source: str, components: tuple[str, ...] | None = None
) -> CollectorContext:
    state_dir = Path(config.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(state_dir, 0o700)
    guard = ConnectionGuard(config.limits.connection_limits())
    app = web.Application(client_max_size=config.limits.max_body_bytes + 65536,
                          middlewares=[guard.middleware, protocol_middleware])
    app[GUARD_KEY] = guard
    auth = AuthStore(state_dir / "auth.db")
    pipeline = Pipeline()

    async def inject(events: list[dict[str, Any]]) -> None:
        if not events:
            return
        extra = pipeline.process(events)
        lines = [orjson.dumps(e) for e in events + extra]
        if ctx.spool is None:
            raise RuntimeError("the spool is not open yet")
        await ctx.spool.append(lines, PRIORITY_SECURITY)

    ctx = CollectorContext(
        config=config,
        source=source,
        state_dir=state_dir,
        app=app,
        registry=CollectorRegistry(),
        pipeline=pipeline,
        auth=auth,
        inventory=load_inventory(config.inventory),
        ports=Ports(agents=auth, presence=Presence.of(config)),
        inject=inject,
    )
    app[CTX_KEY] = ctx
    ingest = Ingest(ctx)
    app[INGEST_KEY] = ingest
    pipeline_metrics = PipelineCollector(ctx)
    ctx.registry.register(pipeline_metrics)
    ctx.registry.register(GuardMetrics(guard))

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        spool = ctx.spool
        if spool is None:
            return web.json_response({"status": "starting"}, status=503)
        if not spool.writable():
            return web.json_response({"status": f"spool not writable: {spool.last_write_error}"},
                                     status=503)
        if spool.fill_ratio() >= config.limits.high_water:
            return web.json_response({"status": "spool above high-water mark"}, status=503)
        return web.json_response({"status": "ready"})

    scrape_auth = ScrapeAuth.of(config, source)

    async def metrics(request: web.Request) -> web.Response:
        scrape_auth.check(request)
        await pipeline_metrics.refresh()
        # Formatting thousands of per-system series costs tens of ms of CPU:
        # keep it off the event loop so ingest acks are not delayed by a scrape.
        body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, ctx.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.on_response_prepare.append(_server_header)
    app.router.add_post("/v1/events", ingest.handle)
    app.router.add_post("/v1/enroll", enroll_handler(ctx))
    app.router.add_get("/v1/agent", self_handler(ctx))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)

    # Outputs before components: the national component reports its output's
    # counters, search reads the store or the Elasticsearch client.
    built = build_outputs(config.outputs, ctx)
    selected = _select(config, source, components)
    check_order(selected)
    if config.notifications.get("channels") and all(c.name != "notify" for c in selected):
        log.warning("notifications: channels are configured but the notify component is not "
                    "selected (components:), so no alert is notified")
    for spec in selected:
        importlib.import_module(spec.module).setup(ctx)

    ctx.spool = DurableQueue(
        state_dir / "spool.db", max_bytes=config.limits.spool_max_bytes, outputs=tuple(built)
    )
    for name, (out, delivery) in built.items():
        ctx.deliveries[name] = DeliveryLoop(ctx.spool, out, delivery)
    app.cleanup_ctx.append(_serving(ctx))
    return ctx


async def _server_header(_request: web.Request, response: web.StreamResponse) -> None:
    """No software versions in responses (aiohttp would name itself and Python's)."""
    response.headers["Server"] = "canhgac"


def _serving(ctx: CollectorContext) -> Any:
    """The collector's whole run as one aiohttp cleanup context (start, yield, stop)."""

    async def serving(_: web.Application) -> AsyncIterator[None]:
        assert ctx.spool is not None
        await ctx.spool.open()
        try:
            async with contextlib.AsyncExitStack() as stack:
                # Stops whatever loops are current then (a test may swap one in).
                stack.push_async_callback(_stop_deliveries, ctx)
                for loop in ctx.deliveries.values():
                    await loop.start()
                await stack.enter_async_context(ctx.running_lifespans())
                background = asyncio.create_task(_background(ctx), name="collector-background")
                stack.push_async_callback(cancel_and_wait, [background])
                _tune_gc(True)
                stack.callback(_tune_gc, False)
                yield
        finally:
            await ctx.spool.close()
            ctx.auth.close()

    return serving


async def _stop_deliveries(ctx: CollectorContext) -> None:
    for loop in ctx.deliveries.values():
        await loop.stop(timeout=3.0)


async def _background(ctx: CollectorContext) -> None:
    last_flush = time.monotonic()
    while True:
        await asyncio.sleep(1.0)
        try:
            alerts = ctx.pipeline.tick(time.time())
            if alerts:
                await ctx.inject(alerts)
            if time.monotonic() - last_flush > 5:
                last_flush = time.monotonic()
                await asyncio.get_running_loop().run_in_executor(None, ctx.auth.flush_seen)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("collector background task")


_GC_DEFAULT: list[int] = []  # the thresholds before _tune_gc(True)


def _tune_gc(on: bool) -> None:
    """The cyclic GC, set for a process that decodes thousands of events per batch.

    What exists once started (modules, rules, inventory) lives as long as the app:
    frozen, full collections no longer walk it. Collections start when 50,000 more
    containers are alive than at the last one (default 700): a batch's events live
    until their commit, so at 700 every batch set off several collections that
    walked and promoted objects about to be freed anyway (docs/scaling.md has the
    cost). Cyclic garbage is still collected, in fewer passes. Undone at cleanup, so
    an app started and stopped in a longer-lived process (tests) leaves nothing frozen.
    """
    if on:
        gc.collect()  # freeze what is alive, not the garbage of start-up
        gc.freeze()
        if not _GC_DEFAULT:  # a second app in the same process keeps the first's record
            _GC_DEFAULT[:] = gc.get_threshold()
        gc.set_threshold(50_000, *_GC_DEFAULT[1:])
    elif _GC_DEFAULT:
        gc.unfreeze()
        gc.set_threshold(*_GC_DEFAULT)
        _GC_DEFAULT.clear()


def _write_atomically(path: Path, data: bytes) -> None:
    """Readers (``canhgac up``, tests, benches) never see half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def ensure_tls(config: CollectorConfig) -> tuple[ssl.SSLContext | None, Path | None]:
    """The server TLS context; generates a local CA + cert when none is configured."""
    tls = config.tls
    if not tls.enabled:
        return None, None
    if tls.cert and tls.key:
        return server_context(tls.cert, tls.key), tls.ca
    tls_dir = Path(config.state_dir) / "tls"
    ca = make_ca(tls_dir)
    cert = tls_dir / "collector.pem"
    key = tls_dir / "collector-key.pem"
    if not (cert.exists() and key.exists()):
        hosts = ["localhost", "127.0.0.1", "::1", socket.gethostname()]
        if config.listen.host not in hosts and config.listen.host not in ("0.0.0.0", "::"):
            hosts.insert(0, config.listen.host)
        issue_cert(ca, tls_dir, "collector", hosts)
    return server_context(cert, key), ca.cert


async def listen(ctx: CollectorContext, host: str, port: int,
                 ssl_ctx: ssl.SSLContext | None) -> tuple[web.AppRunner, GuardedSite]:
    """Start serving ``ctx.app`` on host:port through the connection guard."""
    # lingering_time: after an early answer (408, 413) the rest of a body is read and
    # dropped for at most 1 s, not aiohttp's 10 s, so a slow client is let go quickly.
    runner = web.AppRunner(ctx.app, access_log=None, handle_signals=False, auto_decompress=False,
                           lingering_time=1.0)
    await runner.setup()
    site = GuardedSite(runner, host, port, ctx.app[GUARD_KEY], ssl_context=ssl_ctx)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, site


async def serve(
    config: CollectorConfig,
    source: str,
    ready: asyncio.Event | None = None,
    components: tuple[str, ...] | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or cancellation)."""
    ctx = build_context(config, source, components)
    ssl_ctx, ca_path = ensure_tls(config)
    try:
        runner, site = await listen(ctx, config.listen.host, config.listen.port, ssl_ctx)
    except OSError as exc:
        raise ConfigError(source, "listen", Message(
            "cannot listen on {host}:{port}: {why}", "không mở được cổng {host}:{port}: {why}",
            host=config.listen.host, port=config.listen.port,
            why=exc.strerror or str(exc))) from None
    scheme = "https" if ssl_ctx else "http"
    port = site.port
    log.info("collector listening on %s://%s:%s (state %s%s)", scheme, config.listen.host, port,
             ctx.state_dir, f", CA {ca_path}" if ca_path else "")
    host = "127.0.0.1" if config.listen.host in ("0.0.0.0", "") else config.listen.host
    _write_atomically(ctx.state_dir / "collector.json", orjson.dumps({
        "url": f"{scheme}://{host}:{port}", "ca": str(ca_path) if ca_path else None,
        "pid": os.getpid(),
    }))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("collector stopping")
        await runner.cleanup()
