"""Auth log probe: follows auth.log / secure and emits authentication and iam events.

Exactly-once across rotation and restarts rests on three rules:

* A read position is only persisted after ``emit`` returned (the events are
  durable), and only up to the last complete line.
* A position is tied to the file's identity: (st_dev, st_ino) plus a SHA-256 of
  its first bytes. Inode numbers are reused after a delete; the fingerprint is
  what tells "the same file" from "a new file that got the old inode".
* Rotation by rename: the old file is drained to its end (the writer may still
  append to it for a moment, until it is told to reopen) before we move on.
  Rotation by copytruncate: the copy (``auth.log.1`` and friends, found by
  fingerprint) is read from our offset to its end first, then the truncated file
  from 0. Lines written between logrotate's copy and its truncate are lost by
  copytruncate itself; that is a known property of copytruncate, not of us.

The window in which a crash can repeat lines is between ``emit`` returning and
the position file being replaced: one batch, at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from agent.probes.authparse import parse_journal, parse_line
from agent.probes.base import Emit, Probe, ProbeConfig, ProbeContext
from agent.probes.filewatch import LogWatch
from canhgac.config import Duration, field_meta
from canhgac.schema import AUTH, IAM, RAW

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 256


@dataclass
class AuthLogConfig(ProbeConfig):
    paths: list[str] = field(default_factory=lambda: ["/var/log/auth.log", "/var/log/secure"])
    #: where to start in a file we have never seen before the first run
    start_at: Literal["beginning", "end"] = "end"
    #: without inotify: how often the files are checked; with inotify (a change wakes
    #: the probe at once): the shortest time between two reads of a busy log
    poll_interval: Duration = field(default=Duration(0.25), metadata=field_meta(min=0.01, max=60))
    #: with inotify: how often the files are checked anyway (a safety net for changes
    #: inotify cannot see, e.g. on a network filesystem)
    recheck_interval: Duration = field(default=Duration(5.0), metadata=field_meta(min=0.1, max=3600))
    #: how long a renamed-away file must stay quiet before it is let go (writers reopen late)
    rotate_grace: Duration = field(default=Duration(2.0), metadata=field_meta(min=0, max=3600))
    batch_lines: int = field(default=1000, metadata=field_meta(min=1, max=100_000))
    max_line_bytes: int = field(default=65536, metadata=field_meta(min=256, max=16 << 20))
    #: read journald instead of files: auto = when none of ``paths`` exists and
    #: journald runs (a journald-only host); always; never
    journald: Literal["auto", "always", "never"] = "auto"
    #: journalctl matches (same field OR'ed): the auth and authpriv facilities
    journal_matches: list[str] = field(
        default_factory=lambda: ["SYSLOG_FACILITY=4", "SYSLOG_FACILITY=10"])


def fingerprint(fd: int, length: int) -> str:
    return hashlib.sha256(os.pread(fd, length, 0)).hexdigest() if length else ""


@dataclass
class _Followed:
    """One open file and how far into it our events are durable."""

    path: str  # the configured path this file was opened as
    fd: int
    dev: int
    ino: int
    offset: int
    fp: str = ""
    fp_len: int = 0
    buf: bytes = b""  # read beyond ``offset`` but not yet a complete line
    rotated_at: float | None = None  # when the path stopped pointing at this file
    seen_size: int = 0  # largest size observed: a log file only grows, unless truncated
    last_data_at: float = 0.0  # monotonic time a read last returned lines

    def refresh_fingerprint(self) -> None:
        if self.fp_len < FINGERPRINT_BYTES:
            size = os.fstat(self.fd).st_size
            n = min(size, FINGERPRINT_BYTES)
            if n > self.fp_len:
                self.fp, self.fp_len = fingerprint(self.fd, n), n

    def fingerprint_matches(self) -> bool:
        return self.fp_len == 0 or fingerprint(self.fd, self.fp_len) == self.fp

    def state(self) -> dict[str, Any]:
        return {"dev": self.dev, "ino": self.ino, "offset": self.offset, "fp": self.fp,
                "fp_len": self.fp_len}


def _open(path: str) -> tuple[int, os.stat_result] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except PermissionError:
        log.warning("auth_log: cannot read %s (permission denied)", path)
        return None
    return fd, os.fstat(fd)


def _rotated_candidates(path: str) -> list[str]:
    """Previous generations of ``path`` (logrotate/savelog names, uncompressed), newest first."""

    def newest_first(p: str) -> float:
        try:
            return -os.stat(p).st_mtime_ns
        except OSError:
            return 0.0

    base = glob.escape(path)
    found: set[str] = set()
    for suffix in (".[0-9]", ".[0-9][0-9]", "-*"):
        for p in glob.glob(base + suffix):
            if not p.endswith((".gz", ".xz", ".bz2", ".zst", ".tmp")):
                found.add(p)
    return sorted(found, key=newest_first)


class AuthLogProbe(Probe[AuthLogConfig]):
    name: ClassVar[str] = "auth_log"
    datasets: ClassVar[tuple[str, ...]] = (AUTH, IAM, RAW)
    default_enabled: ClassVar[bool] = True

    def __init__(self, config: AuthLogConfig, context: ProbeContext) -> None:
        super().__init__(config, context)
        self._state_path = Path(context.state_dir) / "auth_log.positions.json"
        self._files: dict[str, list[_Followed]] = {}
        self._lines = 0
        self._raw = 0
        self._rotations = 0
        self._truncations = 0
        self._lost_rotations = 0
        self._started = False
        self._journal_cursor: str | None = None
        self._journal_entries = 0
        self._checks = 0
        self._watch = LogWatch()
        self.source = ""

    # ------------------------------------------------------------ persistence
    def _load_state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self._state_path.read_text())
            return state
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("auth_log: ignoring unreadable position file %s: %s", self._state_path, exc)
            return {}

    def _save_state(self) -> None:
        data: dict[str, Any] = {}
        if self._journal_cursor:
            data["journald"] = {"cursor": self._journal_cursor}
        for path, chain in self._files.items():
            if chain:
                # Persist the oldest file still being drained: after a restart we
                # resume there and walk forward to the current one.
                data[path] = chain[0].state()
        tmp = self._state_path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._state_path)

    # ------------------------------------------------------------ opening
    def _resume(self, path: str, saved: dict[str, Any] | None) -> None:
        """Reopen ``path`` where the last durable position says, following rotations."""
        chain: list[_Followed] = []
        opened = _open(path)
        cur = None
        if opened:
            fd, st = opened
            cur = _Followed(path, fd, st.st_dev, st.st_ino, 0)
        if saved:
            same = cur is not None and (cur.dev, cur.ino) == (saved["dev"], saved["ino"])
            if same and cur is not None:
                cur.fp, cur.fp_len = saved.get("fp", ""), saved.get("fp_len", 0)
                if cur.fingerprint_matches() and os.fstat(cur.fd).st_size >= saved["offset"]:
                    cur.offset = saved["offset"]
                else:  # truncated (copytruncate) or replaced while we were down
                    self._truncations += 1
                    chain.extend(self._find_rotated(path, saved, exclude=(cur.dev, cur.ino)))
                    cur.fp, cur.fp_len = "", 0
            else:
                old = self._find_rotated(path, saved,
                                         exclude=(cur.dev, cur.ino) if cur else None)
                if old:
                    chain.extend(old)
                    self._rotations += 1
                else:
                    self._lost_rotations += 1
                    log.warning("auth_log: %s was rotated while stopped and the previous "
                                "file is gone; reading the new one from its start", path)
        elif cur is not None and self.config.start_at == "end":
            cur.offset = os.fstat(cur.fd).st_size
        if cur is not None:
            cur.refresh_fingerprint()
            chain.append(cur)
        self._files[path] = chain
        log.debug("auth_log: resume %s saved=%s chain=%s", path, saved,
                  [(f.ino, f.offset) for f in chain])

    def _find_rotated(self, path: str, saved: dict[str, Any],
                      exclude: tuple[int, int] | None = None) -> list[_Followed]:
        """The generation ``saved`` points into (same inode after a rename, or same first
        bytes for a copytruncate copy) followed by every newer generation, oldest first."""
        cands = _rotated_candidates(path)
        fp_len = saved.get("fp_len", 0)
        for k, cand in enumerate(cands):
            opened = _open(cand)
            if not opened:
                continue
            fd, st = opened
            if exclude and (st.st_dev, st.st_ino) == exclude:
                os.close(fd)
                continue
            same_inode = (st.st_dev, st.st_ino) == (saved["dev"], saved["ino"])
            same_bytes = fp_len > 0 and fingerprint(fd, fp_len) == saved.get("fp")
            if (same_inode or same_bytes) and st.st_size >= saved["offset"]:
                now = time.monotonic()
                chain = [_Followed(path, fd, st.st_dev, st.st_ino, saved["offset"],
                                   saved.get("fp", ""), fp_len, rotated_at=now)]
                for newer in reversed(cands[:k]):
                    o = _open(newer)
                    if o is None:
                        continue
                    nfd, nst = o
                    if exclude and (nst.st_dev, nst.st_ino) == exclude:
                        os.close(nfd)
                        continue
                    f = _Followed(path, nfd, nst.st_dev, nst.st_ino, 0, rotated_at=now)
                    f.refresh_fingerprint()
                    chain.append(f)
                return chain
            os.close(fd)
        return []

    # ------------------------------------------------------------ reading
    def _read_lines(self, f: _Followed, limit: int, final: bool) -> tuple[list[str], int]:
        """Complete lines after ``f.offset`` (and the unterminated tail if ``final``)."""
        lines: list[str] = []
        pos = f.offset + len(f.buf)
        consumed = f.offset
        while len(lines) < limit:
            chunk = os.pread(f.fd, 1 << 16, pos)
            if not chunk:
                break
            pos += len(chunk)
            data = f.buf + chunk
            parts = data.split(b"\n")
            f.buf = parts.pop()
            for raw in parts:
                consumed += len(raw) + 1
                lines.append(self._decode(raw))
            if len(f.buf) > self.config.max_line_bytes:  # a runaway line: cut it, keep going
                consumed += len(f.buf)
                lines.append(self._decode(f.buf))
                f.buf = b""
        if final and f.buf and len(lines) < limit:
            consumed += len(f.buf)
            lines.append(self._decode(f.buf))
            f.buf = b""
        return lines, consumed

    def _decode(self, raw: bytes) -> str:
        return raw.rstrip(b"\r").decode("utf-8", "replace")

    async def _process(self, f: _Followed, emit: Emit, final: bool) -> int:
        total = 0
        while True:
            lines, consumed = self._read_lines(f, self.config.batch_lines, final)
            if not lines:
                return total
            if not f.fingerprint_matches():
                # Truncated under us between the last check and this read: what we
                # read may be the new content at the old offset. Let the truncation
                # handling start this file over.
                f.buf = b""
                return total
            events = [parse_line(line) for line in lines]
            for ev in events:
                ev["log"] = {"file": {"path": f.path}}
                if ev["event"]["dataset"] == RAW:
                    self._raw += 1
            await emit(events)
            f.last_data_at = time.monotonic()
            f.offset = consumed
            f.buf = b""  # re-read from offset next time: simpler than tracking both
            f.refresh_fingerprint()
            self._lines += len(lines)
            total += len(lines)
            self._save_state()

    def _check_rotation(self, path: str) -> None:
        chain = self._files[path]
        cur = chain[-1] if chain else None
        if cur is not None:
            # Truncation is judged on our own descriptor, whatever the path names now:
            # a file may be copytruncated and then renamed away before we look.
            size = os.fstat(cur.fd).st_size
            if size < max(cur.offset, cur.seen_size) or not cur.fingerprint_matches():
                self._on_truncate(path, cur)
            else:
                # Keep the fingerprint and size current even for a file we have not
                # read yet (we may be draining an older one): a truncation of unread
                # content must still be noticed, and its copy found.
                cur.seen_size = size
                cur.refresh_fingerprint()
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if cur is not None and cur.rotated_at is None:
                cur.rotated_at = time.monotonic()
            return
        if cur is not None and (st.st_dev, st.st_ino) == (cur.dev, cur.ino):
            return
        # The path now names a different file: rotation by rename (or a new file).
        opened = _open(path)
        if not opened:
            return
        fd, st = opened
        if cur is not None:
            if cur.rotated_at is None:
                cur.rotated_at = time.monotonic()
            self._rotations += 1
            # Several rotations may have happened since we last looked (we were busy
            # draining a backlog): every generation newer than the one we hold, and
            # older than the file the path names now, must be read too.
            chain.extend(self._generations_after(path, cur, (st.st_dev, st.st_ino)))
        new = _Followed(path, fd, st.st_dev, st.st_ino, 0)
        new.refresh_fingerprint()
        chain.append(new)
        log.debug("auth_log: %s now names inode %s; chain=%s", path, st.st_ino,
                  [(f.ino, f.offset) for f in chain])

    def _generations_after(self, path: str, cur: _Followed,
                           current: tuple[int, int]) -> list[_Followed]:
        held = {(f.dev, f.ino) for f in self._files[path]}
        cands = _rotated_candidates(path)
        out: list[_Followed] = []
        for cand in cands:  # newest first: stop at the one we hold
            opened = _open(cand)
            if opened is None:
                continue
            fd, st = opened
            ident = (st.st_dev, st.st_ino)
            if ident == (cur.dev, cur.ino):
                os.close(fd)
                break
            if ident in held or ident == current:
                os.close(fd)
                continue
            f = _Followed(path, fd, st.st_dev, st.st_ino, 0, rotated_at=time.monotonic())
            f.refresh_fingerprint()
            out.append(f)
        else:  # the generation we hold is gone from the directory: order is unknown
            for f in out:
                os.close(f.fd)
            return []
        return out[::-1]

    def _on_truncate(self, path: str, cur: _Followed) -> None:
        """copytruncate: finish the copy from our offset, then restart the file at 0."""
        self._truncations += 1
        saved = cur.state()
        log.debug("auth_log: %s truncated at offset %s (seen %s)", path, cur.offset, cur.seen_size)
        # Only the copy of this very file: newer generations do not exist yet.
        old = self._find_rotated(path, saved, exclude=(cur.dev, cur.ino))[:1]
        if old:
            old[0].rotated_at = time.monotonic() - self.config.rotate_grace  # a copy never grows
            self._files[path].insert(len(self._files[path]) - 1, old[0])
        else:
            log.warning("auth_log: %s was truncated and no rotated copy was found", path)
        cur.offset = 0
        cur.buf = b""
        cur.seen_size = 0
        cur.fp, cur.fp_len = "", 0
        cur.refresh_fingerprint()

    async def _poll_path(self, path: str, emit: Emit) -> None:
        chain = self._files[path]
        # Drain older generations first, in order, so events keep file order.
        while chain:
            f = chain[0]
            is_last = len(chain) == 1
            if is_last:
                await self._process(f, emit, final=False)
                return
            n = await self._process(f, emit, final=False)
            # A renamed-away file is let go only after it has been quiet for the
            # grace period: a writer that reopens late (rsyslog before its HUP, a
            # starved thread) keeps appending to it, and those lines are ours too.
            expired = f.rotated_at is not None and (
                time.monotonic() - max(f.rotated_at, f.last_data_at) >= self.config.rotate_grace)
            if n == 0 and expired:
                await self._process(f, emit, final=True)
                os.close(f.fd)
                chain.pop(0)
                log.debug("auth_log: done with inode %s at %s", f.ino, f.offset)
                self._save_state()
            else:
                return

    async def _idle(self, began: float) -> None:
        """Until the next check: a change seen by inotify, else the poll interval."""
        poll = float(self.config.poll_interval)
        # A renamed-away file in its grace period is let go on a clock, not an event.
        draining = any(len(chain) > 1 for chain in self._files.values())
        if draining or not all(self._watch.covered(p) for p in self.config.paths):
            await asyncio.sleep(poll)
        else:
            await self._watch.wait(float(self.config.recheck_interval))
            # A busy log is read in batches: at most one check per poll interval.
            rest = began + poll - time.monotonic()
            if rest > 0:
                await asyncio.sleep(rest)
        self._watch.clear()

    def _use_journal(self) -> bool:
        if self.config.journald == "never":
            return False
        if self.config.journald == "always":
            return True
        return (not any(os.path.exists(p) for p in self.config.paths)
                and shutil.which("journalctl") is not None
                and os.path.exists("/run/systemd/journal/socket"))

    async def _run_journal(self, emit: Emit) -> None:
        """Follow journald through ``journalctl -f -o json``; the cursor is the position."""
        state = self._load_state()
        self._journal_cursor = (state.get("journald") or {}).get("cursor")
        args = ["journalctl", "--follow", "--output=json", "--no-pager", "--quiet"]
        if self._journal_cursor:
            args.append(f"--after-cursor={self._journal_cursor}")
        else:
            args.append("--lines=0" if self.config.start_at == "end" else "--lines=all")
        args += self.config.journal_matches
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            limit=max(1 << 20, self.config.max_line_bytes * 4))
        assert proc.stdout is not None and proc.stderr is not None
        self._started = True
        log.info("auth_log: following journald (%s)", " ".join(self.config.journal_matches))
        try:
            while True:
                line = await proc.stdout.readline()
                if not line:
                    err = (await proc.stderr.read()).decode("utf-8", "replace").strip()
                    rc = await proc.wait()
                    raise RuntimeError(f"journalctl exited with {rc}: {err[-300:]}")
                lines = [line]
                # Whatever else is already there, up to a batch, without waiting long.
                while len(lines) < self.config.batch_lines:
                    try:
                        more = await asyncio.wait_for(proc.stdout.readline(), 0.05)
                    except TimeoutError:
                        break
                    if not more:
                        break
                    lines.append(more)
                events, cursor = [], None
                for raw in lines:
                    try:
                        entry = json.loads(raw)
                    except ValueError:
                        continue
                    cursor = entry.get("__CURSOR", cursor)
                    ev = parse_journal(entry)
                    ev["log"] = {"syslog": {"facility": {"code": int(entry.get(
                        "SYSLOG_FACILITY", 0) or 0)}}}
                    if ev["event"]["dataset"] == RAW:
                        self._raw += 1
                    events.append(ev)
                if events:
                    await emit(events)
                    self._journal_entries += len(events)
                    self._lines += len(events)
                if cursor:
                    self._journal_cursor = cursor
                    self._save_state()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    async def run(self, emit: Emit) -> None:
        if self._use_journal():
            self.source = "journald"
            await self._run_journal(emit)
            return
        self.source = "files"
        state = self._load_state()
        for path in self.config.paths:
            self._resume(path, state.get(path))
        self._save_state()
        self._started = True
        loop = asyncio.get_running_loop()
        self._watch.start(loop)
        try:
            while True:
                began = time.monotonic()
                for path in self.config.paths:
                    # Rotation/truncation first: reading a truncated-and-regrown
                    # file at the old offset would yield half lines.
                    self._check_rotation(path)
                    # Watches before reads: a write after the read leaves an event.
                    self._watch.sync(path, {(f.dev, f.ino): f.fd for f in self._files[path]})
                    await self._poll_path(path, emit)
                self._checks += 1
                await self._idle(began)
        finally:
            self._watch.close(loop)
            for chain in self._files.values():
                for f in chain:
                    with contextlib.suppress(OSError):
                        os.close(f.fd)
            self._files.clear()

    def status(self) -> dict[str, Any]:
        if self.source == "journald":
            return {"source": "journald", "lines_read": self._lines, "raw_lines": self._raw}
        return {
            "source": self.source,
            "files_followed": sum(len(c) for c in self._files.values()),
            "lines_read": self._lines,
            "raw_lines": self._raw,
            "rotations": self._rotations,
            "truncations": self._truncations,
            "rotations_lost": self._lost_rotations,
            "inotify": self._watch.active,
            "checks": self._checks,
        }


async def _standalone(config: dict[str, Any], state_dir: str) -> None:
    """Run the probe alone, events as NDJSON on stdout (tests, debugging)."""
    import signal
    import socket
    import sys

    from canhgac.config import load_section

    cfg = load_section(config, AuthLogConfig, "--config")
    probe = AuthLogProbe(cfg, ProbeContext("standalone", socket.gethostname(), Path(state_dir)))

    async def emit(events: list[dict[str, Any]]) -> None:
        for ev in events:
            sys.stdout.write(json.dumps(ev) + "\n")
        sys.stdout.flush()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(probe.run(emit))
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    task.cancel()
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - thin CLI
    from agent.probes.standalone import standalone_main

    standalone_main("python -m agent.probes.auth_log",
                    "run the auth log probe alone (NDJSON on stdout)",
                    "canhgac-auth-", _standalone, argv)


if __name__ == "__main__":  # pragma: no cover
    main()
