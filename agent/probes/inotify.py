"""A minimal inotify binding (ctypes on libc): no dependency for three syscalls.

The descriptor is non-blocking so it can sit in the asyncio loop via add_reader;
``read_events`` drains whatever the kernel queued.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
from dataclasses import dataclass

IN_ACCESS = 0x00000001
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

#: what a file integrity watch needs: content, metadata, and names coming and going
WATCH_MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
              | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_DONT_FOLLOW | IN_EXCL_UNLINK)

_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_init1.restype = ctypes.c_int
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]


@dataclass(frozen=True, slots=True)
class InotifyEvent:
    wd: int
    mask: int
    cookie: int
    name: str


class Inotify:
    """One inotify instance; watch descriptors map back to directory paths."""

    def __init__(self) -> None:
        fd: int = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"inotify_init1: {os.strerror(e)}")
        self.fd = fd
        self.paths: dict[int, str] = {}

    def fileno(self) -> int:
        return self.fd

    def add_watch(self, path: str, mask: int = WATCH_MASK) -> int:
        wd: int = _libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"inotify_add_watch {path}: {os.strerror(e)}", path)
        self.paths[wd] = path
        return wd

    def rm_watch(self, wd: int) -> None:
        self.paths.pop(wd, None)
        _libc.inotify_rm_watch(self.fd, wd)

    def read_events(self, bufsize: int = 1 << 16) -> list[InotifyEvent]:
        out: list[InotifyEvent] = []
        while True:
            try:
                data = os.read(self.fd, bufsize)
            except BlockingIOError:
                return out
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise
            if not data:
                return out
            pos = 0
            while pos + _HEADER.size <= len(data):
                wd, mask, cookie, length = _HEADER.unpack_from(data, pos)
                pos += _HEADER.size
                name = os.fsdecode(data[pos:pos + length].rstrip(b"\0"))
                pos += length
                out.append(InotifyEvent(wd, mask, cookie, name))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
