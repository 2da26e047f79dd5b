"""The per-event, stateless half of `POST /v1/events`, runnable on other cores.

``prepare`` turns one request body into what the main process needs to finish
the request: bounded gunzip, the split into lines, per-line validation (orjson
decode and checks, each rejection with a code and a reason), enrichment
(attribution from the agent's enrollment and the inventory entry, both given by
the main process, never read from the payload), and the few facts the ack and
the spool need (security priority, the last health report). It is a pure
function of its inputs; the main process keeps everything stateful: auth,
backpressure, detection, the durable commit, the ack.

``IngestWorkers`` runs ``prepare`` in worker processes (``ingest_workers`` in
collector.yaml). What crosses the process boundary is chosen for the cost of
the crossing: the request body goes out as bytes, the accepted events come back
as *one* JSON array (bytes) that the main process decodes with a single
``orjson.loads``; pickling the event dicts back would cost as much as parsing
them again (docs/scaling.md has the figures).

Workers die with the collector: each talks to it over its own Unix socket whose
other end only the collector holds, so the collector's exit (even kill -9) is an
EOF and the worker exits; a worker busy with a batch is killed by the kernel
(Linux ``PR_SET_PDEATHSIG``). A worker that dies on its own (OOM killer, kill -9)
costs nothing but time: the batches it held are prepared in the main process,
and it is started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import multiprocessing
import multiprocessing.process
import os
import pickle
import signal
import socket
import struct
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import orjson

from canhgac.schema import AGENT_HEALTH, PRIORITY_SECURITY, priority_of
from collector.auth import AgentRecord
from collector.enrich import Enricher
from collector.inventory import Inventory, InventoryHolder, System
from collector.validate import Invalid, Limits, parse_line

log = logging.getLogger(__name__)

# Every rejected line is listed (the agent dead-letters each one by index); long
# reasons are cut so a batch of 10,000 bad lines still answers in ~2 MB.
MAX_REASON_CHARS = 160
# Bodies smaller than this are prepared in the main process: for a handful of
# events the round trip to a worker costs more than the work it would save.
INLINE_BELOW_BYTES = 4096
# After a worker died: wait this long before starting it again (in-process meanwhile),
# doubling while it keeps dying before it is up, up to the maximum.
RESTART_DELAY_SECONDS = 1.0
RESTART_DELAY_MAX_SECONDS = 60.0
_PR_SET_PDEATHSIG = 1
# Batches a worker holds before the event loop prepares one itself (IngestWorkers).
DEFAULT_DEPTH = 8
# Send buffer asked for on each end of a worker's socket. A 500-event answer is ~330 KB,
# more than the default (208 KiB): the worker blocked in sendall until the event loop,
# busy with other requests, had read it in pieces, and could not start its next batch
# meanwhile. The kernel caps the request at net.core.wmem_max (doubled).
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
# A frame: two lengths, a pickle (job / result metadata), then raw bytes (body / events).
_HEADER = struct.Struct("!QQ")
_SPAWN = multiprocessing.get_context("spawn")


@dataclass(frozen=True, slots=True)
class BatchJob:
    """Everything ``prepare`` needs besides the body; small, and picklable."""

    limits: Limits
    max_decompressed_bytes: int
    max_events_per_batch: int
    agent: AgentRecord
    # (id, name, unit, level) of the agent's system in the inventory; None if not listed.
    system: tuple[str, str, str, int] | None


@dataclass(frozen=True, slots=True)
class Refused:
    """The whole request is refused: 400 (bad gzip) or 413 (too large, too many lines)."""

    status: int
    message: str
    limit: int = 0  # for 413 on the gunzipped size: the limit and the size seen
    actual: int = 0


@dataclass(slots=True)
class Prepared:
    received: int  # non-empty lines
    events: list[dict[str, Any]]  # accepted and enriched, in line order
    errors: list[dict[str, Any]]  # ack entries {"line", "code", "reason"}
    rejected_by_code: dict[str, int]
    overrides: int  # payloads that claimed another system
    security: bool  # at least one event of a security (high priority) dataset
    health: int  # index in ``events`` of the last agent.health event, -1 if none


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Decoding a batch makes thousands of containers at once, none of them garbage.

    Left on, the cyclic GC runs several times mid-batch and promotes them all
    through its generations; paused, it runs once afterwards. Used only around
    C calls and code that makes no cycles.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()

def gunzip(raw: bytes, limit: int) -> bytes | Refused:
    """Decompress a gzip body, never producing more than ``limit`` bytes (bombs).

    Every member is read (a gzip file may be several concatenated; dropping all but the
    first lost events silently), and bytes after the last member that are not another
    member are refused, not ignored.
    """
    out = bytearray()
    data = raw
    while True:
        d = zlib.decompressobj(wbits=31)
        try:
            out += d.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            return Refused(400, f"bad gzip body: {exc}")
        if len(out) > limit or d.unconsumed_tail:
            return Refused(413, "decompressed body too large", limit, len(out))
        if not d.eof:
            return Refused(400, "truncated gzip body")
        data = d.unused_data
        if not data:
            return bytes(out)
        if not data.startswith(b"\x1f\x8b"):
            return Refused(400, f"{len(data)} bytes of trailing data after the gzip body")


def prepare(raw: bytes, gzipped: bool, job: BatchJob, enricher: Enricher) -> Prepared | Refused:
    """Decompress, split, validate and enrich one batch (see the module docstring)."""
    if gzipped:
        body = gunzip(raw, job.max_decompressed_bytes)
        if isinstance(body, Refused):
            return body
    else:
        body = raw
    # Count before splitting (in C): 63 MiB of newlines would otherwise become millions
    # of empty line objects — seconds of CPU and half a gigabyte — before any check.
    if body.count(b"\n") > job.max_events_per_batch + 1:
        return Refused(413, f"more than {job.max_events_per_batch} lines in one batch, limit is "
                       f"{job.max_events_per_batch} events")
    lines = [ln for ln in body.split(b"\n") if ln.strip()]
    if len(lines) > job.max_events_per_batch:
        return Refused(413, f"{len(lines)} events in one batch, limit is {job.max_events_per_batch}")
    events: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    by_code: dict[str, int] = {}
    limits = job.limits
    now = time.time()
    for i, line in enumerate(lines):
        try:
            events.append(parse_line(line, limits, now))
        except Invalid as exc:
            by_code[exc.code] = by_code.get(exc.code, 0) + 1
            errors.append({"line": i, "code": exc.code, "reason": exc.reason[:MAX_REASON_CHARS]})
    before = enricher.overrides
    enricher.apply(events, job.agent)
    security = False
    health = -1
    for i, ev in enumerate(events):
        dataset = ev["event"]["dataset"]
        if dataset == AGENT_HEALTH:
            health = i
        elif not security and priority_of(dataset) == PRIORITY_SECURITY:
            security = True
    return Prepared(len(lines), events, errors, by_code, enricher.overrides - before, security, health)



# -- in a worker process ------------------------------------------------------------

_enrichers: dict[tuple[str, str, str, int] | None, Enricher] = {}


def _enricher_for(system: tuple[str, str, str, int] | None) -> Enricher:
    """An Enricher whose inventory holds just the agent's system, as the main process sent it."""
    found = _enrichers.get(system)
    if found is None:
        if len(_enrichers) > 10_000:
            _enrichers.clear()
        inv = Inventory()
        if system is not None:
            sid, name, unit, level = system
            inv = Inventory(systems=[System(id=sid, name=name, unit=unit, level=level)])  # type: ignore[arg-type]
        found = _enrichers[system] = Enricher(InventoryHolder(inv))
    return found


