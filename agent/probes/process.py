"""Process start/end, by diffing the process table between scans.

Why a diff and not the kernel's process events: it needs no root, no audit
rules and no eBPF, and costs one ``listdir(/proc)`` per scan plus a few /proc
reads per *new* process. The price, stated plainly: a process that starts and
ends between two scans is not seen (the security probes of a later issue use
auditd for that), and a pid reused within one interval looks like the same
process (rare: Linux hands out pids up to pid_max before wrapping).

The first scan is a baseline: a single ``process`` summary event (kind
``state``) with the number of processes running, never thousands of "start"
events for what was already there. Details of baseline processes are fetched
lazily, so their end events still carry name and command line.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import psutil

from agent.probes.base import Emit, Probe, ProbeConfig, ProbeContext
from canhgac.config import Duration, field_meta
from canhgac.schema import PROCESS, new_event
from canhgac.timeutil import from_epoch, now_rfc3339

log = logging.getLogger(__name__)

_ATTRS = ["pid", "ppid", "name", "exe", "cmdline", "username", "create_time", "cwd"]
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
        await emit([new_event(
            PROCESS, kind="state", category=["process"], type=["info"], action="process-baseline",
            message=f"process baseline: {len(current)} processes running",
        )])
        while True:
            await asyncio.sleep(self.config.interval)
            events = self.scan_once()
            if events:
                await emit(events)
            self.fill_baseline_details()

    def scan_once(self) -> list[dict[str, Any]]:
        started, ended = self.table.diff(self._scan())
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
