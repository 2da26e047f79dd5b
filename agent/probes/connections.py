"""Outbound TCP connections this host opens: destination, and the owning process.

The process events connector says nothing about sockets, and the network sensor
sees packets without processes; what joins a connection to a process is its
socket inode. So the socket probe samples the kernel's socket table over
NETLINK_SOCK_DIAG (what ``ss`` uses), asking only for SYN_SENT and ESTABLISHED
TCP sockets (the kernel filters: ~0.1 ms per sample), keeps those it has not seen
before whose local port is not one of this host's listening ports (those were
accepted, not opened), and maps each new socket's inode to its process through
one ``/proc/*/fd`` walk per sample that has any new connection.

A sample every second sees a connection that lives at least that long (a reverse
shell, a beacon's HTTP request usually do not close faster; a connection that
opens and closes between two samples is missed, stated plainly in docs/agent.md).
Bounded: the table of seen sockets holds what the kernel holds; events per sample
and per second are capped, the excess counted and summarised in one event.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

from agent.probes.socket import (
    NETLINK_SOCK_DIAG,
    NLM_F_REQUEST_DUMP,
    NLMSG_DONE,
    NLMSG_ERROR,
    SOCK_DIAG_BY_FAMILY,
    _unmap,
)

TCP_ESTABLISHED = 1
TCP_SYN_SENT = 2
STATE_NAMES = {TCP_ESTABLISHED: "established", TCP_SYN_SENT: "syn_sent"}


class Conn(NamedTuple):
    src: str
    sport: int
    dst: str
    dport: int
    state: int
    uid: int
    inode: int
    cookie: int  # the kernel's socket cookie: unique while the socket exists


def _dump(family: int, states: int) -> list[Conn]:
    out: list[Conn] = []
    addr_len = 4 if family == socket.AF_INET else 16
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as nl:
        req = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, states) + bytes(48)
        nl.sendall(struct.pack("=LHHLL", 16 + len(req), SOCK_DIAG_BY_FAMILY,
                               NLM_F_REQUEST_DUMP, 1, 0) + req)
        while True:
            data = nl.recv(1 << 16)
            if not data:
                return out
            off = 0
            while off + 16 <= len(data):
                length, mtype = struct.unpack_from("=LH", data, off)
                if mtype == NLMSG_DONE:
                    return out
                if mtype == NLMSG_ERROR:
                    (errno,) = struct.unpack_from("=i", data, off + 16)
                    raise OSError(-errno, "sock_diag dump failed")
                if length < 16:
                    raise OSError("malformed netlink message")
                m = off + 16
                state = data[m + 1]
                sport, dport = struct.unpack_from(">HH", data, m + 4)
                src = socket.inet_ntop(family, data[m + 8:m + 8 + addr_len])
                dst = socket.inet_ntop(family, data[m + 24:m + 24 + addr_len])
                (cookie,) = struct.unpack_from("=Q", data, m + 44)
                uid, inode = struct.unpack_from("=II", data, m + 64)
                out.append(Conn(_unmap(src), sport, _unmap(dst), dport, state, uid, inode, cookie))
                off += (length + 3) & ~3


def tcp_connections() -> list[Conn]:
    """SYN_SENT and ESTABLISHED TCP sockets, IPv4 and IPv6, straight from the kernel."""
    states = (1 << TCP_ESTABLISHED) | (1 << TCP_SYN_SENT)
    return _dump(socket.AF_INET, states) + _dump(socket.AF_INET6, states)


def is_loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip == "::1"
