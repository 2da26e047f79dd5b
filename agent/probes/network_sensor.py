"""Network sensor: port scans, ARP spoofing and DNS queries from raw packets.

Cheap on a busy server by construction: a kernel BPF filter (attached to an
AF_PACKET socket) passes only TCP SYNs without ACK, ARP and DNS, so the kernel
drops bulk traffic before it is ever copied to us. The default filter is a
built-in program (agent.probes.bpf); a custom ``bpf_filter`` is compiled by
libpcap through ctypes; scapy is never imported. A socket is bound only after
its filter is attached, so no unfiltered packet is queued in between.

A reader thread owns the sockets, decodes and runs the detectors (no per-packet
hop to the event loop); finished events cross to the loop in a bounded deque.
It ticks (port scan summaries, kernel counters) every 0.5 s only while there is
something to tick for; an idle sensor sleeps in select() until a packet arrives
or it is stopped (through a wake-up pipe), so a quiet host costs no wake-ups.
Kernel drops are read from PACKET_STATISTICS and reported as they are, so "no
alert" is never mistaken for "nothing happened" when the sensor could not keep up.

Without CAP_NET_RAW the probe does not crash-loop: it logs once, reports
``enabled: false`` with the reason, and idles.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from agent.probes import bpf
from agent.probes.base import Emit, Probe, ProbeConfig, ProbeContext
from agent.probes.bpf import DEFAULT_FILTER
from canhgac.config import Duration, field_meta
from canhgac.schema import DNS, NETWORK
from canhgac.tasks import wait_for_event

log = logging.getLogger(__name__)

CAP_NET_RAW = 13
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4
SO_RCVBUFFORCE = 33
TICK = 0.5  # seconds between port scan flushes / kernel counter reads, while active

__all__ = ["DEFAULT_FILTER", "NetworkSensorConfig", "NetworkSensorProbe"]


def has_capability(bit: int, status_path: str = "/proc/self/status") -> bool:
    """Is ``bit`` in this process's effective capability set?"""
    try:
        with open(status_path) as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except OSError:
        pass
    return False


@dataclass
class NetworkSensorConfig(ProbeConfig):
    #: interfaces to capture on; empty: all interfaces except loopback
    interfaces: list[str] = field(default_factory=list)
    bpf_filter: str = DEFAULT_FILTER
    #: also look at packets this host sends (its own outbound SYNs and queries)
    include_outgoing: bool = False
    scan_window: Duration = field(default=Duration(60), metadata=field_meta(min=1))
    scan_idle: Duration = field(default=Duration(5), metadata=field_meta(min=0.1))
    scan_min_ports: int = field(default=20, metadata=field_meta(min=2))
    scan_min_hosts: int = field(default=20, metadata=field_meta(min=2))
    scan_ignore_sources: list[str] = field(default_factory=list)
    #: slow scans: distinct ports (or hosts) per source added up over minutes, from what
    #: the fast detector forgot below its thresholds; 0 turns it off
    slow_scan_window: Duration = field(default=Duration(600), metadata=field_meta(min=0))
    slow_scan_min_ports: int = field(default=20, metadata=field_meta(min=2))
    slow_scan_min_hosts: int = field(default=20, metadata=field_meta(min=2))
    slow_scan_max_sources: int = field(default=4096, metadata=field_meta(min=16))
    arp_binding_ttl: Duration = field(default=Duration(3600), metadata=field_meta(min=1))
    arp_realert: Duration = field(default=Duration(60), metadata=field_meta(min=0))
    arp_flood_window: Duration = field(default=Duration(10), metadata=field_meta(min=0.1))
    arp_flood_count: int = field(default=20, metadata=field_meta(min=2))
    dns_queries: bool = True
    #: socket receive buffer; bigger absorbs bursts (needs CAP_NET_ADMIN above rmem_max)
    rcvbuf_bytes: int = field(default=8 << 20, metadata=field_meta(min=65536))
    max_pending_events: int = field(default=10_000, metadata=field_meta(min=100))


