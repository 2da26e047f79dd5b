"""File integrity probe: inotify for real time, a periodic hash scan for certainty.

Every check, real-time or scan, compares a path's current state with the
baseline (the last state we reported) and reports only differences, then moves
the baseline. That single rule is what makes each change reported once: a file
written ten times in a burst, seen again by the scan, or seen by the rescan
after an inotify overflow still differs from the baseline only once.

inotify watches directories, never files: tools replace /etc/passwd and
friends by renaming a new file over the old one, which a watch on the old
inode would miss. A watched single file is its parent directory plus a name
filter.

The baseline lives in SQLite (state_dir) and is updated only after the events
describing a change were emitted, so a crash between the two repeats a report
rather than losing it. At start, a full scan against the stored baseline finds
what changed while the agent was stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from agent.probes import exec_capture
from agent.probes import inotify as ino
from agent.probes.account_names import AccountNames
from agent.probes.base import Emit, Probe, ProbeConfig, ProbeContext
from agent.probes.fim_scan import Excluder, RateLimiter, expand, record, walk, walk_dirs
from agent.probes.fim_store import BaselineStore, FileRecord
from canhgac.config import Duration, field_meta
from canhgac.schema import FILE, new_event
from canhgac.timeutil import from_epoch

log = logging.getLogger(__name__)

#: where the state before a change goes: ECS has no "previous" field set
PREVIOUS_FIELD = "previous"

DEFAULT_PATHS: tuple[str, ...] = (
    "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow",
    "/etc/sudoers", "/etc/sudoers.d",
    "/etc/ssh",
    "/etc/systemd/system",
    "/etc/cron*", "/var/spool/cron",
    "/etc/ld.so.preload",
)
#: the files only account tools should write (see agent.probes.exec_capture.ACCOUNT_TOOLS)
ACCOUNT_FILES: tuple[str, ...] = (
    "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/sudoers", "/etc/sudoers.d/*",
)
#: binaries: many files, hashed only for level 3 and above
BINARY_PATHS: tuple[str, ...] = ("/usr/bin", "/usr/sbin", "/bin", "/sbin")


def default_paths(level: int | None) -> list[str]:
    paths = list(DEFAULT_PATHS)
    if level is not None and level >= 3:
        paths += BINARY_PATHS
    return paths


@dataclass
class FileIntegrityConfig(ProbeConfig):
    #: None: the defaults for the system's level (binary dirs from level 3)
    paths: list[str] | None = None
    #: added to ``paths`` (or to the defaults)
    extra_paths: list[str] = field(default_factory=list)
    #: glob patterns matched against the full path and the base name
    exclude: list[str] = field(default_factory=list)
    scan_interval: Duration = field(default=Duration(3600), metadata=field_meta(min=1))
    #: 0 = unlimited
    max_files_per_second: float = field(default=2000.0, metadata=field_meta(min=0))
    max_bytes_per_second: float = field(default=32.0 * 1024 * 1024, metadata=field_meta(min=0))
    #: larger regular files are tracked by size/mtime/mode/owner only
    max_hash_size: int = field(default=256 * 1024 * 1024, metadata=field_meta(min=0))
    #: quiet time after the last inotify event before a path is checked
    settle: Duration = field(default=Duration(0.3), metadata=field_meta(min=0, max=60))
    recursive: bool = True
    batch: int = field(default=500, metadata=field_meta(min=1, max=100_000))
    #: files (globs) whose changes are attributed to an account tool or not
    #: (``canhgac.file.writer``: account_tool, other or unknown)
    account_files: list[str] = field(default_factory=lambda: list(ACCOUNT_FILES))
    #: an account tool (useradd, usermod, passwd, vipw, visudo...) that exec'd this long
    #: before a change to an account file is taken as its writer
    account_tool_window: Duration = field(default=Duration(10), metadata=field_meta(min=0.1))


_ALL = None  # a watched directory whose every entry matters


def _file_fields(r: FileRecord, names: AccountNames) -> dict[str, Any]:
    f: dict[str, Any] = {
        "path": r.path,
        "name": os.path.basename(r.path),
        "directory": os.path.dirname(r.path),
        "type": r.type,
        "size": r.size,
        "mode": f"{r.mode:04o}",
        "uid": str(r.uid),
        "gid": str(r.gid),
        "mtime": from_epoch(r.mtime_ns / 1e9),
        "inode": str(r.inode),
    }
    owner, group = names.user(r.uid), names.group(r.gid)
    if owner:
        f["owner"] = owner
    if group:
        f["group"] = group
    if r.sha256:
        f["hash"] = {"sha256": r.sha256}
    if r.target is not None:
        f["target_path"] = r.target
    return f


def changes_between(old: FileRecord, new: FileRecord) -> list[str]:
    """What differs that matters. mtime alone on a hashed file is not a change (touch)."""
    out = []
    if old.type != new.type:
        out.append("type")
    if old.sha256 != new.sha256:
        out.append("hash")
    if old.target != new.target:
        out.append("target_path")
    if old.mode != new.mode:
        out.append("mode")
    if old.uid != new.uid:
        out.append("uid")
    if old.gid != new.gid:
        out.append("gid")
    if new.type == "file" and new.sha256 is None:
        # Not hashed (too big, unreadable): size and mtime are all we have.
        if old.size != new.size:
            out.append("size")
        if old.mtime_ns != new.mtime_ns:
            out.append("mtime")
    elif "hash" in out and old.size != new.size:
        out.append("size")
    return out


class FileIntegrityProbe(Probe[FileIntegrityConfig]):
    name: ClassVar[str] = "file_integrity"
    datasets: ClassVar[tuple[str, ...]] = (FILE,)
    default_enabled: ClassVar[bool] = True

    def __init__(self, config: FileIntegrityConfig, context: ProbeContext) -> None:
        super().__init__(config, context)
        paths = self.config.paths if self.config.paths is not None else default_paths(context.level)
        self.paths = [os.path.normpath(p) for p in [*paths, *self.config.extra_paths]]
        self.excluded = Excluder(self.config.exclude)
        self.limiter = RateLimiter(self.config.max_files_per_second, self.config.max_bytes_per_second)
        self.names = AccountNames()
        self.baseline: dict[str, FileRecord] = {}
        self.store: BaselineStore | None = None
        self.inotify: ino.Inotify | None = None
        self._watch_filter: dict[str, set[str] | None] = {}  # dir -> names (None: all)
        self._wd_dir: dict[int, str] = {}
        self._dirty: set[str] = set()
        self._last_event = 0.0
        self._wake = asyncio.Event()
        self._rescan = asyncio.Event()
        self._checked_at: dict[str, int] = {}  # path -> check sequence number
        self._seq = 0
        self._unreadable: set[str] = set()
        self.ready = asyncio.Event()
        self.counters = {"overflows": 0, "rescans": 0, "scans": 0, "events": 0,
                         "watch_failures": 0, "inotify_events": 0}
        self._last_scan: dict[str, Any] = {}
        self._roots_cache: list[str] = []
        self._cmp_lock = asyncio.Lock()

    # ------------------------------------------------------------ watching
    def _roots(self) -> list[str]:
        return expand(self.paths)

    def _is_covered(self, path: str) -> bool:
        """Is ``path`` one of the configured paths or below one of them?"""
        if self.excluded(path):
            return False
        for root in self._roots_cache:
            if path == root or (self.config.recursive and path.startswith(root.rstrip("/") + "/")):
                return True
        return False

    def _add_watch(self, directory: str, names: set[str] | None) -> None:
        if self.inotify is None:
            return
        if directory in self._watch_filter:
            cur = self._watch_filter[directory]
            if cur is None or names is None:
                self._watch_filter[directory] = None
            else:
                cur |= names
            return
        try:
            wd = self.inotify.add_watch(directory)
        except OSError as exc:
            self.counters["watch_failures"] += 1
            log.warning("file_integrity: cannot watch %s: %s (the periodic scan still covers it)",
                        directory, exc.strerror)
            return
        self._wd_dir[wd] = directory
        self._watch_filter[directory] = None if names is None else set(names)

    def _watch_tree(self, root: str) -> None:
        # The parent too, for the root's own name: a root deleted and recreated (or
        # not there yet) is seen, and a directory root gets its watches back.
        parent = os.path.dirname(root) or "/"
        if parent != root and os.path.isdir(parent):
            self._add_watch(parent, {os.path.basename(root)})
        try:
            st = os.lstat(root)
        except OSError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            self._add_watch(root, _ALL)
            if self.config.recursive:
                for p in walk_dirs(root, self.excluded):
                    self._add_watch(p, _ALL)

    def _setup_watches(self) -> None:
        try:
            self.inotify = ino.Inotify()
        except OSError as exc:
            log.warning("file_integrity: inotify unavailable (%s): periodic scans only",
                        exc.strerror)
            self.inotify = None
            return
        for root in self._roots_cache:
            self._watch_tree(root)
        # Glob roots (/etc/cron*) may gain members: watch the directory they live in.
        for pattern in self.paths:
            if any(c in pattern for c in "*?["):
                parent = os.path.dirname(pattern)
                if os.path.isdir(parent) and not any(c in parent for c in "*?["):
                    self._add_watch(parent, {"\0glob:" + os.path.basename(pattern)})

    def _name_matches(self, names: set[str] | None, name: str) -> bool:
        if names is None or not name:
            return True
        if name in names:
            return True
        return any(n.startswith("\0glob:") and fnmatch.fnmatchcase(name, n[6:]) for n in names)

    def _on_inotify(self) -> None:
        assert self.inotify is not None
        try:
            events = self.inotify.read_events()
        except OSError as exc:
            log.warning("file_integrity: inotify read failed: %s", exc)
            return
        for ev in events:
            self.counters["inotify_events"] += 1
            if ev.mask & ino.IN_Q_OVERFLOW:
                self.counters["overflows"] += 1
                log.warning("file_integrity: inotify queue overflow: full rescan")
                self._rescan.set()
                continue
            directory = self._wd_dir.get(ev.wd)
            if directory is None:
                continue
            if ev.mask & ino.IN_IGNORED:
                self._wd_dir.pop(ev.wd, None)
                self._watch_filter.pop(directory, None)
                continue
            if not self._name_matches(self._watch_filter.get(directory), ev.name):
                continue
            path = os.path.join(directory, ev.name) if ev.name else directory
            if ev.mask & (ino.IN_DELETE_SELF | ino.IN_MOVE_SELF):
                path = directory
            if not self._is_covered(path) and path not in self._roots_cache:
                if self._glob_root(path):
                    self._roots_cache.append(path)
                else:
                    continue
            self._dirty.add(path)
            if (ev.mask & (ino.IN_CREATE | ino.IN_MOVED_TO) and os.path.isdir(path)
                    and not os.path.islink(path)):
                # A new directory: watch it, and check what was put in it before the
                # watch existed.
                self._watch_tree(path)
                self._dirty.update(walk([path], self.excluded, self.config.recursive))
            if ev.mask & ino.IN_ISDIR and ev.mask & (ino.IN_DELETE | ino.IN_MOVED_FROM):
                prefix = path + "/"
                self._dirty.update(p for p in self.baseline if p.startswith(prefix))
        if events:
            self._last_event = time.monotonic()
            self._wake.set()

    def _glob_root(self, path: str) -> bool:
        return any(any(c in p for c in "*?[") and fnmatch.fnmatchcase(path, p)
                   for p in self.paths) and not self.excluded(path)

    # ------------------------------------------------------------ checking
    def _event(self, old: FileRecord | None, new: FileRecord | None) -> dict[str, Any] | None:
        ev = self._change_event(old, new)
        return None if ev is None else self._attribute(ev)

    def _change_event(self, old: FileRecord | None,
                      new: FileRecord | None) -> dict[str, Any] | None:
        if old is None and new is None:
            return None
        if old is None:
            assert new is not None
            return new_event(FILE, category=["file"], type=["creation"], action="file_created",
                             file=_file_fields(new, self.names))
        if new is None:
            ev = new_event(FILE, category=["file"], type=["deletion"], action="file_deleted",
                           file=_file_fields(old, self.names))
            return ev
        changed = changes_between(old, new)
        if not changed:
            return None
        content = any(c in changed for c in ("hash", "type", "target_path", "size"))
        ev = new_event(FILE, category=["file"], type=["change"],
                       action="file_modified" if content else "file_attributes_modified",
                       file=_file_fields(new, self.names))
        prev = _file_fields(old, self.names)
        for k in ("path", "name", "directory", "inode"):
            prev.pop(k, None)
        ev["canhgac"] = {"file": {PREVIOUS_FIELD: prev, "changes": changed}}
        return ev

    def _attribute(self, ev: dict[str, Any]) -> dict[str, Any]:
        """Who wrote an account file: an account tool, something else, or unknown.

        inotify does not say which process wrote; the process probe's exec capture
        does say which account tools ran. A change within ``account_tool_window`` of
        an account tool's exec is the tool's (its process fields are attached); with
        exec capture running and no such tool, the writer was something else; without
        exec capture, unknown. Heuristic by design (docs/agent.md says what it misses).
        """
        path = ev["file"]["path"]
        if not any(fnmatch.fnmatchcase(path, pat) for pat in self.config.account_files):
            return ev
        recent = exec_capture.RECENT_ACCOUNT_TOOLS
        tool = recent.latest_within(self.config.account_tool_window,
                                    exec_capture.file_view("self"))
        if tool is not None:
            writer = "account_tool"
            ev["process"] = {k: v for k, v in tool["process"].items() if k != "args"}
            if "user" in tool:
                ev["user"] = tool["user"]
        else:
            writer = "other" if recent.active else "unknown"
        ev.setdefault("canhgac", {}).setdefault("file", {})["writer"] = writer
        return ev

    async def _compare(self, results: list[tuple[str, FileRecord | None]], emit: Emit,
                       seq_floor: int | None) -> int:
        """Report differences against the baseline, emit, then move the baseline.

        Serialised: a scan and a real-time check must not both judge one path
        against the same (old) baseline."""
        async with self._cmp_lock:
            return await self._compare_locked(results, emit, seq_floor)

    async def _compare_locked(self, results: list[tuple[str, FileRecord | None]], emit: Emit,
                              seq_floor: int | None) -> int:
        events: list[dict[str, Any]] = []
        upserts: list[FileRecord] = []
        deletes: list[str] = []
        reported = 0

        async def flush() -> None:
            nonlocal events, upserts, deletes, reported
            if events:
                await emit(events)
                reported += len(events)
                self.counters["events"] += len(events)
            assert self.store is not None
            await asyncio.to_thread(self.store.apply, upserts, deletes)
            for r in upserts:
                self.baseline[r.path] = r
            for p in deletes:
                self.baseline.pop(p, None)
            events, upserts, deletes = [], [], []

        pending: dict[str, FileRecord | None] = {}
        for path, new in results:
            if seq_floor is not None and self._checked_at.get(path, -1) > seq_floor:
                continue  # a real-time check saw a newer state while the scan ran
            pending[path] = new
        for path, new in pending.items():
            old = self.baseline.get(path)
            ev = self._event(old, new)
            if ev is not None:
                events.append(ev)
            if new is None:
                if old is not None:
                    deletes.append(path)
            elif old != new:
                upserts.append(new)
            if len(events) >= self.config.batch or len(upserts) + len(deletes) >= 5000:
                await flush()
        await flush()
        return reported

    def _check_paths(self, paths: list[str]) -> list[tuple[str, FileRecord | None]]:
        unreadable: list[str] = []
        out = [(p, record(p, self.config.max_hash_size, None, unreadable)) for p in paths]
        self._note_unreadable(unreadable)
        return out

    def _note_unreadable(self, paths: list[str]) -> None:
        new = [p for p in paths if p not in self._unreadable]
        if new:
            self._unreadable.update(new)
            log.warning("file_integrity: %d file(s) not readable, tracked without hash (grant "
                        "CAP_DAC_READ_SEARCH): %s", len(self._unreadable), ", ".join(new[:5]))

    def _scan(self) -> tuple[list[tuple[str, FileRecord | None]], dict[str, Any]]:
        """Full walk + hash of every root (worker thread, rate-limited)."""
        t0 = time.monotonic()
        unreadable: list[str] = []
        results: list[tuple[str, FileRecord | None]] = []
        seen: set[str] = set()
        nbytes = 0
        for p in walk(self._roots_cache, self.excluded, self.config.recursive):
            r = record(p, self.config.max_hash_size, self.limiter, unreadable)
            seen.add(p)
            results.append((p, r))
            if r is not None and r.sha256 is not None:
                nbytes += r.size
        for p in list(self.baseline):
            if p not in seen:
                results.append((p, None))
        self._note_unreadable(unreadable)
        dt = time.monotonic() - t0
        return results, {"files": len(seen), "bytes": nbytes, "seconds": round(dt, 3)}

    async def full_scan(self, emit: Emit, *, report: bool = True) -> int:
        roots = self._roots()
        self._roots_cache = roots + [r for r in self._roots_cache if r not in roots]
        floor = self._seq
        results, stats = await asyncio.to_thread(self._scan)
        self.counters["scans"] += 1
        self._last_scan = stats
        if not report:
            assert self.store is not None
            upserts = [r for _, r in results if r is not None]
            await asyncio.to_thread(self.store.apply, upserts, [])
            self.baseline.update({r.path: r for r in upserts})
            return 0
        return await self._compare(results, emit, floor)

    async def _realtime(self, emit: Emit) -> None:
        paths = sorted(self._dirty)
        self._dirty.clear()
        self._seq += 1
        for p in paths:
            self._checked_at[p] = self._seq
        results = await asyncio.to_thread(self._check_paths, paths)
        await self._compare(results, emit, None)
        if len(self._checked_at) > 100_000:
            self._checked_at.clear()

    # ------------------------------------------------------------ run
    async def run(self, emit: Emit) -> None:
        state = Path(self.context.state_dir)
        os.makedirs(state, exist_ok=True)
        self.store = BaselineStore(state / "fim_baseline.sqlite")
        self.baseline = await asyncio.to_thread(self.store.load)
        self._roots_cache = self._roots()
        loop = asyncio.get_running_loop()
        scan: asyncio.Task[int] | None = None
        self._setup_watches()  # before the scan: nothing changes unseen in between
        if self.inotify is not None:
            loop.add_reader(self.inotify.fileno(), self._on_inotify)
        try:
            first = self.store.get_meta("initialized") is None
            await self.full_scan(emit, report=not first)
            if first:
                self.store.set_meta("initialized", from_epoch(time.time()))
                log.info("file_integrity: baseline created: %d paths", len(self.baseline))
            self.ready.set()
            next_scan = time.monotonic() + self.config.scan_interval
            # Scans run beside the real-time loop: a long scan of /usr/bin must not
            # delay the report of a change to /etc/shadow.
            while True:
                timeout = max(0.0, next_scan - time.monotonic())
                if self._dirty:
                    quiet = time.monotonic() - self._last_event
                    timeout = min(timeout, max(0.0, self.config.settle - quiet))
                waiters = [asyncio.ensure_future(self._wake.wait()),
                           asyncio.ensure_future(self._rescan.wait())]
                if scan is not None:
                    waiters.append(scan)  # type: ignore[arg-type]
                try:
                    await asyncio.wait(waiters, timeout=timeout,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waiters[:2]:
                        w.cancel()
                self._wake.clear()
                if scan is not None and scan.done():
                    scan.result()  # a failed scan fails the probe: the supervisor restarts it
                    scan = None
                if scan is None and self._rescan.is_set():
                    self._rescan.clear()
                    self._dirty.clear()  # the rescan covers them
                    self.counters["rescans"] += 1
                    scan = asyncio.create_task(self.full_scan(emit))
                elif scan is None and time.monotonic() >= next_scan:
                    scan = asyncio.create_task(self.full_scan(emit))
                    next_scan = time.monotonic() + self.config.scan_interval
                if self._dirty and time.monotonic() - self._last_event >= self.config.settle:
                    await self._realtime(emit)
        finally:
            if scan is not None:
                scan.cancel()
                with contextlib.suppress(BaseException):
                    await scan
            if self.inotify is not None:
                with contextlib.suppress(Exception):
                    loop.remove_reader(self.inotify.fileno())
                self.inotify.close()
                self.inotify = None
            self._wd_dir.clear()
            self._watch_filter.clear()
            if self.store is not None:
                self.store.close()
                self.store = None

    def status(self) -> dict[str, Any]:
        return {
            "files_tracked": len(self.baseline),
            "watches": len(self._wd_dir),
            "inotify": self.inotify is not None,
            "unreadable_files": len(self._unreadable),
            "last_scan": self._last_scan,
            **self.counters,
        }
