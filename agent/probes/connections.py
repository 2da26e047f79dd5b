"""Outbound TCP connections this host opens: destination, and the owning process.

The process events connector says nothing about sockets, and the network sensor
sees packets without processes; what joins a connection to a process is its
socket inode. So the socket probe samples the kernel's socket table over
NETLINK_SOCK_DIAG (what ``ss`` uses), asking only for SYN_SENT and ESTABLISHED
TCP sockets (the kernel filters, walking its whole connection table: ~2.5 ms a sample
on a large host), keeps those it has not seen
before whose local port is not one of this host's listening ports (those were
accepted, not opened), and maps each new socket's inode to its process through
one ``/proc/*/fd`` walk per sample that has any new connection.

A sample every ``outbound_interval`` (10 s by default) sees a connection that lives
at least that long (a reverse shell does; a connection that opens and closes between
two samples is missed, stated plainly in docs/agent.md).
Bounded: the table of seen sockets holds what the kernel holds; events per sample
and per second are capped, the excess counted and summarised in one event.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

from agent.probes.socket import _unmap, inet_diag_messages

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
    addr_len = 4 if family == socket.AF_INET else 16
    out: list[Conn] = []
    for data, m in inet_diag_messages(family, socket.IPPROTO_TCP, states):
        state = data[m + 1]
        sport, dport = struct.unpack_from(">HH", data, m + 4)
        src = socket.inet_ntop(family, data[m + 8:m + 8 + addr_len])
        dst = socket.inet_ntop(family, data[m + 24:m + 24 + addr_len])
        (cookie,) = struct.unpack_from("=Q", data, m + 44)
        uid, inode = struct.unpack_from("=II", data, m + 64)
        out.append(Conn(_unmap(src), sport, _unmap(dst), dport, state, uid, inode, cookie))
    return out


def tcp_connections() -> list[Conn]:
    """SYN_SENT and ESTABLISHED TCP sockets, IPv4 and IPv6, straight from the kernel."""
    states = (1 << TCP_ESTABLISHED) | (1 << TCP_SYN_SENT)
    return _dump(socket.AF_INET, states) + _dump(socket.AF_INET6, states)


def is_loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip == "::1"