class _Reader(threading.Thread):
    """Owns the sockets; decode + detect per packet; hands finished events over."""

    def __init__(self, probe: NetworkSensorProbe, socks: list[socket.socket],
                 loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(name="canhgac-net-sensor", daemon=True)
        from agent.probes.netdetect import ArpDetector, PortScanDetector, SlowScanDetector

        cfg = probe.config
        self.probe, self.socks, self.loop = probe, socks, loop
        self.stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self.scan = PortScanDetector(cfg.scan_window, cfg.scan_min_ports, cfg.scan_min_hosts,
                                     cfg.scan_idle,
                                     ignore_sources=frozenset(cfg.scan_ignore_sources))
        self.slow = (SlowScanDetector(cfg.slow_scan_window, cfg.slow_scan_min_ports,
                                      cfg.slow_scan_min_hosts, cfg.slow_scan_max_sources)
                     if cfg.slow_scan_window > 0 else None)
        self.arp = ArpDetector(cfg.arp_binding_ttl, cfg.arp_realert, cfg.arp_flood_window,
                               cfg.arp_flood_count)
        self.error: BaseException | None = None

    def halt(self) -> None:
        """Ask the thread to finish; wakes it from select() at once."""
        self.stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0")

    def close_pipe(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _hand_over(self, events: list[dict[str, Any]]) -> None:
        p = self.probe
        room = p.config.max_pending_events - len(p.pending)
        if room < len(events):
            p.counters["events_dropped"] += len(events) - max(room, 0)
            events = events[:max(room, 0)]
        if events:
            p.pending.extend(events)
            self.loop.call_soon_threadsafe(p.wake.set)

    def _stats(self) -> None:
        for s in self.socks:
            try:
                raw = s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
            except OSError:
                continue
            packets, drops = struct.unpack("II", raw)  # reset by the kernel on each read
            self.probe.counters["kernel_packets"] += packets
            self.probe.counters["kernel_drops"] += drops

    def _flush_scans(self, now: float) -> list[dict[str, Any]]:
        if self.slow is None:
            return self.scan.flush(now)
        quiet: list[Any] = []
        out = self.scan.flush(now, quiet)
        for ev in out:
            self.slow.scan_reported(ev["source"]["ip"], now)
        for src, part in quiet:
            slow = self.slow.feed(src, part, now)
            if slow is not None:
                out.append(slow)
        return out

    def run(self) -> None:
        from agent.probes.netdetect import Arp, DnsQuery, Syn, decode, dns_event

        c = self.probe.counters
        want_out = self.probe.config.include_outgoing
        # Capturing on "all": loopback is this host talking to itself (health checks,
        # local proxies), not a network attack. Name "lo" explicitly to watch it.
        skip_lo = not self.probe.config.interfaces
        want_dns = self.probe.config.dns_queries
        next_tick = time.monotonic() + TICK
        watched: list[socket.socket | int] = [*self.socks, self._wake_r]
        unread_stats = False  # packets taken since the kernel counters were last read
        try:
            while not self.stop.is_set():
                # Nothing to tick for: sleep until a packet arrives or halt() is called.
                timeout = TICK if self.scan.sources or unread_stats else None
                ready, _, _ = select.select(watched, [], [], timeout)
                events: list[dict[str, Any]] = []
                for s in ready:
                    if not isinstance(s, socket.socket):
                        continue  # the wake-up pipe: the loop condition sees stop
                    unread_stats = True
                    for _ in range(4096):  # drain, but let the others and the clock in
                        try:
                            frame, addr = s.recvfrom(65535, socket.MSG_DONTWAIT)
                        except BlockingIOError:
                            break
                        except OSError as exc:
                            if exc.errno in (errno.EINTR, errno.ENETDOWN):
                                break
                            raise
                        c["packets"] += 1
                        if addr[2] == PACKET_OUTGOING and not want_out:
                            continue
                        if skip_lo and addr[0] == "lo":
                            continue
                        item = decode(frame, time.time())
                        if item is None:
                            continue
                        if isinstance(item, Syn):
                            c["syn"] += 1
                            self.scan.feed(item)
                        elif isinstance(item, Arp):
                            c["arp"] += 1
                            events.extend(self.arp.feed(item))
                        elif isinstance(item, DnsQuery):
                            c["dns"] += 1
                            if want_dns:
                                events.append(dns_event(item))
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = now + TICK
                    events.extend(self._flush_scans(time.time()))
                    self._stats()
                    unread_stats = False
                if events:
                    self._hand_over(events)
        except BaseException as exc:  # surfaced by run(): the supervisor restarts us
            self.error = exc
            self.loop.call_soon_threadsafe(self.probe.wake.set)
        finally:
            with contextlib.suppress(Exception):
                self._stats()


def _drain(s: socket.socket) -> None:
    """Discard frames queued before the BPF filter was attached (they bypassed it)."""
    while True:
        try:
            s.recv(65535, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return


class NetworkSensorProbe(Probe[NetworkSensorConfig]):
    name: ClassVar[str] = "network_sensor"
    datasets: ClassVar[tuple[str, ...]] = (NETWORK, DNS)
    default_enabled: ClassVar[bool] = True

    def __init__(self, config: NetworkSensorConfig, context: ProbeContext) -> None:
        super().__init__(config, context)
        self.pending: collections.deque[dict[str, Any]] = collections.deque()
        self.wake = asyncio.Event()
        self.ready = asyncio.Event()
        self.enabled: bool | None = None
        self.reason = ""
        self.counters = {"packets": 0, "syn": 0, "arp": 0, "dns": 0, "kernel_packets": 0,
                         "kernel_drops": 0, "events_dropped": 0, "events": 0}

    def _open(self) -> list[socket.socket]:
        ifaces: list[str | None] = list(self.config.interfaces) or [None]
        # Outgoing packets and loopback (when capturing on all interfaces) are dropped
        # in the kernel, before they cost a wake-up; the reader checks them again.
        lo: int | None = None
        if not self.config.interfaces:
            with contextlib.suppress(OSError):
                lo = socket.if_nametoindex("lo")
        program = bpf.prefilter(bpf.compile_filter(self.config.bpf_filter),
                                drop_outgoing=not self.config.include_outgoing, drop_ifindex=lo)
        socks = []
        try:
            for iface in ifaces:
                if iface is None:
                    # All interfaces: Python cannot bind to ifindex 0 by name, so the
                    # socket listens from creation; whatever arrives before the filter
                    # is attached is drained below (libpcap does the same).
                    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                else:
                    # Protocol 0: receives nothing until bound, so the filter is in place
                    # before the first packet is queued.
                    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
                socks.append(s)
                try:
                    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.config.rcvbuf_bytes)
                except OSError:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.config.rcvbuf_bytes)
                bpf.attach(s, program)
                if iface is not None:
                    s.bind((iface, ETH_P_ALL))
                s.setblocking(False)
                if iface is None:
                    _drain(s)
                s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)  # zero the counters
        except BaseException:
            for s in socks:
                s.close()
            raise
        return socks

    async def run(self, emit: Emit) -> None:
        if not has_capability(CAP_NET_RAW):
            self.enabled = False
            self.reason = "CAP_NET_RAW missing: network sensor disabled"
            log.warning("network_sensor: the agent lacks CAP_NET_RAW; the network sensor is "
                        "disabled (grant it with AmbientCapabilities=CAP_NET_RAW)")
            self.ready.set()
            await asyncio.Event().wait()  # idle until cancelled: no restart loop
            return
        loop = asyncio.get_running_loop()
        try:
            socks = await asyncio.to_thread(self._open)
        except OSError as exc:
            self.enabled = False
            self.reason = f"cannot open capture on {self.config.interfaces or 'all'}: {exc}"
            raise
        self.enabled, self.reason = True, ""
        reader = _Reader(self, socks, loop)
        reader.start()
        self.ready.set()
        log.info("network_sensor: capturing on %s", ", ".join(self.config.interfaces) or "all")
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                if reader.error is not None:
                    raise RuntimeError(f"network sensor reader failed: {reader.error!r}")
                while self.pending:
                    batch = [self.pending.popleft() for _ in range(min(500, len(self.pending)))]
                    await emit(batch)
                    self.counters["events"] += len(batch)
        finally:
            reader.halt()
            await asyncio.to_thread(reader.join, 2.0)
            if not reader.is_alive():
                reader.close_pipe()
            for s in socks:
                s.close()

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"enabled": self.enabled, **self.counters}
        if self.reason:
            out["reason"] = self.reason
        out["pending_events"] = len(self.pending)
        return out


