"""Packet decoding and detection for the network sensor: pure code, no sockets.

Decoding is done by hand with ``struct`` rather than scapy dissection: the
sensor sees only SYNs, ARP and DNS (the kernel filter drops the rest), but a
SYN flood or scan arrives at line rate and scapy's per-packet object building
costs ~50x more than slicing a few header bytes.

Detectors keep bounded state (a cap on tracked sources/addresses, oldest
evicted first) and return finished ECS events; they never block.
"""

from __future__ import annotations

import socket
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from canhgac.schema import DNS, NETWORK, new_event
from canhgac.timeutil import from_epoch

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100

DNS_TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA",
             33: "SRV", 35: "NAPTR", 43: "DS", 46: "RRSIG", 48: "DNSKEY", 64: "SVCB", 65: "HTTPS",
             252: "AXFR", 255: "ANY", 257: "CAA"}


_ntoa = socket.inet_ntoa  # C, ~10x faster than ipaddress on the hot path


def _ntop6(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, b)


def mac_str(b: bytes) -> str:
    """ECS wants MACs as uppercase, hyphen-separated octets."""
    return "-".join(f"{x:02X}" for x in b)


@dataclass(slots=True)
class Syn:
    src: str
    dst: str
    dport: int
    ts: float


@dataclass(slots=True)
class Arp:
    op: int  # 1 request, 2 reply
    sender_mac: str
    sender_ip: str
    target_mac: str
    target_ip: str
    eth_src: str
    ts: float


@dataclass(slots=True)
class DnsQuery:
    src: str
    sport: int
    dst: str
    dport: int
    transport: str
    id: int
    name: str
    qtype: str
    ts: float


