"""The agent process: an asyncio supervisor of independent probes.

Why this shape:
- Every probe is its own task. One that raises is logged, counted and
  restarted with exponential backoff (a fresh instance: its state may be what
  broke it); it never stops the agent or the other probes.
- Everything a probe emits is committed to the local DurableQueue
  (``state_dir/queue.db``) before ``emit`` returns, so events survive collector
  outages and agent restarts; a DeliveryLoop drains the queue to the collector.
  Telemetry and security events go in separate chunks (by ``priority_of``) so a
  full queue drops metrics first, and counts every drop.
- A heartbeat (``agent.health``) every N seconds carries probe states, queue
  depth and the queue's persistent drop counters upstream, and refreshes
  ``state_dir/status.json`` for ``canhgac agent status``.
- SIGTERM/SIGINT: stop probes, give delivery a short flush, close the queue,
  exit 0 — within a few seconds, whatever the collector is doing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from agent.config import AgentConfig, ProbeSpec, resolve_probes
from agent.enroll import Credentials, ensure_private_dir, load_credentials
from agent.health import heartbeat_event, write_status
from agent.identity import REFRESH, refresh
from agent.policy import PolicyState, load_state, merged, save_state
from agent.policy import fetch as fetch_policy
from agent.probes.base import Emit, Probe, ProbeContext
from canhgac import __version__
from canhgac.errors import ConfigError, UserError
from canhgac.ids import uuid7
from canhgac.schema import priority_of
from canhgac.tasks import wait_for_event
from canhgac.timeutil import from_epoch, now_rfc3339
from shipper.delivery import DeliveryConfig, DeliveryLoop
from shipper.output import Output
from shipper.queue import DurableQueue
from shipper.retry import Backoff

log = logging.getLogger(__name__)

OUTPUT_NAME = "collector"
DEFAULT_HEARTBEAT = 30.0


@dataclass
class ProbeState:
    """What the supervisor knows about one probe (reported in every heartbeat)."""

    spec: ProbeSpec
    state: str = "starting"  # starting|running|backoff|done|disabled|unavailable|stopped
    restarts: int = 0
    events: int = 0
    last_error: str = ""
    last_error_at: str = ""
    instance: Probe[Any] | None = None
    task: asyncio.Task[None] | None = None
    datasets: tuple[str, ...] = ()

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state, "restarts": self.restarts, "events": self.events}
        if self.datasets:
            out["datasets"] = list(self.datasets)
        if self.last_error:
            out["last_error"] = self.last_error
            out["last_error_at"] = self.last_error_at
        if self.spec.error:
            out["error"] = self.spec.error
        if self.instance is not None and self.state in ("running", "done"):
            try:
                extra = self.instance.status()
            except Exception as exc:
                extra = {"status_error": repr(exc)}
            if extra:
                out["status"] = extra
        return out


@dataclass
class RuntimeOptions:
    """Knobs for tests and benchmarks; production uses the defaults."""

    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    # A probe that ran this long before failing starts its backoff from scratch.
    healthy_after: float = 60.0
    flush_timeout: float = 2.0
    stop_timeout: float = 1.0
    output_factory: Callable[[AgentConfig, Credentials | None], Output] | None = None
    probes: list[ProbeSpec] | None = None  # bypass the registry (tests)
    signals: bool = True


def _default_output(cfg: AgentConfig, creds: Credentials | None) -> Output:
    from shipper.outputs.http import HttpOutput, HttpOutputConfig

    url = cfg.collector.url or (creds.collector if creds else "")
    token = str(cfg.collector.token) if cfg.collector.token else (creds.token if creds else "")
    if not url or not token:
        raise UserError(
            f"agent is not enrolled (no {cfg.state_dir / 'credentials.json'}): run "
            "`canhgac agent enroll --collector URL --token T --ca FILE` first / "
            "chưa đăng ký agent với collector"
        )
    ca = cfg.collector.ca or (Path(creds.ca) if creds and creds.ca else None)
    return HttpOutput(
        HttpOutputConfig(
            url=url, token=token, ca=ca, timeout=float(cfg.collector.timeout),
            gzip_level=cfg.collector.gzip_level, user_agent=f"canhgac-agent/{__version__}",
        ),
        name=OUTPUT_NAME,
    )


class AgentRuntime:
    def __init__(self, config: AgentConfig, source: str = "(defaults)",
                 options: RuntimeOptions | None = None) -> None:
        self.config = config
        self.source = source
        self.options = options or RuntimeOptions()
        self.state_dir = Path(config.state_dir)
        self.hostname = config.hostname or socket.gethostname()
        self.credentials: Credentials | None = None
        self.queue: DurableQueue | None = None
        self.delivery: DeliveryLoop | None = None
        self.probes: dict[str, ProbeState] = {}
        self.started = time.time()
        self.ephemeral_id = uuid7()
        self.last_delivery = 0.0
        self.emit_errors = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._agent_fields: dict[str, Any] = {}
        self._host_fields: dict[str, Any] = {"hostname": self.hostname, "name": self.hostname}
        self.policy = PolicyState()
        self._policy_lock = asyncio.Lock()

    def _resolve(self, policy_probes: dict[str, Any], version: int | None) -> list[ProbeSpec]:
        """agent.yaml's probes over the policy's, resolved as agent.yaml is (ConfigError)."""
        source = f"{self.source} + policy version {version}"
        combined = dataclasses.replace(self.config, probes=merged(policy_probes, self.config.probes))
        return resolve_probes(combined, source)

    # -- setup ------------------------------------------------------------
    @property
    def heartbeat_interval(self) -> float:
        if self.config.heartbeat_interval is not None:
            return float(self.config.heartbeat_interval)
        if self.credentials and self.credentials.heartbeat_interval:
            return float(self.credentials.heartbeat_interval)
        return DEFAULT_HEARTBEAT

    def _prepare(self) -> None:
        """Everything that can fail with a user error, before anything starts."""
        ensure_private_dir(self.state_dir)
        specs = self.options.probes if self.options.probes is not None else resolve_probes(
            self.config, self.source)
        self.credentials = load_credentials(self.state_dir)
        if self.options.probes is None:
            # The last policy applied, before the collector is even reachable.
            self.policy = load_state(self.state_dir)
            if self.policy.version is not None:
                try:
                    specs = self._resolve(self.policy.probes, self.policy.version)
                except ConfigError as exc:
                    log.error("stored policy version %s no longer applies (%s): agent.yaml "
                              "alone until the collector sends one", self.policy.version, exc)
                    self.policy = PolicyState(error=str(exc))
        if not self.config.hostname and self.credentials and self.credentials.hostname:
            # The name it was enrolled under is the one the collector shows: use it.
            self.hostname = self.credentials.hostname
            self._host_fields = {"hostname": self.hostname, "name": self.hostname}
        factory = self.options.output_factory or _default_output
        self._output = factory(self.config, self.credentials)
        agent_id = self.credentials.agent_id if self.credentials else ""
        self._agent_fields = {
            "type": "canhgac", "version": __version__, "name": self.hostname,
            "ephemeral_id": self.ephemeral_id,
        }
        if agent_id:
            self._agent_fields["id"] = agent_id
        for spec in specs:
            st = ProbeState(spec, state=spec.status if spec.status != "enabled" else "starting")
            if spec.cls is not None:
                st.datasets = tuple(spec.cls.datasets)
            if spec.status == "unavailable":
                log.error("probe %s is unavailable: %s", spec.name, spec.error)
            self.probes[spec.name] = st

    # -- emit ---------------------------------------------------------------
    def _stamp(self, event: dict[str, Any]) -> None:
        event.setdefault("agent", self._agent_fields)
        host = event.get("host")
        if host is None:
            event["host"] = self._host_fields
        elif isinstance(host, dict):
            host.setdefault("hostname", self.hostname)
            host.setdefault("name", self.hostname)

    async def emit(self, events: list[dict[str, Any]]) -> int:
        """Commit ``events`` to the queue, one chunk per priority. Returns events dropped."""
        assert self.queue is not None
        by_priority: dict[int, list[bytes]] = {}
        for event in events:
            self._stamp(event)
            dataset = (event.get("event") or {}).get("dataset")
            by_priority.setdefault(priority_of(dataset), []).append(
                orjson.dumps(event, default=_json_default))
        dropped = 0
        # Security first: if the queue is tight, it gets the room.
        for priority in sorted(by_priority, reverse=True):
            result = await self.queue.append(by_priority[priority], priority)
            dropped += result.dropped
        return dropped

    def _emit_for(self, st: ProbeState) -> Emit:
        async def emit(events: list[dict[str, Any]]) -> None:
            if not events:
                return
            await self.emit(events)
            st.events += len(events)

        return emit

    # -- supervision --------------------------------------------------------
    async def _supervise(self, st: ProbeState) -> None:
        spec = st.spec
        assert spec.cls is not None and spec.config is not None
        backoff = Backoff(self.options.backoff_initial, self.options.backoff_max)
        probe_dir = self.state_dir / "probes" / spec.name
        while True:
            began = time.monotonic()
            creds = self.credentials
            # Built at each (re)start: a level the collector changed applies from here.
            ctx = ProbeContext(agent_id=creds.agent_id if creds else "", hostname=self.hostname,
                               state_dir=probe_dir, level=creds.level if creds else None)
            try:
                probe_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                probe = spec.cls(spec.config, ctx)
                st.instance = probe
                st.state = "running"
                await probe.run(self._emit_for(st))
            except asyncio.CancelledError:
                st.state = "stopped"
                raise
            except Exception as exc:
                st.restarts += 1
                message = f"{type(exc).__name__}: {exc}"
                if time.monotonic() - began >= self.options.healthy_after:
                    backoff.reset()
                delay = backoff.next_delay()
                # Full traceback the first time an error is seen, one line after that.
                log.error("probe %s failed (%s); restart #%d in %.1fs", spec.name, message,
                          st.restarts, delay, exc_info=message != st.last_error)
                st.last_error = message
                st.last_error_at = now_rfc3339()
                st.state = "backoff"
                if await wait_for_event(self._stop, delay):
                    return
                continue
            else:
                st.state = "done"  # e.g. a one-shot probe
                return

    # -- health ---------------------------------------------------------------
    async def snapshot(self) -> dict[str, Any]:
        assert self.queue is not None
        stats = (await self.queue.stats()).get(OUTPUT_NAME)
        counters = dict(self.queue.counters)
        datasets = sorted({d for st in self.probes.values() if st.state in ("running", "done")
                           for d in st.datasets})
        queue = {
            "depth": stats.pending_events if stats else 0,
            "chunks": stats.pending_chunks if stats else 0,
            "oldest_age_seconds": round(stats.oldest_pending_age_seconds, 1) if stats else 0.0,
            "bytes": self.queue.bytes_used,
            "max_bytes": self.queue.max_bytes,
            "dropped_telemetry": counters.get("dropped_telemetry", 0),
            "refused_security": counters.get("refused_security", 0),
            "appended_events": counters.get("appended_events", 0),
            "dead_letter": counters.get(f"dead_letter:{OUTPUT_NAME}", 0),
        }
        delivery: dict[str, Any] = {}
        if self.delivery is not None:
            ds = self.delivery.stats
            delivery = {
                "up": ds.up,
                "delivered_events": ds.delivered_events,
                "dead_events": ds.dead_events,
                "batches": ds.batches,
                "send_errors": ds.send_errors,
                "last_error": ds.last_error,
                "last_success": from_epoch(ds.last_success) if ds.last_success else None,
            }
            extra = getattr(self._output, "status", None)
            if callable(extra):
                delivery.update(extra())
        now = time.time()
        return {
            "pid": os.getpid(),
            "version": __version__,
            "hostname": self.hostname,
            "agent_id": self._agent_fields.get("id", ""),
            "system_id": self.credentials.system_id if self.credentials else "",
            "started": from_epoch(self.started),
            "uptime_seconds": int(now - self.started),
            "updated": from_epoch(now),
            "updated_epoch": now,
            "heartbeat_interval": self.heartbeat_interval,
            "state_dir": str(self.state_dir.resolve()),
            "probes": {name: st.snapshot() for name, st in self.probes.items()},
            "policy": self.policy.report(),
            "datasets": datasets,
            "queue": queue,
            "delivery": delivery,
            "rss_bytes": _rss_bytes(),
        }

    async def heartbeat(self, state: str = "running") -> dict[str, Any]:
        snap = await self.snapshot()
        snap["state"] = state
        await self.emit([heartbeat_event(snap, state)])
        write_status(self.state_dir, snap)
        return snap

    async def _heartbeat_loop(self) -> None:
        while not self._stop.is_set():
            try:
                await self.heartbeat()
            except Exception:
                log.exception("heartbeat failed")
            await wait_for_event(self._stop, self.heartbeat_interval)

    async def _identity_loop(self) -> None:
        while not self._stop.is_set():
            if self.credentials is not None and self.options.output_factory is None:
                try:
                    self.credentials = await refresh(self.credentials, self.state_dir)
                except Exception as exc:  # never stops the agent
                    log.warning("identity refresh failed: %s", exc)
            await wait_for_event(self._stop, REFRESH)

    async def _policy_loop(self) -> None:
        """Ask for the policy with every heartbeat interval (a 304 costs nothing)."""
        while not self._stop.is_set():
            try:
                await self.check_policy()
            except Exception as exc:  # the collector may be away: the policy in force stays
                log.debug("policy check failed: %s", exc)
            await wait_for_event(self._stop, self.heartbeat_interval)

    async def check_policy(self) -> bool:
        """Fetch and apply a new policy; True when one was applied (one check at a time)."""
        async with self._policy_lock:
            return await self._check_policy()

    async def _check_policy(self) -> bool:
        if self.credentials is None:
            return False
        status, body, etag = await fetch_policy(self.credentials, self.policy.etag)
        if status != 200 or body is None:
            return False
        version, probes = body.get("version"), body.get("probes")
        if not isinstance(version, int) or not isinstance(probes, dict):
            self.policy.error = "the collector's policy answer has no version or probes"
            return False
        try:
            specs = self._resolve(probes, version)
        except ConfigError as exc:
            if self.policy.refused_version != version:
                log.error("policy version %d refused, version %s stays in force: %s",
                          version, self.policy.version, exc)
            self.policy.error, self.policy.refused_version = str(exc), version
            return False
        changed = await self._apply(specs)
        self.policy = PolicyState(version=version, etag=etag, probes=probes)
        await asyncio.to_thread(save_state, self.state_dir, self.policy)
        log.info("policy version %d applied; probes restarted: %s", version,
                 ", ".join(changed) or "none")
        return True

    async def _apply(self, specs: list[ProbeSpec]) -> list[str]:
        """Restart only the probes whose status or section changed."""
        changed = []
        for spec in specs:
            old = self.probes.get(spec.name)
            if old is not None and (old.spec.status, old.spec.config) == (spec.status, spec.config):
                continue
            changed.append(spec.name)
            if old is not None and old.task is not None:
                old.task.cancel()
                await asyncio.wait([old.task], timeout=5.0)
                if old.task in self._tasks:
                    self._tasks.remove(old.task)
            st = ProbeState(spec, state=spec.status if spec.status != "enabled" else "starting")
            if spec.cls is not None:
                st.datasets = tuple(spec.cls.datasets)
            self.probes[spec.name] = st
            if spec.status == "enabled" and not self._stop.is_set():
                st.task = asyncio.create_task(self._supervise(st), name=f"probe-{spec.name}")
                self._tasks.append(st.task)
        return changed

    def _on_delivered(self, lines: list[bytes]) -> None:
        self.last_delivery = time.time()

    # -- lifecycle --------------------------------------------------------------
    def request_stop(self) -> None:
        if not self._stop.is_set():
            log.info("stopping agent")
            self._stop.set()

    async def start(self) -> None:
        self._prepare()
        self.queue = DurableQueue(
            self.state_dir / "queue.db", max_bytes=self.config.queue.max_bytes,
            outputs=(OUTPUT_NAME,),
        )
        await self.queue.open()
        self.delivery = DeliveryLoop(
            self.queue, self._output,
            DeliveryConfig(
                batch_events=self.config.collector.batch_events,
                batch_bytes=self.config.collector.batch_bytes,
                idle_wait=float(self.config.collector.flush_interval),
            ),
            on_delivered=self._on_delivered,
        )
        await self.delivery.start()
        for st in self.probes.values():
            if st.spec.status == "enabled":
                st.task = asyncio.create_task(self._supervise(st), name=f"probe-{st.spec.name}")
                self._tasks.append(st.task)
        await asyncio.sleep(0)  # let probes reach their first await before the first heartbeat
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name="heartbeat"))
        self._tasks.append(asyncio.create_task(self._identity_loop(), name="identity"))
        if self.options.probes is None and self.options.output_factory is None:
            self._tasks.append(asyncio.create_task(self._policy_loop(), name="policy"))
        running = [n for n, st in self.probes.items() if st.spec.status == "enabled"]
        log.info("agent %s started on %s: probes %s; heartbeat every %gs; queue %s",
                 self._agent_fields.get("id", "(not enrolled)"), self.hostname,
                 ", ".join(running) or "none", self.heartbeat_interval, self.queue.path)

    async def stop(self) -> None:
        """Stop probes, flush briefly, close the queue. Bounded to a few seconds."""
        self._stop.set()
        for t in self._tasks:
            t.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1.0)
        for st in self.probes.values():
            if st.state in ("running", "backoff", "starting"):
                st.state = "stopped"
        snap: dict[str, Any] | None = None
        if self.queue is not None:
            try:
                snap = await asyncio.wait_for(self.heartbeat("stopping"), 1.0)
            except Exception as exc:
                log.warning("final heartbeat not written: %s", exc)
        if self.delivery is not None:
            if self.delivery.stats.up:
                await self.delivery.flush(self.options.flush_timeout)
            await self.delivery.stop(self.options.stop_timeout)
        if self.queue is not None:
            if snap is not None:
                try:
                    stats = (await self.queue.stats()).get(OUTPUT_NAME)
                    snap["queue"]["depth"] = stats.pending_events if stats else 0
                except Exception:
                    pass
                snap["state"] = "stopped"
                snap["updated"] = now_rfc3339()
                snap["updated_epoch"] = time.time()
                write_status(self.state_dir, snap)
            await self.queue.close()
            log.info("agent stopped")

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (or request_stop). Returns the exit code."""
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        try:
            if self.options.signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, self.request_stop)
                    installed.append(sig)
            await self.start()
            await self._stop.wait()
        finally:
            await self.stop()
            for sig in installed:
                loop.remove_signal_handler(sig)
        return 0


def _json_default(value: Any) -> Any:
    """Only called for types orjson does not know (Duration, Path, sets): never hot."""
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