@dataclass(frozen=True, slots=True)
class _Failed:
    """``prepare`` raised in a worker (a bug): the request fails as it would in-process."""

    error: str


def _recv_into(sock: socket.socket, buf: bytearray) -> bool:
    view = memoryview(buf)
    got = 0
    while got < len(buf):
        k = sock.recv_into(view[got:])
        if k == 0:
            return False
        got += k
    return True


def _send(sock: socket.socket, meta: Any, blob: bytes = b"") -> None:
    m = pickle.dumps(meta, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_HEADER.pack(len(m), len(blob)) + m)
    if blob:
        sock.sendall(blob)


def widen(sock: socket.socket) -> None:
    """Let a whole answer (or job) sit in the socket without blocking its writer."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)


def _die_with(parent: int) -> None:
    """Never outlive the collector; leave Ctrl-C to it (it stops the workers in order)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


def worker_main(sock: socket.socket, parent: int) -> None:
    """A worker: answer job frames in order until the collector closes the socket.

    Job frame: pickle of (gzipped, BatchJob) + the request body. Answer: pickle of
    Prepared (events left empty) / Refused / _Failed + the accepted events as one
    JSON array. The socket's other end is the collector's only, so its death (even
    kill -9) is an EOF here; PR_SET_PDEATHSIG also ends a worker busy with a batch.
    """
    _die_with(parent)
    widen(sock)
    gc.freeze()  # modules and tables loaded so far live as long as the worker
    _send(sock, os.getpid())
    head = bytearray(_HEADER.size)
    while True:
        if not _recv_into(sock, head):
            return
        mlen, blen = _HEADER.unpack(head)
        meta, raw = bytearray(mlen), bytearray(blen)
        if not (_recv_into(sock, meta) and _recv_into(sock, raw)):
            return
        gzipped, job = pickle.loads(meta)
        blob = b""
        result: Prepared | Refused | _Failed
        try:
            with gc_paused():
                result = prepare(bytes(raw), gzipped, job, _enricher_for(job.system))
                if isinstance(result, Prepared):
                    blob = orjson.dumps(result.events)
                    result.events = []
        except Exception as exc:  # a bug: report it, keep serving
            result = _Failed(f"{type(exc).__name__}: {exc}")
        del raw
        try:
            _send(sock, result, blob)
        except OSError:  # the collector is gone
            return


