"""Process start/end: the kernel's process events as they happen, a /proc poll beside.

Starts come from the kernel's process events connector when the agent may
subscribe to it (CAP_NET_ADMIN): every exec, however short-lived, is reported with
its command line, executable, parent, user, group and working directory
(agent.probes.exec_capture; why the connector and not audit: proc_connector).

The poll (one ``listdir(/proc)`` per scan plus a few /proc reads per *new*
process) always runs: it keeps the process table for the inventory and baseline
ends, and it is the whole source when the connector is unavailable (no
capability, a kernel without CONFIG_PROC_EVENTS, ``source: poll``). Polling alone
misses a process that starts and ends between two scans, and a pid reused within
one interval looks like the same process. While the connector runs, the poll
reports starts only after the connector lost events (a receive-buffer overflow),
so nothing is reported twice in normal operation.

The first scan is a baseline: a single ``process`` summary event (kind
``state``) with the number of processes running, never thousands of "start"
events for what was already there. Details of baseline processes are fetched
lazily, so their end events still carry name and command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import psutil

from agent.probes import exec_capture, proc_connector
from agent.probes.base import Emit, Probe, ProbeConfig, ProbeContext
from canhgac.config import Duration, field_meta
from canhgac.schema import PROCESS, new_event
from canhgac.timeutil import from_epoch, now_rfc3339

log = logging.getLogger(__name__)

_ATTRS = ["pid", "ppid", "name", "exe", "cmdline", "username", "create_time", "cwd", "gids"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class ProcessConfig(ProbeConfig):
    interval: Duration = field(default=Duration(5), metadata=field_meta(min=0.5))
    # Longest command line kept (ECS process.command_line); longer ones are cut.
    max_command_line: int = field(default=4096, metadata=field_meta(min=64))
    # At most this many start/end events per scan; beyond it one summary event
    # (a fork bomb must not flood the queue).
    max_events_per_scan: int = field(default=2000, metadata=field_meta(min=10))
    # Kernel threads (ppid 2 on Linux) are noise for a SOC.
    include_kernel_threads: bool = False
    # connector: the kernel's process events (needs CAP_NET_ADMIN); poll: /proc scans only;
    # auto: the connector when it can be opened, else the poll
    source: Literal["auto", "connector", "poll"] = "auto"
    # Process end events from the connector (the poll reports ends of baseline processes).
    end_events: bool = True
    # Connector events per second beyond which starts/ends are counted, not sent (fork bombs).
    max_events_per_second: float = field(default=5000.0, metadata=field_meta(min=0))
    # Events read from the kernel but not yet queued; beyond it they are dropped and counted.
    max_pending_events: int = field(default=50_000, metadata=field_meta(min=100))


@dataclass(slots=True)
class ProcInfo:
    pid: int
    create_time: float
    fields: dict[str, Any] | None = None  # ECS process.* + user.name, filled on demand


def describe(proc: psutil.Process, max_cmd: int) -> dict[str, Any]:
    """ECS ``process.*`` (and ``user.name``) for a live process; missing parts omitted."""
    try:
        info = proc.as_dict(attrs=_ATTRS, ad_value=None)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        info = {"pid": proc.pid}
    args = info.get("cmdline") or []
    cmd = " ".join(args)
    if len(cmd) > max_cmd:
        cmd = cmd[:max_cmd]
    p: dict[str, Any] = {"pid": info["pid"]}
    if info.get("ppid") is not None:
        p["parent"] = {"pid": info["ppid"]}
    if info.get("name"):
        p["name"] = info["name"]
    if info.get("exe"):
        p["executable"] = info["exe"]
    if args:
        p["args"] = args[:256]
        p["args_count"] = len(args)
        p["command_line"] = cmd
    if info.get("cwd"):
        p["working_directory"] = info["cwd"]
    if info.get("create_time"):
        p["start"] = from_epoch(info["create_time"])
    out: dict[str, Any] = {"process": p}
    if info.get("username"):
        out["user"] = {"name": info["username"]}
    gids = info.get("gids")
    if gids is not None:
        out["group"] = {"id": str(gids.effective)}
        with contextlib.suppress(KeyError):
            out["group"]["name"] = grp.getgrgid(gids.effective).gr_name
    return out


class ProcessTable:
    """The diff logic, separate from psutil scanning so it is testable."""

    def __init__(self) -> None:
        self.known: dict[int, ProcInfo] = {}
        self.baselined = False

    def diff(self, current: dict[int, float]) -> tuple[list[int], list[ProcInfo]]:
        """``current`` maps pid -> create_time. Returns (started pids, ended infos)."""
        started: list[int] = []
        ended: list[ProcInfo] = []
        for pid, info in list(self.known.items()):
            ct = current.get(pid)
            if ct is None or (ct and info.create_time and abs(ct - info.create_time) > 0.5):
                ended.append(self.known.pop(pid))
        for pid, ct in current.items():
            if pid not in self.known:
                self.known[pid] = ProcInfo(pid, ct)
                started.append(pid)
        if not self.baselined:
            self.baselined = True
            return [], []
        return started, ended


class ProcessProbe(Probe[ProcessConfig]):
    name = "process"
    datasets = (PROCESS,)

    def __init__(self, config: ProcessConfig, context: ProbeContext) -> None:
        super().__init__(config, context)
        self.table = ProcessTable()
        self.started = 0
        self.ended = 0
        self.suppressed = 0
        self._kernel_threads: set[int] = set()  # skipped pids, remembered so they cost nothing
        self.capture: exec_capture.ExecCapture | None = None
        self.capture_reason = ""
        self._baseline_pids: set[int] = set()

    def _scan(self) -> dict[int, float]:
        """pid -> create_time. Start times are only read for pids not seen before.

        A new pid costs one read of ``/proc/<pid>/stat`` (parent and start time),
        not psutil objects: psutil reads that file three times and /proc/stat once
        for the same two facts. The start time is psutil's own arithmetic
        (start ticks / clock ticks + boot time), so the table compares like with like.
        """
        out: dict[int, float] = {}
        pids = psutil.pids()
        skip = self._kernel_threads
        if skip:
            skip.intersection_update(pids)
        boot: float | None = None
        for pid in pids:
            known = self.table.known.get(pid)
            if known is not None:
                out[pid] = known.create_time
                continue
            if pid in skip:
                continue
            stat = _read_stat(pid)
            if stat is None:
                continue  # gone already
            ppid, start_ticks = stat
            if not self.config.include_kernel_threads and (pid == 2 or ppid == 2):
                skip.add(pid)
                continue
            if boot is None:
                boot = psutil.boot_time()
            out[pid] = start_ticks / CLOCK_TICKS + boot
        return out

    async def run(self, emit: Emit) -> None:
        current = self._scan()
        self.table.diff(current)
        self._baseline_pids = set(self.table.known)
        await emit([new_event(
            PROCESS, kind="state", category=["process"], type=["info"], action="process-baseline",
            message=f"process baseline: {len(current)} processes running",
        )])
        capture = self._open_capture(asyncio.get_running_loop())
        if capture is None:
            await self._poll(emit)
            return
        poll = asyncio.create_task(self._poll(emit))
        try:
            await self._drain(capture, emit, poll)
        finally:
            poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poll
            capture.halt()
            await asyncio.to_thread(capture.join, 2.0)
            if not capture.is_alive():
                capture.close()
            with contextlib.suppress(OSError):
                proc_connector.unsubscribe(capture.sock)
            capture.sock.close()
            exec_capture.RECENT_ACCOUNT_TOOLS.active = False
            self.capture = None

    def _open_capture(self, loop: asyncio.AbstractEventLoop) -> exec_capture.ExecCapture | None:
        """The connector thread, started; None (and the reason kept) when polling only."""
        if self.config.source == "poll":
            self.capture_reason = "source: poll"
            return None
        try:
            sock = proc_connector.open_socket()
        except OSError as exc:
            if self.config.source == "connector":
                raise
            if not self.capture_reason:
                log.warning("process: the kernel's process events connector is unavailable (%s; "
                            "it needs the host's network namespace and, on older kernels, "
                            "CAP_NET_ADMIN): polling /proc every %ss, short-lived processes "
                            "will be missed", exc, self.config.interval)
            self.capture_reason = f"connector unavailable: {exc}"
            return None
        cfg = self.config
        capture = exec_capture.ExecCapture(
            sock, loop, proc=psutil.PROCFS_PATH, max_command_line=cfg.max_command_line,
            max_pending=cfg.max_pending_events, end_events=cfg.end_events,
            max_events_per_second=cfg.max_events_per_second)
        capture.start()
        self.capture, self.capture_reason = capture, ""
        exec_capture.RECENT_ACCOUNT_TOOLS.active = True
        log.info("process: process starts from the kernel's process events connector")
        return capture

    async def _drain(self, capture: exec_capture.ExecCapture, emit: Emit,
                     poll: asyncio.Task[None]) -> None:
        while True:
            await capture.wake.wait()
            capture.wake.clear()
            if capture.error is not None:
                raise RuntimeError(f"process events reader failed: {capture.error!r}")
            if poll.done():
                poll.result()
            while capture.pending:
                batch = [capture.pending.popleft() for _ in range(min(1000, len(capture.pending)))]
                await emit(batch)
                self.started += sum(1 for e in batch if e["event"]["type"] == ["start"])
                self.ended += sum(1 for e in batch if e["event"]["type"] == ["end"])

    async def _poll(self, emit: Emit) -> None:
        while True:
            await asyncio.sleep(self.config.interval)
            events = self.scan_once()
            if events:
                await emit(events)
            self.fill_baseline_details()

    def scan_once(self) -> list[dict[str, Any]]:
        started, ended = self.table.diff(self._scan())
        capture = self.capture
        if capture is not None:
            # The connector reports starts and ends; the poll adds ends of processes that
            # were running before it, and starts only when the connector lost some.
            ended = [i for i in ended if i.pid in self._baseline_pids]
            if capture.lost_since_poll:
                capture.lost_since_poll = False
            else:
                started = []
        for info in ended:
            self._baseline_pids.discard(info.pid)
        events: list[dict[str, Any]] = []
        budget = self.config.max_events_per_scan
        for info in ended:
            if len(events) >= budget:
                break
            fields = info.fields or {"process": {"pid": info.pid}}
            fields = {**fields, "process": {**fields["process"], "end": now_rfc3339()}}
            events.append(new_event(PROCESS, kind="event", category=["process"], type=["end"],
                                    action="process-ended", **fields))
            self.ended += 1
        for pid in started:
            known = self.table.known.get(pid)
            if known is None:
                continue
            info = known
            if len(events) >= budget:
                break
            try:
                info.fields = describe(psutil.Process(pid), self.config.max_command_line)
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                # Gone before we could look: report what we know.
                info.fields = {"process": {"pid": pid}}
            self._add_parent(info.fields)
            events.append(new_event(PROCESS, kind="event", category=["process"], type=["start"],
                                    action="process-started", **info.fields))
            self.started += 1
        over = len(started) + len(ended) - len(events)
        if over > 0:
            self.suppressed += over
            events.append(new_event(
                PROCESS, kind="event", category=["process"], type=["info"],
                action="process-events-suppressed",
                message=f"{over} process start/end events over the per-scan limit "
                        f"({budget}) were not sent",
            ))
        return events

    def _add_parent(self, fields: dict[str, Any]) -> None:
        """process.parent.{executable,command_line,name} from the table, when known."""
        parent = fields["process"].get("parent")
        if not parent:
            return
        known = self.table.known.get(parent["pid"])
        if known is None or known.fields is None:
            return
        pp = known.fields["process"]
        for k in ("name", "executable", "command_line"):
            if k in pp:
                parent[k] = pp[k]

    def fill_baseline_details(self, limit: int = 64) -> None:
        """Fetch details of a few baseline processes per call (spreads the cost)."""
        n = 0
        for info in self.table.known.values():
            if info.fields is None:
                try:
                    info.fields = describe(psutil.Process(info.pid), self.config.max_command_line)
                except (psutil.NoSuchProcess, psutil.ZombieProcess):
                    info.fields = {"process": {"pid": info.pid}}
                n += 1
                if n >= limit:
                    break

    def status(self) -> dict[str, Any]:
        return {
            "tracked": len(self.table.known),
            "started": self.started,
            "ended": self.ended,
            "suppressed": self.suppressed,
            "source": "connector" if self.capture is not None else "poll",
            **({"reason": self.capture_reason} if self.capture_reason else {}),
            **({"connector": dict(self.capture.counters)} if self.capture is not None else {}),
        }


def _read_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, start time in clock ticks since boot) from /proc/<pid>/stat."""
    try:
        with open(f"{psutil.PROCFS_PATH}/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:  # gone (ENOENT, ESRCH), or not readable
        return None
    # The name is in parentheses and may itself contain ") ": fields follow the last ")".
    fields = data[data.rfind(b")") + 2:].split()
    try:
        return int(fields[1]), float(fields[19])
    except (IndexError, ValueError):
        return None


async def _standalone(config: dict[str, Any], state_dir: str) -> None:
    """Run the probe alone, events as NDJSON on stdout (tests, benchmarks, debugging).

    Status lines (``{"ready": ...}``, ``{"status": ...}`` every 0.5 s, ``{"final": ...}``)
    go to the same stream, as the network sensor's runner does.
    """
    import json
    import signal
    import socket
    import sys
    from pathlib import Path

    from canhgac.config import load_section
    from canhgac.tasks import wait_for_event

    cfg = load_section(config, ProcessConfig, "--config")
    probe = ProcessProbe(cfg, ProbeContext("standalone", socket.gethostname(), Path(state_dir)))
    out = sys.stdout

    async def emit(events: list[dict[str, Any]]) -> None:
        out.write("".join(json.dumps(ev) + "\n" for ev in events))
        out.flush()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(probe.run(emit))
    while not stop.is_set() and not task.done():
        await wait_for_event(stop, 0.5)
        await emit([{"status": probe.status()}])
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await emit([{"final": probe.status()}])


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - thin CLI
    from agent.probes.standalone import standalone_main

    standalone_main("python -m agent.probes.process",
                    "run the process probe alone (NDJSON on stdout)",
                    "canhgac-proc-", _standalone, argv)


if __name__ == "__main__":  # pragma: no cover
    main()
