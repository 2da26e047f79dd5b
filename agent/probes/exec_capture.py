"""Event-driven process starts: a thread reads the proc connector and /proc at once.

The connector (agent.probes.proc_connector) says "pid N exec'd" the moment it
happens; everything else (argv, executable, parent, user, group, working
directory) is in ``/proc/N`` only while N lives. A process that lives 1 ms is
gone 1 ms later, so the read cannot wait for the event loop: a dedicated thread
blocks in ``recv``, reads ``/proc/N`` straight away with raw ``os`` calls (no
psutil objects), builds the ECS event and hands it to the loop in a bounded
deque, like the network sensor does with packets.

Parents are looked up in the table of processes this thread has already seen
exec (a short-lived child's parent is almost always a long-lived shell or
daemon that exec'd earlier), else read from /proc once and remembered. The table
is bounded (least recently used dropped first).

What cannot be had, stated plainly: a process that exits before its /proc entry
is read still yields a start event with pid, parent and what was readable, and
``canhgac.process.incomplete: true``; a receive-buffer overflow (ENOBUFS) loses
events, which is counted and makes the process probe's /proc poll report the
difference on its next scan.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import os
import select
import socket
import sys
import threading
import time
from collections import OrderedDict
from typing import Any

from agent.probes import proc_connector as pc
from agent.probes.account_names import AccountNames
from canhgac.schema import PROCESS, new_event
from canhgac.timeutil import now_rfc3339

log = logging.getLogger(__name__)

#: the programs whose job is to edit the account files (shadow-utils, passwd, sudo, Debian wrappers)
ACCOUNT_TOOLS: frozenset[str] = frozenset({
    "useradd", "usermod", "userdel", "groupadd", "groupmod", "groupdel", "gpasswd",
    "passwd", "chpasswd", "chgpasswd", "chage", "chsh", "chfn", "newusers", "vipw", "vigr",
    "pwconv", "pwunconv", "grpconv", "grpunconv", "pwck", "grpck", "visudo",
    "adduser", "deluser", "addgroup", "delgroup", "newgrp",
})


class RecentAccountTools:
    """Account tools seen exec'ing lately, for the file integrity probe's attribution.

    Shared in-process state between two probes, kept deliberately tiny: a bounded
    deque of (monotonic time, process fields), written by the exec thread, read by
    the file integrity probe when an account file changes.
    """

    def __init__(self, maxlen: int = 256) -> None:
        self._lock = threading.Lock()
        # (monotonic time, process fields, (mount namespace, root directory))
        self._items: collections.deque[tuple[float, dict[str, Any], tuple[str, str]]] = (
            collections.deque(maxlen=maxlen))
        self.active = False  # is an exec source feeding us at all?

    def note(self, fields: dict[str, Any], view: tuple[str, str]) -> None:
        with self._lock:
            self._items.append((time.monotonic(), fields, view))

    def latest_within(self, seconds: float,
                      view: tuple[str, str] | None = None) -> dict[str, Any] | None:
        """The most recent account tool that exec'd within ``seconds`` and, when ``view``
        is given, saw the same files (same mount namespace and root directory): a
        useradd in a chroot or a container cannot have written this host's /etc/passwd."""
        limit = time.monotonic() - seconds
        with self._lock:
            for at, fields, seen in reversed(self._items):
                if at < limit:
                    return None
                if view is None or seen == view:
                    found: dict[str, Any] = fields
                    return found
        return None

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


RECENT_ACCOUNT_TOOLS = RecentAccountTools()


def _read(path: str, size: int = 65536) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


def _link(path: str) -> str | None:
    try:
        target = os.readlink(path)
    except OSError:
        return None
    return target[:-10] if target.endswith(" (deleted)") else target


Snapshot = tuple[bytes | None, str | None, bytes | None, str | None]


_GONE: Snapshot = (None, None, None, None)


def snapshot(pid: int, proc: str, max_cmd: int) -> Snapshot:
    """The raw /proc facts of a process, read as fast as possible (it may exit any moment):
    command line first, the fact rules need most."""
    base = f"{proc}/{pid}"
    return (_read(f"{base}/cmdline", max_cmd * 2 + 2), _link(f"{base}/exe"),
            _read(f"{base}/status", 4096), _link(f"{base}/cwd"))


