"""Listening sockets opened/closed (a new service, or a backdoor, starting to listen).

On Linux the probe asks the kernel over netlink (NETLINK_SOCK_DIAG, what
``ss`` uses) for listening TCP sockets and bound, unconnected UDP sockets only:
the kernel filters by state, so a scan costs ~0.1 ms. Reading
``/proc/net/tcp{,6}`` instead costs ~6 ms *per file* on a host with many
connections, because the kernel formats every socket as text; that remains the
fallback. ``psutil.net_connections()`` is not used at all: it walks every file
descriptor of every process on each call. Owning processes are looked up (one
/proc/*/fd walk) only when a socket appears that was not there before, which
is rare.

The first scan reports what is already listening (kind ``state``, one event
per socket: a short, bounded list that a SOC wants to see), later scans report
``socket-opened`` / ``socket-closed``. A service restart shows as closed +
opened because its socket inode changes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket as pysocket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import psutil

from agent.probes.base import Emit, Probe, ProbeConfig, ProbeContext
from canhgac.config import Duration, field_meta
from canhgac.schema import SOCKET, new_event

if TYPE_CHECKING:
    from agent.probes.connections import Conn

log = logging.getLogger(__name__)

TCP_LISTEN = "0A"
UDP_UNCONNECTED = "07"


@dataclass
class SocketConfig(ProbeConfig):
    interval: Duration = field(default=Duration(10), metadata=field_meta(min=1))
    udp: bool = True
    # netlink (fast, Linux), proc (parse /proc/net), auto (netlink, else proc, else psutil)
    source: Literal["auto", "netlink", "proc"] = "auto"
    # Where the proc filesystem is (tests point it at a fixture tree).
    proc_root: str = "/proc"
    max_events_per_scan: int = field(default=1000, metadata=field_meta(min=10))
    # Outbound TCP connections (SYN_SENT / ESTABLISHED to a port this host does not
    # listen on), sampled over netlink every outbound_interval (agent.probes.connections).
    outbound: bool = True
    outbound_interval: Duration = field(default=Duration(10), metadata=field_meta(min=0.1))
    # Connections to 127.0.0.0/8 and ::1 are the host talking to itself.
    outbound_include_loopback: bool = False
    # At most this many connection events per second (a burst is summarised, not sent).
    outbound_max_per_second: float = field(default=50.0, metadata=field_meta(min=1))


class Listener(NamedTuple):
    transport: str  # "tcp" | "udp"
    ip: str
    port: int
    inode: int
    uid: int


def decode_address(hex_addr: str) -> tuple[str, int]:
    """``0100007F:0277`` -> ('127.0.0.1', 631); IPv6 words are little-endian too."""
    host, _, port = hex_addr.partition(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = pysocket.inet_ntop(pysocket.AF_INET, raw[::-1])
    else:
        words = struct.unpack("<4I", raw)
        ip = pysocket.inet_ntop(pysocket.AF_INET6, struct.pack(">4I", *words))
        ip = _unmap(ip)
    return ip, int(port, 16)


def parse_proc_net(text: str, transport: str) -> list[Listener]:
    """Listening entries of one /proc/net/{tcp,udp}[6] file."""
    out: list[Listener] = []
    want = TCP_LISTEN if transport == "tcp" else UDP_UNCONNECTED
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10 or parts[3] != want:
            continue
        if transport == "udp" and not parts[2].endswith(":0000"):
            continue  # connected UDP socket: a client, not a service
        try:
            ip, port = decode_address(parts[1])
            out.append(Listener(transport, ip, port, int(parts[9]), int(parts[7])))
        except (ValueError, OSError, struct.error):
            continue
    return out


NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST_DUMP = 0x1 | 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCPF_LISTEN = 1 << 10
TCPF_CLOSE = 1 << 7  # an unconnected UDP socket is in state CLOSE


def inet_diag_messages(family: int, protocol: int, states: int) -> Iterator[tuple[bytes, int]]:
    """One inet_diag dump (struct inet_diag_req_v2): (buffer, offset) of each inet_diag_msg."""
    with pysocket.socket(pysocket.AF_NETLINK, pysocket.SOCK_RAW, NETLINK_SOCK_DIAG) as nl:
        req = struct.pack("=BBBBI", family, protocol, 0, 0, states) + bytes(48)
        nl.sendall(struct.pack("=LHHLL", 16 + len(req), SOCK_DIAG_BY_FAMILY,
                               NLM_F_REQUEST_DUMP, 1, 0) + req)
        while True:
            data = nl.recv(65536)
            if not data:
                return
            off = 0
            while off + 16 <= len(data):
                length, mtype = struct.unpack_from("=LH", data, off)
                if mtype == NLMSG_DONE:
                    return
                if mtype == NLMSG_ERROR:
                    (errno,) = struct.unpack_from("=i", data, off + 16)
                    raise OSError(-errno, "sock_diag dump failed")
                if length < 16:
                    raise OSError("malformed netlink message")
                yield data, off + 16
                off += (length + 3) & ~3


def _netlink_dump(family: int, protocol: int, states: int) -> list[Listener]:
    transport = "tcp" if protocol == pysocket.IPPROTO_TCP else "udp"
    addr_len = 4 if family == pysocket.AF_INET else 16
    out: list[Listener] = []
    for data, m in inet_diag_messages(family, protocol, states):
        sport, dport = struct.unpack_from(">HH", data, m + 4)
        if transport == "tcp" or dport == 0:
            ip = pysocket.inet_ntop(family, data[m + 8:m + 8 + addr_len])
            uid, inode = struct.unpack_from("=II", data, m + 64)
            out.append(Listener(transport, _unmap(ip), sport, inode, uid))
    return out


def _unmap(ip: str) -> str:
    if ip.startswith("::ffff:"):
        mapped = ipaddress.IPv6Address(ip).ipv4_mapped
        if mapped is not None:
            return str(mapped)
    return ip


def netlink_listeners(udp: bool = True) -> set[Listener]:
    """Listening sockets straight from the kernel (Linux NETLINK_SOCK_DIAG)."""
    out: set[Listener] = set()
    for family in (pysocket.AF_INET, pysocket.AF_INET6):
        out.update(_netlink_dump(family, pysocket.IPPROTO_TCP, TCPF_LISTEN))
        if udp:
            out.update(_netlink_dump(family, pysocket.IPPROTO_UDP, TCPF_CLOSE))
    return out


def diff_listeners(
    old: set[Listener], new: set[Listener]
) -> tuple[list[Listener], list[Listener]]:
    """(opened, closed), each sorted for stable output."""
    return sorted(new - old), sorted(old - new)


class SocketProbe(Probe[SocketConfig]):
    name = "socket"
    datasets = (SOCKET,)

    def __init__(self, config: SocketConfig, context: ProbeContext) -> None:
        super().__init__(config, context)
        self.listening: set[Listener] = set()
        self.owners: dict[int, tuple[int, str]] = {}  # inode -> (pid, name)
        self.opened = 0
        self.closed = 0
        self._netlink_failed = False
        self.conns: dict[int, Conn] | None = None  # cookie -> connection; None before the first sample
        self.conn_owners: dict[int, dict[str, Any]] = {}  # inode -> process fields
        self.outbound_disabled = ""
        self.conn_counters = {"opened": 0, "rate_limited": 0}
        self._budget = float(self.config.outbound_max_per_second)
        self._budget_at = time.monotonic()

    def read_listeners(self) -> set[Listener]:
        if self.config.source in ("auto", "netlink") and hasattr(pysocket, "AF_NETLINK"):
            try:
                return netlink_listeners(self.config.udp)
            except OSError as exc:
                if self.config.source == "netlink":
                    raise
                if not self._netlink_failed:
                    log.info("socket probe: netlink unavailable (%s); reading /proc/net", exc)
                self._netlink_failed = True
        return self.proc_listeners()

    def proc_listeners(self) -> set[Listener]:
        root = Path(self.config.proc_root) / "net"
        files = [("tcp", "tcp"), ("tcp6", "tcp")]
        if self.config.udp:
            files += [("udp", "udp"), ("udp6", "udp")]
        out: set[Listener] = set()
        found = False
        for fname, transport in files:
            try:
                text = (root / fname).read_text(encoding="ascii", errors="replace")
            except OSError:
                continue
            found = True
            out.update(parse_proc_net(text, transport))
        if not found:
            return self._psutil_listeners()
        return out

    def _psutil_listeners(self) -> set[Listener]:
        """Fallback where /proc/net is missing (not Linux): slower, but works."""
        out: set[Listener] = set()
        for c in psutil.net_connections(kind="inet"):
            is_tcp = c.type == pysocket.SOCK_STREAM
            if is_tcp and c.status != psutil.CONN_LISTEN:
                continue
            if not is_tcp and (not self.config.udp or c.raddr):
                continue
            if not c.laddr:
                continue
            out.add(Listener("tcp" if is_tcp else "udp", c.laddr.ip, c.laddr.port,
                             hash((c.pid, c.fd)), -1))
            if c.pid:
                self.owners[hash((c.pid, c.fd))] = (c.pid, "")
        return out

    def resolve_owners(self, inodes: set[int]) -> None:
        """inode -> owning (pid, name), walking /proc/*/fd once for all missing inodes."""
        missing = {i for i in inodes if i and i not in self.owners}
        if not missing:
            return
        proc = self.config.proc_root
        wanted = {f"socket:[{i}]": i for i in missing}
        try:
            # In pid order: of several holders of one socket (a shell and the command it
            # forked, which inherited the descriptor) the older, usually the opener, wins.
            pids = sorted((d for d in os.listdir(proc) if d.isdigit()), key=int)
        except OSError:
            return
        for pid in pids:
            # readlink relative to an open /proc/<pid>/fd: no path walk per descriptor.
            try:
                dir_fd = os.open(f"{proc}/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                continue  # gone, or not ours to read (agent runs without root)
            try:
                fds = os.listdir(dir_fd)
                for fd in fds:
                    try:
                        target = os.readlink(fd, dir_fd=dir_fd)
                    except OSError:
                        continue
                    inode = wanted.pop(target, None)
                    if inode is not None:
                        self.owners[inode] = (int(pid), _comm(Path(proc) / pid))
            except OSError:
                continue
            finally:
                os.close(dir_fd)
            if not wanted:
                return

    def to_event(self, sock: Listener, action: str, kind: str, etype: str) -> dict[str, Any]:
        ip = sock.ip
        ipv6 = ":" in ip
        fields: dict[str, Any] = {
            "server": {"ip": ip, "port": sock.port},
            "network": {"transport": sock.transport, "type": "ipv6" if ipv6 else "ipv4"},
        }
        owner = self.owners.get(sock.inode)
        if owner:
            pid, pname = owner
            fields["process"] = {"pid": pid, **({"name": pname} if pname else {})}
        if sock.uid >= 0:
            fields["user"] = {"id": str(sock.uid)}
        return new_event(
            SOCKET, kind=kind, category=["network"], type=[etype], action=action,
            message=f"{sock.transport} {ip}:{sock.port} {action.replace('socket-', '')}",
            **fields,
        )

    def scan_once(self, first: bool = False) -> list[dict[str, Any]]:
        current = self.read_listeners()
        opened, closed = diff_listeners(self.listening, current)
        self.resolve_owners({s.inode for s in opened})
        events: list[dict[str, Any]] = []
        limit = self.config.max_events_per_scan
        for s in opened[:limit]:
            if first:
                events.append(self.to_event(s, "socket-listening", "state", "info"))
            else:
                events.append(self.to_event(s, "socket-opened", "event", "start"))
                self.opened += 1
        for s in closed[: max(0, limit - len(events))]:
            events.append(self.to_event(s, "socket-closed", "event", "end"))
            self.closed += 1
        for s in closed:
            self.owners.pop(s.inode, None)
        self.listening = current
        return events

    async def run(self, emit: Emit) -> None:
        events = self.scan_once(first=True)
        if events:
            await emit(events)
        loop = asyncio.get_running_loop()
        next_listen = loop.time() + self.config.interval
        tick = self.config.outbound_interval if self.config.outbound else self.config.interval
        while True:
            await asyncio.sleep(min(tick, max(0.0, next_listen - loop.time())))
            events = []
            if loop.time() >= next_listen:
                events = self.scan_once()
                next_listen = loop.time() + self.config.interval
            if self.config.outbound and not self.outbound_disabled:
                events += self.sample_outbound()
            if events:
                await emit(events)

    # ------------------------------------------------------------ outbound connections
    def sample_outbound(self) -> list[dict[str, Any]]:
        """Connections opened since the last sample (the first sample is the baseline)."""
        from agent.probes.connections import TCP_SYN_SENT, is_loopback, tcp_connections

        try:
            current = {c.cookie: c for c in tcp_connections()}
        except OSError as exc:
            self.outbound_disabled = f"sock_diag unavailable: {exc}"
            log.warning("socket probe: outbound connections not sampled (%s)", exc)
            return []
        previous, self.conns = self.conns, current
        if previous is None:
            return []
        listen_ports = {s.port for s in self.listening if s.transport == "tcp"}
        loopback = self.config.outbound_include_loopback
        new = [c for k, c in current.items() if k not in previous
               and (c.state == TCP_SYN_SENT or c.sport not in listen_ports)
               and (loopback or not is_loopback(c.dst))]
        live = {c.inode for c in current.values()}
        for inode in [i for i in self.conn_owners if i not in live]:
            del self.conn_owners[inode]
        if not new:
            return []
        allowed = self._take(len(new), self.config.max_events_per_scan)
        over = len(new) - allowed
        new = new[:allowed]
        self._resolve_conn_owners({c.inode for c in new if c.inode})
        events = [self._conn_event(c) for c in new]
        self.conn_counters["opened"] += len(events)
        if over:
            self.conn_counters["rate_limited"] += over
            events.append(new_event(
                SOCKET, kind="event", category=["network"], type=["info"],
                action="connections-suppressed",
                message=f"{over} outbound connections over the limit "
                        f"({self.config.outbound_max_per_second:g}/s) were not reported one by one"))
        return events

    def _take(self, n: int, cap: int) -> int:
        rate = float(self.config.outbound_max_per_second)
        now = time.monotonic()
        self._budget = min(rate, self._budget + (now - self._budget_at) * rate)
        self._budget_at = now
        take = min(n, cap, int(self._budget))
        self._budget -= take
        return take

    def _resolve_conn_owners(self, inodes: set[int]) -> None:
        missing = {i for i in inodes if i not in self.conn_owners}
        if not missing:
            return
        self.resolve_owners(missing)
        for inode in missing:
            owner = self.owners.pop(inode, None)
            if owner is not None:
                self.conn_owners[inode] = _process_fields(Path(self.config.proc_root), owner[0])

    def _conn_event(self, c: Conn) -> dict[str, Any]:
        from agent.probes.connections import STATE_NAMES

        fields: dict[str, Any] = {
            "source": {"ip": c.src, "port": c.sport},
            "destination": {"ip": c.dst, "port": c.dport},
            "network": {"transport": "tcp", "type": "ipv6" if ":" in c.dst else "ipv4",
                        "direction": "egress"},
            "related": {"ip": sorted({c.src, c.dst})},
            "user": {"id": str(c.uid)},
            "canhgac": {"socket": {"state": STATE_NAMES.get(c.state, str(c.state))}},
        }
        proc = self.conn_owners.get(c.inode)
        if proc:
            fields["process"] = proc
        who = f" by {proc.get('name') or proc['pid']}" if proc else ""
        return new_event(
            SOCKET, kind="event", category=["network"], type=["connection", "start"],
            action="connection-opened",
            message=f"tcp {c.src}:{c.sport} -> {c.dst}:{c.dport}{who}", **fields)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"listening": len(self.listening), "opened": self.opened,
                               "closed": self.closed}
        if self.config.outbound:
            out["outbound"] = {**self.conn_counters, "tracked": len(self.conns or {}),
                               **({"disabled": self.outbound_disabled}
                                  if self.outbound_disabled else {})}
        return out


def _process_fields(proc: Path, pid: int) -> dict[str, Any]:
    """ECS process.{pid,name,executable,command_line} of a live process (what is readable)."""
    out: dict[str, Any] = {"pid": pid}
    base = proc / str(pid)
    name = _comm(base)
    if name:
        out["name"] = name
    try:
        out["executable"] = os.readlink(base / "exe")
    except OSError:
        pass
    try:
        raw = (base / "cmdline").read_bytes()
    except OSError:
        raw = b""
    if raw:
        args = raw.rstrip(b"\0").split(b"\0")
        out["command_line"] = " ".join(a.decode("utf-8", "replace") for a in args)[:4096]
    return out


def _comm(pid_dir: Path) -> str:
    try:
        return (pid_dir / "comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