# -- in the collector ---------------------------------------------------------------


def default_workers(cpus: int | None = None) -> int:
    """``ingest_workers: auto``: one worker per core beyond the event loop's, at most 4.

    One core: 0 (in-process; a worker would only add the cost of the crossing).
    Two cores: 1 worker, so the event loop (detection, commit) and the worker
    (decode, validate, enrich) each have a core.
    """
    if cpus is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
    return max(0, min(4, cpus - 1))


class _WorkerGone(Exception):
    pass


class _Frames(asyncio.BufferedProtocol):
    """Reads a worker's answers straight into one reused buffer (no per-read allocation).

    ``on_frame(meta, blob)`` is called on the event loop with views into that
    buffer, valid only during the call.
    """

    _KEEP = 4 * 1024 * 1024  # a buffer grown past this for one huge batch is let go

    def __init__(self, on_frame: Callable[[memoryview, memoryview], None],
                 on_lost: Callable[[], None]) -> None:
        self._on_frame = on_frame
        self._on_lost = on_lost
        self._buf = bytearray(256 * 1024)
        self._need = _HEADER.size  # bytes wanted in _buf before the next step
        self._pos = 0
        self._lens: tuple[int, int] | None = None  # (meta, blob) once the header is in

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self._buf)[self._pos:self._need]

    def buffer_updated(self, nbytes: int) -> None:
        self._pos += nbytes
        if self._pos < self._need:
            return
        if self._lens is None:
            mlen, blen = _HEADER.unpack_from(self._buf)
            self._lens = (mlen, blen)
            self._need, self._pos = mlen + blen, 0
            if len(self._buf) < self._need:
                self._buf = bytearray(self._need)
            if self._need:
                return
        mlen, blen = self._lens
        view = memoryview(self._buf)
        try:
            self._on_frame(view[:mlen], view[mlen:mlen + blen])
        finally:
            self._lens, self._need, self._pos = None, _HEADER.size, 0
            if len(self._buf) > self._KEEP:
                self._buf = bytearray(256 * 1024)

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost()


