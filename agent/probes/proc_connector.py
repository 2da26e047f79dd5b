"""The kernel's process events connector (NETLINK_CONNECTOR, CN_IDX_PROC): the wire format.

Why this source for process starts, and not audit or eBPF (docs/agent.md has the
long form): the connector pushes one small datagram per fork/exec/exit as it
happens, costs the kernel almost nothing, needs at most CAP_NET_ADMIN (older
kernels check it on the subscription; a 6.18 kernel accepted an unprivileged
listener) and no daemon, no rules and no compiler; the audit netlink socket
has a single owner (auditd, when installed, holds it and a second reader steals or
loses it) and needs CAP_AUDIT_CONTROL + CAP_AUDIT_READ plus rules that cost on every
syscall. What the connector does not give is the command line: it says "pid N
exec'd", and the reader reads ``/proc/N`` at once (agent.probes.exec_capture).

Pure protocol code, no threads: open and subscribe a socket, split a datagram into
``ProcEvent`` records. Layout from ``linux/connector.h`` and ``linux/cn_proc.h``::

    nlmsghdr (16) | cn_msg: idx u32, val u32, seq u32, ack u32, len u16, flags u16 (20)
    | proc_event: what u32, cpu u32, timestamp_ns u64 (16) | event_data
"""

from __future__ import annotations

import os
import socket
import struct
from typing import NamedTuple

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
NLMSG_ERROR, NLMSG_DONE = 2, 3
SO_RCVBUFFORCE = 33

PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_EXIT = 0x80000000

_NLMSG = struct.Struct("=IHHII")
_CN_MSG = struct.Struct("=IIIIHH")
_HEAD = struct.Struct("=IIQ")  # what, cpu, timestamp_ns
_EV_OFF = _NLMSG.size + _CN_MSG.size  # 36: proc_event
_DATA_OFF = _EV_OFF + _HEAD.size  # 52: event_data
_PAIR = struct.Struct("=ii")
_FORK = struct.Struct("=iiii")
_EXIT = struct.Struct("=iiIIii")


class ProcEvent(NamedTuple):
    what: int  # PROC_EVENT_*
    pid: int  # the thread group (process) id the event is about
    tid: int  # the thread (equal to pid for the main thread)
    parent: int  # FORK: the parent's tgid; EXIT: the parent's tgid (kernels >= 4.18); else 0
    exit_code: int  # EXIT only: wait status


def open_socket(rcvbuf: int = 8 << 20) -> socket.socket:
    """A connector socket subscribed to process events.

    Raises OSError (EPERM without CAP_NET_ADMIN on kernels that require it,
    ECONNREFUSED outside the initial network namespace, EPROTONOSUPPORT without
    CONFIG_PROC_EVENTS) so the caller can fall back to polling.
    """
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
    try:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((0, CN_IDX_PROC))
        sock.send(_control(PROC_CN_MCAST_LISTEN))
    except BaseException:
        sock.close()
        raise
    return sock


def _control(op: int) -> bytes:
    payload = struct.pack("=I", op)
    cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0) + payload
    return _NLMSG.pack(_NLMSG.size + len(cn), NLMSG_DONE, 0, 0, os.getpid()) + cn


def unsubscribe(sock: socket.socket) -> None:
    """Tell the kernel we stop listening (it stops formatting events when nobody does)."""
    sock.send(_control(PROC_CN_MCAST_IGNORE))


def parse(data: bytes) -> list[ProcEvent]:
    """Every proc event in one datagram; other connector traffic and junk are skipped."""
    out: list[ProcEvent] = []
    off = 0
    end = len(data)
    while off + _DATA_OFF <= end:
        length, mtype = struct.unpack_from("=IH", data, off)
        if length < _NLMSG.size:
            break  # malformed: stop rather than loop
        idx, val = struct.unpack_from("=II", data, off + _NLMSG.size)
        if mtype not in (NLMSG_ERROR,) and idx == CN_IDX_PROC and val == CN_VAL_PROC:
            what = struct.unpack_from("=I", data, off + _EV_OFF)[0]
            d = off + _DATA_OFF
            if what == PROC_EVENT_EXEC and d + _PAIR.size <= end:
                tid, pid = _PAIR.unpack_from(data, d)
                out.append(ProcEvent(what, pid, tid, 0, 0))
            elif what == PROC_EVENT_EXIT and d + _EXIT.size <= end:
                tid, pid, code, _sig, _ppid, ptgid = _EXIT.unpack_from(data, d)
                out.append(ProcEvent(what, pid, tid, ptgid, code))
            elif what == PROC_EVENT_FORK and d + _FORK.size <= end:
                _ppid, ptgid, tid, pid = _FORK.unpack_from(data, d)
                out.append(ProcEvent(what, pid, tid, ptgid, 0))
        off += (length + 3) & ~3
    return out


def build_event(what: int, pid: int, tid: int | None = None, parent: int = 0,
                exit_code: int = 0) -> bytes:
    """One datagram as the kernel would send it (tests and the fuzz corpus)."""
    tid = pid if tid is None else tid
    if what == PROC_EVENT_EXEC:
        data = _PAIR.pack(tid, pid)
    elif what == PROC_EVENT_EXIT:
        data = _EXIT.pack(tid, pid, exit_code, 17, parent, parent)
    else:
        data = _FORK.pack(parent, parent, tid, pid)
    body = _HEAD.pack(what, 0, 0) + data
    cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(body), 0) + body
    return _NLMSG.pack(_NLMSG.size + len(cn), NLMSG_DONE, 0, 0, 0) + cn
