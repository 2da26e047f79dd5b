"""Wake a log follower when its files change, instead of polling them.

A follower registers each configured path (its directory is watched for names
coming and going: a rotation, the file appearing) and the files it holds open
(watched by inode through ``/proc/self/fd/N``, so a renamed-away file that a
late writer still appends to keeps waking us, and a truncation does too).
Watches are set before the files are read, so a write that lands after a read
always leaves an event behind: no change is slept through.

Where inotify is not available (or a directory cannot be watched) the caller
polls, as before; ``covered`` says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from agent.probes import inotify as ino
from canhgac.tasks import wait_for_event

log = logging.getLogger(__name__)

#: names coming and going in a watched directory (not writes to its other files)
DIR_MASK = (ino.IN_CREATE | ino.IN_MOVED_FROM | ino.IN_MOVED_TO | ino.IN_DELETE
            | ino.IN_DELETE_SELF | ino.IN_MOVE_SELF | ino.IN_ONLYDIR)
#: a followed file: appended to or truncated
FILE_MASK = ino.IN_MODIFY

FileKey = tuple[int, int]  # (st_dev, st_ino)


class LogWatch:
    def __init__(self) -> None:
        self.inotify: ino.Inotify | None = None
        self._wake = asyncio.Event()
        self._dirs: dict[str, int] = {}  # directory -> wd
        self._dir_prefixes: dict[int, set[str]] = {}  # wd -> base names of interest
        self._files: dict[FileKey, int] = {}  # followed file -> wd
        self._file_users: dict[FileKey, set[str]] = {}  # which paths hold it
        self._unwatchable: set[str] = set()  # paths whose directory cannot be watched
        self.events = 0
        self.overflows = 0

    @property
    def active(self) -> bool:
        return self.inotify is not None

    def start(self, loop: asyncio.AbstractEventLoop) -> bool:
        try:
            self.inotify = ino.Inotify()
        except OSError as exc:
            log.warning("auth_log: inotify unavailable (%s): polling", exc.strerror)
            return False
        loop.add_reader(self.inotify.fileno(), self._on_readable)
        return True

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.inotify is not None:
            with contextlib.suppress(Exception):
                loop.remove_reader(self.inotify.fileno())
            self.inotify.close()
            self.inotify = None
        self._dirs.clear()
        self._dir_prefixes.clear()
        self._files.clear()
        self._file_users.clear()

    def covered(self, path: str) -> bool:
        """Does a change to ``path`` (or its rotation) wake us?"""
        return self.inotify is not None and path not in self._unwatchable

    def sync(self, path: str, files: dict[FileKey, int]) -> None:
        """Watch ``path``'s directory and exactly the open files ``files`` (key -> fd)."""
        if self.inotify is None:
            return
        self._watch_dir(path)
        for key, users in list(self._file_users.items()):
            if path in users and key not in files:
                users.discard(path)
                if not users:
                    del self._file_users[key]
                    wd = self._files.pop(key, None)
                    if wd is not None and wd not in self._files.values():
                        self.inotify.rm_watch(wd)
        for key, fd in files.items():
            self._file_users.setdefault(key, set()).add(path)
            if key in self._files:
                continue
            try:
                self._files[key] = self.inotify.add_watch(f"/proc/self/fd/{fd}", FILE_MASK)
            except OSError as exc:
                log.warning("auth_log: cannot watch %s (%s): polling it", path, exc.strerror)
                self._unwatchable.add(path)

    def _watch_dir(self, path: str) -> None:
        assert self.inotify is not None
        directory = os.path.dirname(path) or "."
        if directory in self._dirs:
            self._dir_prefixes[self._dirs[directory]].add(os.path.basename(path))
            self._unwatchable.discard(path)
            return
        try:
            wd = self.inotify.add_watch(directory, DIR_MASK)
        except OSError:
            # Not there (yet) or not ours to watch: poll until it can be watched.
            self._unwatchable.add(path)
            return
        self._unwatchable.discard(path)
        self._dirs[directory] = wd
        self._dir_prefixes.setdefault(wd, set()).add(os.path.basename(path))

    def _on_readable(self) -> None:
        assert self.inotify is not None
        try:
            events = self.inotify.read_events()
        except OSError as exc:
            log.warning("auth_log: inotify read failed: %s", exc)
            self._wake.set()
            return
        wake = False
        for ev in events:
            self.events += 1
            if ev.mask & ino.IN_Q_OVERFLOW:
                self.overflows += 1
                wake = True
                continue
            if ev.mask & ino.IN_IGNORED:  # a watch is gone (directory removed, file rm'd)
                for d, wd in list(self._dirs.items()):
                    if wd == ev.wd:
                        del self._dirs[d]
                        self._dir_prefixes.pop(wd, None)
                for key, wd in list(self._files.items()):
                    if wd == ev.wd:
                        del self._files[key]
                wake = True
                continue
            prefixes = self._dir_prefixes.get(ev.wd)
            if prefixes is None or not ev.name or any(ev.name.startswith(p) for p in prefixes):
                wake = True  # a followed file, the directory itself, or one of our names
        if wake:
            self._wake.set()

    async def wait(self, timeout: float) -> None:
        """Until something we watch changes, or ``timeout``."""
        await wait_for_event(self._wake, timeout)

    def clear(self) -> None:
        self._wake.clear()