def _dns_question(payload: bytes) -> tuple[int, str, str] | None:
    """(id, name, type) of a DNS query's first question; None for answers or junk."""
    if len(payload) < 12:
        return None
    qid, flags, qdcount = struct.unpack_from("!HHH", payload, 0)
    if flags & 0x8000 or qdcount == 0:  # a response, or no question
        return None
    pos, labels = 12, []
    for _ in range(128):
        if pos >= len(payload):
            return None
        n = payload[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0:  # no compression pointers in a query's first name
            return None
        label = payload[pos + 1:pos + 1 + n]
        if len(label) != n:
            return None
        labels.append(label.decode("ascii", "backslashreplace"))
        pos += 1 + n
    else:
        return None
    if pos + 4 > len(payload):
        return None
    qtype = struct.unpack_from("!H", payload, pos)[0]
    return qid, ".".join(labels) or ".", DNS_TYPES.get(qtype, f"TYPE{qtype}")


def decode(frame: bytes, ts: float) -> Syn | Arp | DnsQuery | None:
    """One Ethernet frame -> what the detectors care about (or None)."""
    if len(frame) < 14:
        return None
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    off = 14
    if ethertype == ETH_P_8021Q and len(frame) >= 18:
        ethertype = struct.unpack_from("!H", frame, 16)[0]
        off = 18
    if ethertype == ETH_P_ARP:
        if len(frame) < off + 28:
            return None
        htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", frame, off)
        if htype != 1 or ptype != ETH_P_IP or hlen != 6 or plen != 4:
            return None
        b = off + 8
        return Arp(op, mac_str(frame[b:b + 6]), _ntoa(frame[b + 6:b + 10]),
                   mac_str(frame[b + 10:b + 16]),
                   _ntoa(frame[b + 16:b + 20]), mac_str(frame[6:12]), ts)
    if ethertype == ETH_P_IP:
        if len(frame) < off + 20:
            return None
        vihl = frame[off]
        ihl = (vihl & 0x0F) * 4
        frag = struct.unpack_from("!H", frame, off + 6)[0]
        if frag & 0x1FFF:  # a later fragment has no transport header
            return None
        proto = frame[off + 9]
        src = _ntoa(frame[off + 12:off + 16])
        dst = _ntoa(frame[off + 16:off + 20])
        l4 = off + ihl
    elif ethertype == ETH_P_IPV6:
        if len(frame) < off + 40:
            return None
        proto = frame[off + 6]  # extension headers are not walked
        src = _ntop6(frame[off + 8:off + 24])
        dst = _ntop6(frame[off + 24:off + 40])
        l4 = off + 40
    else:
        return None
    if proto == 6 and len(frame) >= l4 + 14:
        dport = struct.unpack_from("!H", frame, l4 + 2)[0]
        flags = frame[l4 + 13]
        if flags & 0x12 == 0x02:  # SYN without ACK
            return Syn(src, dst, dport, ts)
        return None
    if proto == 17 and len(frame) >= l4 + 8:
        sport, dport = struct.unpack_from("!HH", frame, l4)
        if dport != 53:
            return None
        q = _dns_question(frame[l4 + 8:])
        if q is None:
            return None
        return DnsQuery(src, sport, dst, dport, "udp", q[0], q[1], q[2], ts)
    return None


# ------------------------------------------------------------------ port scans
@dataclass(slots=True)
class _Source:
    first: float
    last: float
    syns: int = 0
    targets: dict[str, set[int]] = field(default_factory=dict)
    reported: bool = False


class PortScanDetector:
    """Distinct destination ports (on one host) or hosts per source within a window.

    One summary event per source and window: sent once the source has been quiet
    for ``idle`` seconds or the window ends, whichever comes first, and only if a
    threshold was crossed.
    """

    def __init__(self, window: float = 60.0, min_ports: int = 20, min_hosts: int = 20,
                 idle: float = 5.0, max_sources: int = 10_000, max_ports: int = 65_536,
                 ignore_sources: frozenset[str] = frozenset()) -> None:
        self.window, self.min_ports, self.min_hosts, self.idle = window, min_ports, min_hosts, idle
        self.max_sources, self.max_ports = max_sources, max_ports
        self.ignore = ignore_sources
        self.sources: OrderedDict[str, _Source] = OrderedDict()
        self.evicted = 0

    def feed(self, syn: Syn) -> None:
        if syn.src in self.ignore:
            return
        s = self.sources.get(syn.src)
        if s is None:
            if len(self.sources) >= self.max_sources:
                self.sources.popitem(last=False)
                self.evicted += 1
            s = self.sources[syn.src] = _Source(syn.ts, syn.ts)
        else:
            self.sources.move_to_end(syn.src)
        s.last = syn.ts
        s.syns += 1
        ports = s.targets.get(syn.dst)
        if ports is None:
            if len(s.targets) < self.max_ports:
                ports = s.targets[syn.dst] = set()
            else:
                return
        if len(ports) < self.max_ports:
            ports.add(syn.dport)

    def _is_scan(self, s: _Source) -> bool:
        return (len(s.targets) >= self.min_hosts
                or any(len(p) >= self.min_ports for p in s.targets.values()))

    def flush(self, now: float, quiet: list[tuple[str, _Source]] | None = None) -> list[dict[str, Any]]:
        """Summaries of finished scans; sources that finished below the thresholds are
        appended to ``quiet`` (the slow scan detector's input) when it is given."""
        out = []
        for src in list(self.sources):
            s = self.sources[src]
            done = now - s.last >= self.idle or now - s.first >= self.window
            if not done:
                continue
            del self.sources[src]
            if self._is_scan(s):
                out.append(self._event(src, s))
            elif quiet is not None:
                quiet.append((src, s))
        return out

    def _event(self, src: str, s: _Source) -> dict[str, Any]:
        top_host, top_ports = max(s.targets.items(), key=lambda kv: len(kv[1]))
        all_ports: set[int] = set().union(*s.targets.values())
        hosts = sorted(s.targets, key=lambda h: -len(s.targets[h]))
        kind = "vertical" if len(top_ports) >= self.min_ports else "horizontal"
        ev = new_event(
            NETWORK, category=["network", "intrusion_detection"], type=["info", "connection"],
            action="port_scan", outcome="unknown", timestamp=from_epoch(s.first),
            source={"ip": src, "address": src},
            destination={"ip": top_host, "address": top_host},
            network={"transport": "tcp", "type": "ipv6" if ":" in src else "ipv4"},
            related={"ip": sorted({src, *hosts[:10]})},
            canhgac={"scan": {
                "kind": kind,
                "distinct_ports": len(all_ports),
                "distinct_hosts": len(s.targets),
                "max_ports_one_host": len(top_ports),
                "syn_packets": s.syns,
                "sample_ports": sorted(all_ports)[:20],
                "sample_hosts": hosts[:10],
            }},
        )
        return self._with_times(ev, s)

    @staticmethod
    def _with_times(ev: dict[str, Any], s: _Source) -> dict[str, Any]:
        ev["event"]["start"] = from_epoch(s.first)
        ev["event"]["end"] = from_epoch(s.last)
        ev["event"]["duration"] = int((s.last - s.first) * 1e9)
        return ev


class SlowScanDetector:
    """Scans too slow for PortScanDetector: one probe every few seconds, for minutes.

    Fed with what the fast detector forgets (a source idle for ``idle`` seconds, or
    at the end of its window, that stayed below the thresholds), it adds up
    distinct (host, port) targets per source over ``window`` seconds (minutes).
    Memory is bounded: at most ``max_sources`` sources (oldest first out) and, per
    source, targets up to the thresholds only (a source that crosses one is
    reported at once and then forgotten). A source is reported once per window.
    """

    def __init__(self, window: float = 600.0, min_ports: int = 20, min_hosts: int = 20,
                 max_sources: int = 4096) -> None:
        self.window, self.min_ports, self.min_hosts = window, min_ports, min_hosts
        self.max_sources = max_sources
        self.sources: OrderedDict[str, _Source] = OrderedDict()
        self.reported: OrderedDict[str, float] = OrderedDict()  # source -> when
        self.evicted = 0

    def feed(self, src: str, part: _Source, now: float) -> dict[str, Any] | None:
        at = self.reported.get(src)
        if at is not None and now - at < self.window:
            return None
        acc = self.sources.get(src)
        if acc is None or now - acc.first >= self.window:
            if acc is None and len(self.sources) >= self.max_sources:
                self.sources.popitem(last=False)
                self.evicted += 1
            acc = self.sources[src] = _Source(part.first, part.last)
        self.sources.move_to_end(src)
        acc.last = max(acc.last, part.last)
        acc.syns += part.syns
        for host, ports in part.targets.items():
            have = acc.targets.get(host)
            if have is None:
                if len(acc.targets) >= self.min_hosts:
                    continue
                have = acc.targets[host] = set()
            for port in ports:
                if len(have) >= self.min_ports:
                    break
                have.add(port)
        if len(acc.targets) >= self.min_hosts or any(len(p) >= self.min_ports
                                                     for p in acc.targets.values()):
            del self.sources[src]
            self.reported[src] = now
            if len(self.reported) > self.max_sources:
                self.reported.popitem(last=False)
            return self._event(src, acc)
        return None

    def scan_reported(self, src: str, now: float) -> None:
        """The fast detector reported this source: do not report it again as slow."""
        self.sources.pop(src, None)
        self.reported[src] = now
        if len(self.reported) > self.max_sources:
            self.reported.popitem(last=False)

    def _event(self, src: str, s: _Source) -> dict[str, Any]:
        top_host, top_ports = max(s.targets.items(), key=lambda kv: len(kv[1]))
        all_ports: set[int] = set().union(*s.targets.values())
        hosts = sorted(s.targets, key=lambda h: -len(s.targets[h]))
        ev = new_event(
            NETWORK, category=["network", "intrusion_detection"], type=["info", "connection"],
            action="port_scan", outcome="unknown", timestamp=from_epoch(s.first),
            source={"ip": src, "address": src},
            destination={"ip": top_host, "address": top_host},
            network={"transport": "tcp", "type": "ipv6" if ":" in src else "ipv4"},
            related={"ip": sorted({src, *hosts[:10]})},
            canhgac={"scan": {
                "kind": "slow",
                "window_seconds": self.window,
                "distinct_ports": len(all_ports),
                "distinct_hosts": len(s.targets),
                "max_ports_one_host": len(top_ports),
                "syn_packets": s.syns,
                "sample_ports": sorted(all_ports)[:20],
                "sample_hosts": hosts[:10],
            }},
        )
        return PortScanDetector._with_times(ev, s)


# ------------------------------------------------------------------ ARP
class ArpDetector:
    """IP -> MAC bindings learnt from ARP; a binding that changes is spoofing (or a NIC
    swap: the operator decides), and a burst of gratuitous ARPs is a flood."""

    def __init__(self, binding_ttl: float = 3600.0, realert: float = 60.0,
                 flood_window: float = 10.0, flood_count: int = 20,
                 max_bindings: int = 65_536) -> None:
        self.ttl, self.realert = binding_ttl, realert
        self.flood_window, self.flood_count = flood_window, flood_count
        self.max_bindings = max_bindings
        self.bindings: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._alerted: dict[tuple[str, str], float] = {}
        self._garp: dict[str, list[float]] = {}  # sender MAC -> recent gratuitous times
        self._flood_alerted: dict[str, float] = {}

    def feed(self, a: Arp) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if a.sender_ip == "0.0.0.0":  # an ARP probe (RFC 5227): no claim made
            return out
        gratuitous = a.sender_ip == a.target_ip
        if gratuitous:
            ev = self._gratuitous(a)
            if ev:
                out.append(ev)
        prev = self.bindings.get(a.sender_ip)
        if prev is not None:
            old_mac, seen = prev
            if old_mac != a.sender_mac and a.ts - seen <= self.ttl:
                key = (a.sender_ip, a.sender_mac)
                if a.ts - self._alerted.get(key, -1e18) >= self.realert:
                    self._alerted[key] = a.ts
                    out.append(self._spoof_event(a, old_mac, seen))
                    if len(self._alerted) > self.max_bindings:
                        self._alerted.clear()
                # Keep the first binding: an attacker must not be able to make
                # himself the reference by repeating his lie.
                return out
        if len(self.bindings) >= self.max_bindings and a.sender_ip not in self.bindings:
            self.bindings.popitem(last=False)
        self.bindings[a.sender_ip] = (a.sender_mac, a.ts)
        self.bindings.move_to_end(a.sender_ip)
        return out

    def _spoof_event(self, a: Arp, old_mac: str, seen: float) -> dict[str, Any]:
        return new_event(
            NETWORK, category=["network", "intrusion_detection"], type=["info"],
            action="arp_spoof", outcome="unknown", timestamp=from_epoch(a.ts),
            source={"ip": a.sender_ip, "mac": a.sender_mac, "address": a.sender_ip},
            destination={"ip": a.target_ip, "mac": a.target_mac},
            network={"protocol": "arp", "type": "ipv4"},
            related={"ip": [a.sender_ip]},
            canhgac={"arp": {"previous_mac": old_mac, "previous_seen": from_epoch(seen),
                             "opcode": "reply" if a.op == 2 else "request",
                             "ethernet_source": a.eth_src}},
        )

    def _gratuitous(self, a: Arp) -> dict[str, Any] | None:
        times = self._garp.setdefault(a.sender_mac, [])
        times.append(a.ts)
        cutoff = a.ts - self.flood_window
        while times and times[0] < cutoff:
            times.pop(0)
        if len(self._garp) > self.max_bindings:
            self._garp.clear()
        if len(times) < self.flood_count:
            return None
        if a.ts - self._flood_alerted.get(a.sender_mac, -1e18) < self.flood_window:
            return None
        self._flood_alerted[a.sender_mac] = a.ts
        return new_event(
            NETWORK, category=["network", "intrusion_detection"], type=["info"],
            action="arp_gratuitous_flood", outcome="unknown", timestamp=from_epoch(a.ts),
            source={"ip": a.sender_ip, "mac": a.sender_mac, "address": a.sender_ip},
            network={"protocol": "arp", "type": "ipv4"},
            related={"ip": [a.sender_ip]},
            canhgac={"arp": {"gratuitous_count": len(times), "window_seconds": self.flood_window}},
        )


def dns_event(q: DnsQuery) -> dict[str, Any]:
    return new_event(
        DNS, category=["network"], type=["protocol", "info"], action="dns_query",
        timestamp=from_epoch(q.ts),
        source={"ip": q.src, "port": q.sport, "address": q.src},
        destination={"ip": q.dst, "port": q.dport, "address": q.dst},
        network={"transport": q.transport, "protocol": "dns",
                 "type": "ipv6" if ":" in q.src else "ipv4"},
        dns={"type": "query", "id": str(q.id),
             "question": {"name": q.name, "type": q.qtype}},
        related={"ip": sorted({q.src, q.dst})},
    )