class _Worker:
    """The collector's end of one worker process: its socket and the batches in flight."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: multiprocessing.process.BaseProcess | None = None
        self.transport: asyncio.Transport | None = None
        self.inflight: deque[asyncio.Future[Prepared | Refused]] = deque()
        self.ready = False
        self.pid = 0
        self.lost: asyncio.Event = asyncio.Event()
        self.delay = RESTART_DELAY_SECONDS  # before the next restart


@dataclass
class WorkerStats:
    batches: int = 0  # prepared in a worker
    inline: int = 0  # prepared in the main process: small, no worker up, or workers = 0
    busy: int = 0  # prepared in the main process because every worker was full
    redone: int = 0  # sent to a worker that died, then prepared in the main process
    restarts: int = 0  # workers started again after one died


class IngestWorkers:
    """``n`` worker processes for ``prepare``; n = 0 runs everything in-process.

    All I/O with the workers runs on the event loop (one Unix socket per worker):
    no feeder or manager threads queueing for the GIL behind the loop, as with a
    ProcessPoolExecutor. Each worker holds up to ``depth`` batches, so it has the
    next one while the loop is busy with detection and commits; when all are full,
    the loop prepares the batch itself (see ``_pick``).

    ``depth`` is 8 (DEFAULT_DEPTH): the loop's own time is the scarcest resource of
    the collector (detection, the commit and the embedded store's writer share its
    GIL), so it prepares a batch only when the workers are far behind. With 2 the
    loop prepared ~60 % of the batches while the worker idled 65 % of the time:
    sustained, it acked 69,400-71,500 events/s against 78,200-79,700 with 8, and the
    store, starved of the GIL, fell further behind (docs/scaling.md).
    """

    def __init__(self, n: int, on_restart: Callable[[], None] | None = None,
                 depth: int = DEFAULT_DEPTH) -> None:
        self.n = n
        self.depth = depth
        self.inline_below = INLINE_BELOW_BYTES
        self.stats = WorkerStats()
        self._on_restart = on_restart
        self._workers: list[_Worker] = []
        self._started = False
        self._stopping = False
        self._spawned = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def ready(self) -> int:
        """Live workers taking batches (0 while starting, or with n = 0)."""
        return sum(1 for w in self._workers if w.ready)

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self._workers if w.ready]

    def stopping(self) -> bool:
        return self._stopping

    async def start(self) -> None:
        """Ready to take batches; the processes start with the first batch worth a worker.

        Until a worker is up (a fraction of a second) batches are prepared in-process,
        so a collector that only ever sees a few small batches starts no process.
        """
        self._started = True
        self._workers = [_Worker(i) for i in range(self.n)]

    def spawn(self) -> None:
        """Start the worker processes now, in the background (once; after start())."""
        if self._spawned or self._stopping or not self._started:
            return
        self._spawned = True
        for w in self._workers:
            self._spawn_soon(w, 0.0)

    def _spawn_soon(self, w: _Worker, delay: float) -> None:
        task = asyncio.get_running_loop().create_task(self._run_worker(w, delay),
                                                      name=f"ingest-worker-{w.index}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_worker(self, w: _Worker, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        if self._stopping:
            return
        loop = asyncio.get_running_loop()
        mine, theirs = socket.socketpair()
        widen(mine)
        try:
            # spawn, not fork: a forked child would inherit the listening socket, the
            # spool's SQLite handles and locks held by the collector's other threads.
            # Started from the event loop's thread, which lives as long as the process
            # (PR_SET_PDEATHSIG is tied to the thread that started the child).
            proc = _SPAWN.Process(target=worker_main, args=(theirs, os.getpid()),
                                  name=f"canhgac-ingest-{w.index}", daemon=True)
            proc.start()
        except Exception as exc:  # e.g. no process slots, or a bad __main__ for spawn
            mine.close()
            log.error("cannot start ingest worker %d (%s); preparing batches in-process",
                      w.index, exc)
            return
        finally:
            theirs.close()
        w.process, w.pid, w.lost = proc, 0, asyncio.Event()
        hello: asyncio.Future[int] = loop.create_future()

        def on_frame(meta: memoryview, blob: memoryview) -> None:
            if not hello.done():
                hello.set_result(pickle.loads(meta))
                return
            fut = w.inflight.popleft()
            try:
                result = _decode(meta, blob)
            except Exception as exc:  # handed to the request that waits
                if not fut.done():
                    fut.set_exception(exc)
                return
            if not fut.done():
                fut.set_result(result)

        def on_lost() -> None:
            w.ready = False
            w.lost.set()
            if not hello.done():
                hello.set_exception(_WorkerGone())
            while w.inflight:
                fut = w.inflight.popleft()
                if not fut.done():
                    fut.set_exception(_WorkerGone())

        transport, _ = await loop.create_connection(lambda: _Frames(on_frame, on_lost), sock=mine)
        w.transport = transport
        try:
            if self.stopping():  # stop() ran while this worker was starting
                transport.close()
            w.pid = await hello
            if self.stopping():  # (a method: the await above may have changed it)
                transport.close()
            else:
                w.ready = True
                w.delay = RESTART_DELAY_SECONDS
                log.info("ingest worker %d started (pid %d)", w.index, w.pid)
            await w.lost.wait()
        except _WorkerGone:
            pass
        finally:
            transport.close()
            await loop.run_in_executor(None, proc.join, 5.0)
            if proc.is_alive():
                log.warning("ingest worker %d (pid %s) did not exit; killing it", w.index, proc.pid)
                proc.kill()
                await loop.run_in_executor(None, proc.join, 1.0)
        if not self._stopping:
            log.error("ingest worker %d (pid %s) exited with %s; its batches are prepared "
                      "in-process, restarting it in %.0f s", w.index, proc.pid, proc.exitcode,
                      w.delay)
            self.stats.restarts += 1
            if self._on_restart is not None:
                self._on_restart()
            self._spawn_soon(w, w.delay)
            w.delay = min(RESTART_DELAY_MAX_SECONDS, w.delay * 2)

    def _pick(self) -> _Worker | None:
        """The least busy live worker with room; None when none is up or all are full.

        When every worker holds ``depth`` batches the event loop prepares the batch
        itself rather than queue it deeper: a burst far beyond what the workers
        can take is then prepared by the loop too.
        """
        best = None
        for w in self._workers:
            if w.ready and len(w.inflight) < self.depth and (
                    best is None or len(w.inflight) < len(best.inflight)):
                best = w
        return best

    async def prepare(self, raw: bytes, gzipped: bool, job: BatchJob,
                      enricher: Enricher) -> Prepared | Refused:
        """``prepare`` in a worker when one is up and the body is worth it, else here.

        ``enricher`` is the main process's (used in-process); a worker's override
        count is added to it so its ``overrides`` counts every batch either way.
        """
        w = None
        worth = self._started and self.n > 0 and len(raw) >= self.inline_below
        if worth:
            self.spawn()
            w = self._pick()
        if w is None or w.transport is None:
            if worth and self.ready:
                self.stats.busy += 1
            else:
                self.stats.inline += 1
            return prepare(raw, gzipped, job, enricher)
        # The worker never needs the agent's secret hash or its last health report.
        wjob = replace(job, agent=replace(job.agent, secret_hash="", heartbeat={}))
        meta = pickle.dumps((gzipped, wjob), protocol=pickle.HIGHEST_PROTOCOL)
        fut: asyncio.Future[Prepared | Refused] = asyncio.get_running_loop().create_future()
        w.inflight.append(fut)
        w.transport.write(_HEADER.pack(len(meta), len(raw)) + meta)
        w.transport.write(raw)
        try:
            result = await fut
        except _WorkerGone:
            self.stats.redone += 1
            return prepare(raw, gzipped, job, enricher)
        self.stats.batches += 1
        if isinstance(result, Prepared):
            enricher.overrides += result.overrides
        return result

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers (after the server stopped taking requests) and wait for them."""
        self._stopping = True
        for w in self._workers:
            w.ready = False
            if w.transport is not None:
                w.transport.close()  # EOF: the worker finishes what it has and exits
        tasks = [t for t in list(self._tasks) if not t.done()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout + 2)
            for t in pending:
                t.cancel()
        for w in self._workers:
            if w.process is not None and w.process.is_alive():
                log.warning("ingest worker %s did not stop; killing it", w.process.pid)
                w.process.kill()


def _decode(meta: memoryview, blob: memoryview) -> Prepared | Refused:
    result: Prepared | Refused | _Failed = pickle.loads(meta)
    if isinstance(result, _Failed):
        raise RuntimeError(f"ingest worker: {result.error}")
    if isinstance(result, Prepared) and len(blob):
        with gc_paused():  # orjson holds the GIL: no other thread allocates meanwhile
            result.events = orjson.loads(blob)
    return result
