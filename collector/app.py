"""Assemble and run the collector: context, components, spool, outputs.

Components are optional modules (``setup(ctx)``); the list below is the order
their pipeline stages run in: indicators before rules, and alert bookkeeping
after everything that can raise an alert.
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
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from canhgac.errors import ConfigError
from canhgac.schema import PRIORITY_SECURITY
from canhgac.tls import issue_cert, make_ca, server_context
from collector.auth import AuthStore
from collector.config import CollectorConfig
from collector.context import CollectorContext
from collector.enroll import make_handler as enroll_handler
from collector.ingest import Ingest
from collector.inventory import load_inventory
from collector.metrics import PipelineCollector
from collector.outputs import build_output
from collector.pipeline import Pipeline
from shipper.delivery import DeliveryConfig, DeliveryLoop
from shipper.queue import DurableQueue

log = logging.getLogger(__name__)

CTX_KEY: web.AppKey[CollectorContext] = web.AppKey("ctx", CollectorContext)
BACKGROUND_KEY: web.AppKey[asyncio.Task[None]] = web.AppKey("background", asyncio.Task)

COMPONENTS: tuple[str, ...] = (
    "collector.national",
    "collector.detect",
    "collector.alerts",
    "collector.coverage",
    "collector.search",
)


def _load_component(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:  # the component is not part of this build
            log.debug("component %s not present", name)
            return None
        raise


def build_context(
    config: CollectorConfig, source: str, components: tuple[str, ...] | None = None
) -> CollectorContext:
    state_dir = Path(config.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(state_dir, 0o700)
    app = web.Application(client_max_size=config.limits.max_body_bytes + 65536)
    ctx = CollectorContext(
        config=config,
        source=source,
        state_dir=state_dir,
        app=app,
        registry=CollectorRegistry(),
        pipeline=Pipeline(),
        auth=AuthStore(state_dir / "auth.db"),
        inventory=load_inventory(config.inventory),
    )
    ctx.services["agents"] = ctx.auth
    app[CTX_KEY] = ctx
    ingest = Ingest(ctx)
    pipeline_metrics = PipelineCollector(ctx)
    ctx.registry.register(pipeline_metrics)
    ctx.services["ingest"] = ingest

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        spool = ctx.spool
        if spool is None:
            return web.json_response({"status": "starting"}, status=503)
        if spool.fill_ratio() >= config.limits.high_water:
            return web.json_response({"status": "spool above high-water mark"}, status=503)
        return web.json_response({"status": "ready"})

    async def metrics(_: web.Request) -> web.Response:
        await pipeline_metrics.refresh()
        # Formatting thousands of per-system series costs tens of ms of CPU:
        # keep it off the event loop so ingest acks are not delayed by a scrape.
        body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, ctx.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_post("/v1/events", ingest.handle)
    app.router.add_post("/v1/enroll", enroll_handler(ctx))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)

    if components is None and config.components is not None:
        known = {c.rsplit(".", 1)[1]: c for c in COMPONENTS}
        for i, c in enumerate(config.components):
            if c not in known:
                raise ConfigError(source, f"components[{i}]",
                                  f"unknown component {c!r} (known: {', '.join(known)})")
        components = tuple(known[c] for c in config.components)
    for name in COMPONENTS if components is None else components:
        module = _load_component(name)
        if module is not None:
            module.setup(ctx)

    outputs = {name: build_output(name, raw, ctx) for name, raw in (config.outputs or {}).items()}
    if not outputs:
        raise ConfigError(source, "outputs", "at least one output is required (e.g. store: {})")
    ctx.spool = DurableQueue(
        state_dir / "spool.db", max_bytes=config.limits.spool_max_bytes, outputs=tuple(outputs)
    )
    for name, out in outputs.items():
        dcfg = DeliveryConfig(**getattr(out, "delivery_config", {}))
        ctx.deliveries[name] = DeliveryLoop(ctx.spool, out, dcfg)

    async def inject(events: list[dict[str, Any]]) -> None:
        if not events:
            return
        extra = ctx.pipeline.process(events)
        lines = [orjson.dumps(e) for e in events + extra]
        assert ctx.spool is not None
        await ctx.spool.append(lines, PRIORITY_SECURITY)

    ctx.inject = inject
    app.on_startup.append(_on_startup)
    app.on_cleanup.append(_on_cleanup)
    return ctx


async def _background(ctx: CollectorContext) -> None:
    last_flush = time.monotonic()
    while True:
        await asyncio.sleep(1.0)
        try:
            alerts = ctx.pipeline.tick(time.time())
            if alerts and ctx.inject is not None:
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


async def _on_startup(app: web.Application) -> None:
    ctx: CollectorContext = app[CTX_KEY]
    assert ctx.spool is not None
    await ctx.spool.open()
    for loop in ctx.deliveries.values():
        await loop.start()
    for hook in ctx.on_start:
        await hook()
    _tune_gc(True)
    app[BACKGROUND_KEY] = asyncio.create_task(_background(ctx), name="collector-background")


async def _on_cleanup(app: web.Application) -> None:
    ctx: CollectorContext = app[CTX_KEY]
    bg = app.get(BACKGROUND_KEY)
    if bg is not None:
        bg.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bg
    for hook in reversed(ctx.on_stop):
        try:
            await hook()
        except Exception:
            log.exception("stop hook failed")
    for loop in ctx.deliveries.values():
        await loop.stop(timeout=3.0)
    if ctx.spool is not None:
        await ctx.spool.close()
    ctx.auth.close()
    _tune_gc(False)


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


async def serve(
    config: CollectorConfig,
    source: str,
    ready: asyncio.Event | None = None,
    components: tuple[str, ...] | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or cancellation)."""
    ctx = build_context(config, source, components)
    ssl_ctx, ca_path = ensure_tls(config)
    runner = web.AppRunner(ctx.app, access_log=None, handle_signals=False, auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, config.listen.host, config.listen.port, ssl_context=ssl_ctx,
                       backlog=1024)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(source, "listen", f"cannot listen on {config.listen.host}:"
                          f"{config.listen.port}: {exc.strerror or exc}") from None
    scheme = "https" if ssl_ctx else "http"
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    log.info("collector listening on %s://%s:%s (state %s%s)", scheme, config.listen.host, port,
             ctx.state_dir, f", CA {ca_path}" if ca_path else "")
    host = "127.0.0.1" if config.listen.host in ("0.0.0.0", "") else config.listen.host
    (ctx.state_dir / "collector.json").write_text(orjson.dumps({
        "url": f"{scheme}://{host}:{port}", "ca": str(ca_path) if ca_path else None,
        "pid": os.getpid(),
    }).decode())
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