def read_process(pid: int, proc: str, max_cmd: int, names: AccountNames,
                 snap: Snapshot | None = None) -> tuple[dict[str, Any], int]:
    """(ECS fields, parent pid) of a live process, read from ``proc``/pid (or from an
    earlier ``snapshot``); parts that are gone are left out. The parent pid is -1 when
    status was unreadable."""
    raw, exe, status, cwd = snap if snap is not None else snapshot(pid, proc, max_cmd)
    p: dict[str, Any] = {"pid": pid}
    out: dict[str, Any] = {"process": p}
    ppid = -1
    comm = None
    if status:
        uid = gid = euid = egid = -1
        for line in status.split(b"\n"):
            if line.startswith(b"Name:"):
                comm = line[5:].strip().decode("utf-8", "replace")
            elif line.startswith(b"PPid:"):
                ppid = int(line[5:])
            elif line.startswith(b"Uid:"):
                parts = line.split()
                uid, euid = int(parts[1]), int(parts[2])
            elif line.startswith(b"Gid:"):
                parts = line.split()
                gid, egid = int(parts[1]), int(parts[2])
                break  # Gid follows Name, PPid and Uid; nothing further is needed
        if euid >= 0:
            out["user"] = _ident(euid, names.user(euid))
            if uid != euid:
                p["real_user"] = _ident(uid, names.user(uid))
        if egid >= 0:
            out["group"] = _ident(egid, names.group(egid))
            if gid != egid:
                p["real_group"] = _ident(gid, names.group(gid))
    if raw:
        args = [a.decode("utf-8", "replace") for a in raw.rstrip(b"\0").split(b"\0")]
        cmd = " ".join(args)
        p["args"] = args[:256]
        p["args_count"] = len(args)
        p["command_line"] = cmd[:max_cmd]
    if exe:
        p["executable"] = exe
        name = os.path.basename(exe)
        # comm is cut at 15 bytes; the executable's base name is the full program name
        p["name"] = name if comm is None or name.startswith(comm) else comm
    elif comm:
        p["name"] = comm
    if cwd:
        p["working_directory"] = cwd
    if ppid >= 0:
        p["parent"] = {"pid": ppid}
    return out, ppid


def file_view(pid: int | str, proc: str = "/proc") -> tuple[str, str]:
    """(mount namespace, root directory) of a process: which files its paths name."""
    return (_link(f"{proc}/{pid}/ns/mnt") or "?", _link(f"{proc}/{pid}/root") or "?")


def _ident(n: int, name: str | None) -> dict[str, Any]:
    return {"id": str(n), "name": name} if name else {"id": str(n)}


def _parent_fields(fields: dict[str, Any]) -> dict[str, Any]:
    p = fields["process"]
    return {k: p[k] for k in ("pid", "name", "executable", "command_line", "args") if k in p}


