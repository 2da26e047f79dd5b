"""Walking and hashing for file integrity, rate-limited so a scan never starves the host.

Runs in a worker thread (blocking I/O); the limiter sleeps that thread, never
the event loop. Symlinks are recorded (with their target), never followed.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import os
import stat
import threading
import time
from collections.abc import Iterable, Iterator

from agent.probes.fim_store import FileRecord

CHUNK = 1 << 20


class RateLimiter:
    """Token buckets for files/s and bytes/s (0 = unlimited), shared by scan threads."""

    def __init__(self, files_per_second: float, bytes_per_second: float) -> None:
        self.fps = files_per_second
        self.bps = bytes_per_second
        self._lock = threading.Lock()
        self._files, self._bytes = self.fps, self.bps  # buckets hold one second of budget
        self._t = time.monotonic()

    def take(self, files: int = 0, nbytes: int = 0) -> None:
        """Block the calling (worker) thread until the budget allows this much work.

        A request larger than one second of budget waits for a full bucket and
        then leaves it in debt, so a big file is paced rather than refused."""
        while True:
            with self._lock:
                now = time.monotonic()
                dt, self._t = now - self._t, now
                wait = 0.0
                if self.fps:
                    self._files = min(self.fps, self._files + dt * self.fps)
                if self.bps:
                    self._bytes = min(self.bps, self._bytes + dt * self.bps)
                if self.fps and files:
                    need = min(files, self.fps)
                    if self._files < need:
                        wait = (need - self._files) / self.fps
                if self.bps and nbytes:
                    need = min(nbytes, self.bps)
                    if self._bytes < need:
                        wait = max(wait, (need - self._bytes) / self.bps)
                if wait == 0.0:
                    if self.fps and files:
                        self._files -= files
                    if self.bps and nbytes:
                        self._bytes -= nbytes
                    return
            time.sleep(min(wait, 0.5))


class Excluder:
    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = [p.rstrip("/") for p in patterns]

    def __call__(self, path: str) -> bool:
        name = os.path.basename(path)
        return any(fnmatch.fnmatchcase(path, p) or fnmatch.fnmatchcase(name, p)
                   for p in self.patterns)


def expand(paths: Iterable[str]) -> list[str]:
    """Configured paths with globs (``/etc/cron*``) resolved; missing ones dropped."""
    out: list[str] = []
    for p in paths:
        p = os.path.normpath(p)
        matches = sorted(glob.glob(p)) if glob.has_magic(p) else [p]
        for m in matches:
            if m not in out:
                out.append(m)
    return out


def walk(roots: Iterable[str], excluded: Excluder, recursive: bool = True) -> Iterator[str]:
    """Every path under the roots (the roots included), excludes pruned, links not followed."""
    for root in roots:
        if excluded(root):
            continue
        try:
            st = os.lstat(root)
        except OSError:
            continue
        yield root
        if not stat.S_ISDIR(st.st_mode):
            continue
        stack = [root]
        while stack:
            d = stack.pop()
            try:
                it = os.scandir(d)
            except OSError:
                continue
            with it:
                for entry in it:
                    p = entry.path
                    if excluded(p):
                        continue
                    yield p
                    try:
                        if recursive and entry.is_dir(follow_symlinks=False):
                            stack.append(p)
                    except OSError:
                        pass


def walk_dirs(root: str, excluded: Excluder) -> Iterator[str]:
    """Directories below ``root`` (not the root), links not followed: what to watch."""
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for entry in it:
                try:
                    if entry.is_dir(follow_symlinks=False) and not excluded(entry.path):
                        stack.append(entry.path)
                        yield entry.path
                except OSError:
                    pass


def file_type(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


class Unreadable(Exception):
    """The file exists but we may not read it (no CAP_DAC_READ_SEARCH)."""


def hash_file(path: str, limiter: RateLimiter | None) -> str:
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOATIME
                 if os.geteuid() == 0 else os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        while True:
            chunk = os.read(fd, CHUNK)
            if not chunk:
                break
            if limiter is not None:
                limiter.take(nbytes=len(chunk))
            h.update(chunk)
    finally:
        os.close(fd)
    return h.hexdigest()


def record(path: str, max_hash_size: int, limiter: RateLimiter | None,
           unreadable: list[str] | None = None) -> FileRecord | None:
    """The current state of ``path``, or None if it does not exist (any more)."""
    if limiter is not None:
        limiter.take(files=1)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError:
        return None
    kind = file_type(st.st_mode)
    digest: str | None = None
    target: str | None = None
    if kind == "file" and st.st_size <= max_hash_size:
        try:
            digest = hash_file(path, limiter)
        except FileNotFoundError:
            return None
        except PermissionError:
            if unreadable is not None:
                unreadable.append(path)
        except OSError:
            if unreadable is not None:
                unreadable.append(path)
    elif kind == "symlink":
        try:
            target = os.readlink(path)
        except OSError:
            target = None
    return FileRecord(path, kind, st.st_size, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                      st.st_mtime_ns, st.st_ino, digest, target)