def _libpcap_loaded() -> bool:
    try:
        with open("/proc/self/maps") as f:
            return "libpcap" in f.read()
    except OSError:
        return False


async def _standalone(config: dict[str, Any], state_dir: str) -> None:
    """Run the sensor alone, events as NDJSON on stdout (tests, benchmarks, debugging)."""
    import json
    import signal
    import sys
    from pathlib import Path

    from canhgac.config import load_section

    cfg = load_section(config, NetworkSensorConfig, "--config")
    probe = NetworkSensorProbe(cfg, ProbeContext("standalone", socket.gethostname(),
                                                 Path(state_dir)))

    def out(doc: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()

    async def emit(events: list[dict[str, Any]]) -> None:
        for ev in events:
            out(ev)

    def status() -> dict[str, Any]:
        return {**probe.status(), "scapy_loaded": "scapy" in sys.modules,
                "libpcap_loaded": _libpcap_loaded()}

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(probe.run(emit))
    await probe.ready.wait()
    out({"ready": status()})
    while not stop.is_set() and not task.done():
        await wait_for_event(stop, 0.5)
        out({"status": status()})
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    out({"final": status()})


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - thin CLI
    from agent.probes.standalone import standalone_main

    standalone_main("python -m agent.probes.network_sensor",
                    "run the network sensor alone (NDJSON on stdout)",
                    "canhgac-net-", _standalone, argv)


if __name__ == "__main__":  # pragma: no cover
    main()