class ExecCapture(threading.Thread):
    """Owns the connector socket: recv, read /proc, build events, hand over."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop, *, proc: str = "/proc",
                 max_command_line: int = 4096, max_pending: int = 50_000, max_tracked: int = 65_536,
                 end_events: bool = True, max_events_per_second: float = 5000.0) -> None:
        super().__init__(name="canhgac-exec", daemon=True)
        self.sock, self.loop, self.proc = sock, loop, proc
        self.max_cmd, self.max_pending, self.max_tracked = max_command_line, max_pending, max_tracked
        self.end_events = end_events
        self.rate = max_events_per_second
        self.pending: collections.deque[dict[str, Any]] = collections.deque()
        self.wake = asyncio.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.names = AccountNames()
        # pid -> (fields, reported): processes seen exec (reported) or read as parents
        self.table: OrderedDict[int, tuple[dict[str, Any], bool]] = OrderedDict()
        self.counters = {"exec": 0, "exit": 0, "incomplete": 0, "overflows": 0,
                         "dropped": 0, "rate_limited": 0}
        self.lost_since_poll = False  # an overflow happened: the poll must report what we missed
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._budget = self.rate
        self._budget_at = time.monotonic()

    def halt(self) -> None:
        self.stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0")

    def close(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    # ------------------------------------------------------------ per event
    def _allow(self) -> bool:
        """Token bucket: a fork bomb must not flood the agent's queue."""
        if self.rate <= 0:
            return True
        now = time.monotonic()
        self._budget = min(self.rate, self._budget + (now - self._budget_at) * self.rate)
        self._budget_at = now
        if self._budget >= 1:
            self._budget -= 1
            return True
        self.counters["rate_limited"] += 1
        return False

    def _remember(self, pid: int, fields: dict[str, Any], reported: bool) -> None:
        self.table[pid] = (fields, reported)
        self.table.move_to_end(pid)
        if len(self.table) > self.max_tracked:
            self.table.popitem(last=False)

    def _parent(self, ppid: int) -> dict[str, Any]:
        known = self.table.get(ppid)
        if known is None:
            fields, _ = read_process(ppid, self.proc, self.max_cmd, self.names)
            self._remember(ppid, fields, False)
        else:
            fields = known[0]
        return _parent_fields(fields)

    def on_exec(self, pid: int, snap: Snapshot | None = None) -> dict[str, Any] | None:
        fields, ppid = read_process(pid, self.proc, self.max_cmd, self.names, snap)
        p = fields["process"]
        if ppid > 0:
            p["parent"] = self._parent(ppid)
        p["start"] = now_rfc3339()
        self._remember(pid, fields, True)
        self.counters["exec"] += 1
        name = p.get("name")
        if name in ACCOUNT_TOOLS:
            RECENT_ACCOUNT_TOOLS.note(fields, file_view(pid, self.proc))
            self.names.forget()
        extra: dict[str, Any] = {}
        if "command_line" not in p or "executable" not in p:
            self.counters["incomplete"] += 1
            extra["canhgac"] = {"process": {"incomplete": True}}
        if not self._allow():
            return None
        return new_event(PROCESS, kind="event", category=["process"], type=["start"],
                         action="process-started", **fields, **extra)

    def on_exit(self, pid: int, tid: int, code: int) -> dict[str, Any] | None:
        if pid != tid:
            return None  # a thread, not the process
        known = self.table.pop(pid, None)
        if known is None or not known[1]:
            return None  # never reported as started (a fork without exec, or before we ran)
        self.counters["exit"] += 1
        if not self.end_events or not self._allow():
            return None
        fields = known[0]
        proc = {**fields["process"], "end": now_rfc3339(), "exit_code": code >> 8 & 0xFF}
        return new_event(PROCESS, kind="event", category=["process"], type=["end"],
                         action="process-ended", **{**fields, "process": proc})

    def handle(self, data: bytes) -> list[dict[str, Any]]:
        return self.handle_many([data])

    def handle_many(self, datagrams: list[bytes]) -> list[dict[str, Any]]:
        """Two passes: snapshot /proc of every exec'd process first (each may exit any
        moment), then build the events (parents, names, dicts) at leisure."""
        evs = [ev for data in datagrams for ev in pc.parse(data)]
        # A pid that exec'd twice in this batch (sh exec'ing bash) shows only its last
        # image now: that goes with the last exec; the earlier one is reported bare.
        last = {ev.pid: i for i, ev in enumerate(evs) if ev.what == pc.PROC_EVENT_EXEC}
        snaps = {pid: snapshot(pid, self.proc, self.max_cmd) for pid in last}
        out: list[dict[str, Any]] = []
        for i, ev in enumerate(evs):
            doc: dict[str, Any] | None = None
            if ev.what == pc.PROC_EVENT_EXEC:
                snap = snaps[ev.pid] if last[ev.pid] == i else _GONE
                doc = self.on_exec(ev.pid, snap)
            elif ev.what == pc.PROC_EVENT_EXIT:
                doc = self.on_exit(ev.pid, ev.tid, ev.exit_code)
            if doc is not None:
                out.append(doc)
        return out

    # ------------------------------------------------------------ the thread
    def _hand_over(self, events: list[dict[str, Any]]) -> None:
        room = self.max_pending - len(self.pending)
        if room < len(events):
            self.counters["dropped"] += len(events) - max(room, 0)
            self.lost_since_poll = True
            events = events[:max(room, 0)]
        if events:
            self.pending.extend(events)
            self.loop.call_soon_threadsafe(self.wake.set)

    def run(self) -> None:
        # The GIL is handed between threads every 5 ms by default: a reader waiting that
        # long for it finds a 1 ms process gone. 0.5 ms costs the agent little and lets
        # the /proc read happen while the process still exists.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        sock = self.sock
        sock.setblocking(False)
        fd = sock.fileno()
        try:
            while not self.stop.is_set():
                ready, _, _ = select.select([fd, self._wake_r], [], [])
                if fd not in ready:
                    continue
                datagrams: list[bytes] = []
                for _ in range(64):  # what has queued up, then its /proc snapshots at once
                    try:
                        datagrams.append(sock.recv(65536))
                    except BlockingIOError:
                        break
                    except OSError as exc:
                        if exc.errno == errno.ENOBUFS:  # the kernel dropped events for us
                            self.counters["overflows"] += 1
                            self.lost_since_poll = True
                            continue
                        if exc.errno == errno.EINTR:
                            continue
                        raise
                if datagrams:
                    self._hand_over(self.handle_many(datagrams))
        except BaseException as exc:  # surfaced by the probe: the supervisor restarts it
            self.error = exc
            self.loop.call_soon_threadsafe(self.wake.set)
