"""Real attacks against the network sensor, in two private network namespaces.

Namespace A runs the sensor (``python -m agent.probes.network_sensor``, NDJSON out);
namespace B is the attacker: nmap SYN scan, forged ARP replies and a gratuitous
ARP flood with scapy, a DNS query. Addresses are 10.250.x.y inside these
namespaces only; both namespaces are deleted even when a test fails.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def need(tool: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}")
                                  else None)
    if path is None:
        msg = f"{tool} is not installed (deploy/test-deps.sh installs it)"
        pytest.fail(msg)
    return path


def sh(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=120, **kw)


@dataclass
class Pair:
    a: str  # sensor namespace
    b: str  # attacker namespace
    if_a: str
    if_b: str
    ip_a: str
    ip_b: str
    net: str
    mac_a: str
    mac_b: str

    def in_b(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.b, *args, **kw)

    def scapy_b(self, code: str) -> None:
        """Run scapy code in the attacker namespace (``p`` is this pair)."""
        prelude = (f"from scapy.all import *\nconf.verb = 0\nIFACE = {self.if_b!r}\n"
                   f"A_IP, B_IP, A_MAC = {self.ip_a!r}, {self.ip_b!r}, {self.mac_a!r}\n")
        self.in_b(PY, "-c", prelude + textwrap.dedent(code), cwd=str(ROOT))


@pytest.fixture
def netns_pair() -> Iterator[Pair]:
    need("ip")
    tag = secrets.token_hex(3)
    a, b = f"canhgac-t-{tag}-a", f"canhgac-t-{tag}-b"
    if_a, if_b = f"cgt{tag}a", f"cgt{tag}b"
    n = int(tag[:2], 16) % 250 + 1
    net = f"10.250.{n}"
    try:
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", b)
        sh("ip", "link", "add", if_a, "type", "veth", "peer", "name", if_b)
        sh("ip", "link", "set", if_a, "netns", a)
        sh("ip", "link", "set", if_b, "netns", b)
        for ns, dev, ip in ((a, if_a, f"{net}.1"), (b, if_b, f"{net}.2")):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

        def mac(ns: str, dev: str) -> str:
            out = json.loads(sh("ip", "-j", "-n", ns, "link", "show", dev).stdout)
            return out[0]["address"]

        yield Pair(a, b, if_a, if_b, f"{net}.1", f"{net}.2", net, mac(a, if_a), mac(b, if_b))
    finally:
        for ns in (a, b):
            sh("ip", "netns", "del", ns, check=False)


class Sensor:
    """The sensor process in namespace A; its NDJSON lines read by a thread."""

    def __init__(self, pair: Pair, tmp: Path, config: dict, netns: bool = True,
                 prefix: tuple[str, ...] = ()) -> None:
        cmd = [*prefix, PY, "-m", "agent.probes.network_sensor", "--config", json.dumps(config),
               "--state-dir", str(tmp)]
        if netns:
            cmd = ["ip", "netns", "exec", pair.a, *cmd]
        self.proc = subprocess.Popen(cmd, cwd=str(ROOT), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[dict] = queue.Queue()
        self.events: list[dict] = []
        self.status: dict = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def pump(self, timeout: float = 0.1) -> None:
        try:
            doc = self.lines.get(timeout=timeout)
        except queue.Empty:
            return
        if "ready" in doc:
            self.status = doc["ready"]
        elif "status" in doc:
            self.status = doc["status"]
        elif "final" in doc:
            self.status = doc["final"]
        else:
            self.events.append(doc)

    def wait(self, cond, timeout: float = 30.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            if self.proc.poll() is not None and self.lines.empty():
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"sensor exited {self.proc.returncode}: {err}")
            self.pump()
        raise AssertionError(f"timed out waiting for {what}; events: "
                             f"{[e['event']['action'] for e in self.events]}; "
                             f"status: {self.status}")

    def actions(self, action: str) -> list[dict]:
        return [e for e in self.events if e["event"].get("action") == action]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        while not self.lines.empty():
            self.pump(0)


@pytest.fixture
def sensor_factory(tmp_path):
    started: list[Sensor] = []

    def start(pair: Pair, **config) -> Sensor:
        s = Sensor(pair, tmp_path, {"interfaces": [pair.if_a], **config})
        started.append(s)
        s.wait(lambda: bool(s.status), 30, "sensor ready")
        assert s.status["enabled"] is True, s.status
        return s

    yield start
    for s in started:
        s.stop()


def test_nmap_syn_scan_is_one_port_scan_event(netns_pair: Pair, sensor_factory):
    nmap = need("nmap")
    p = netns_pair
    s = sensor_factory(p, scan_idle=1.5, scan_window=60)
    p.in_b(nmap, "-sS", "-n", "-Pn", "-p", "1-400", "--max-retries", "0", "-T4", p.ip_a)
    s.wait(lambda: s.actions("port_scan"), 20, "port_scan")
    time.sleep(2.5)
    s.stop()
    scans = s.actions("port_scan")
    assert len(scans) == 1, scans
    ev = scans[0]
    assert ev["source"]["ip"] == p.ip_b
    assert ev["destination"]["ip"] == p.ip_a
    assert ev["event"]["dataset"] == "network"
    assert ev["event"]["kind"] == "event"
    info = ev["canhgac"]["scan"]
    assert info["distinct_ports"] >= 390 and info["distinct_hosts"] == 1
    assert info["kind"] == "vertical"
    assert set(info["sample_ports"]) <= set(range(1, 401)) and len(info["sample_ports"]) == 20
    assert s.status["kernel_drops"] == 0
    assert s.status["syn"] >= 390


def test_forged_arp_replies_and_gratuitous_flood(netns_pair: Pair, sensor_factory):
    p = netns_pair
    gw = f"{p.net}.254"
    s = sensor_factory(p, arp_flood_count=20, arp_flood_window=10)
    # A legitimate host at .254 (B's NIC): A resolves it, B answers with its real MAC.
    p.in_b("ip", "addr", "add", f"{gw}/24", "dev", p.if_b)
    sh("ip", "netns", "exec", p.a, PY, "-c",  # any datagram makes A's kernel resolve .254
       f"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ({gw!r}, 9))")
    s.wait(lambda: s.status.get("arp", 0) >= 1, 10, "legitimate ARP reply seen")
    # The attacker claims .254 is at its own (forged) MAC.
    fake = "de:ad:be:ef:00:01"
    p.scapy_b(f"""
        pkt = Ether(src={fake!r}, dst=A_MAC) / ARP(op=2, hwsrc={fake!r}, psrc={gw!r},
                                                   hwdst=A_MAC, pdst=A_IP)
        sendp(pkt, iface=IFACE, count=5, inter=0.05)
    """)
    s.wait(lambda: s.actions("arp_spoof"), 10, "arp_spoof")
    # Gratuitous ARP flood from another forged MAC.
    fake2 = "de:ad:be:ef:00:02"
    p.scapy_b(f"""
        ip = {p.net + ".77"!r}
        pkt = Ether(src={fake2!r}, dst="ff:ff:ff:ff:ff:ff") / ARP(
            op=2, hwsrc={fake2!r}, psrc=ip, hwdst="ff:ff:ff:ff:ff:ff", pdst=ip)
        sendp(pkt, iface=IFACE, count=40, inter=0.01)
    """)
    s.wait(lambda: s.actions("arp_gratuitous_flood"), 10, "arp_gratuitous_flood")
    time.sleep(1)
    s.stop()
    spoofs = s.actions("arp_spoof")
    assert len(spoofs) == 1, spoofs  # re-alerts are throttled per (ip, mac)
    ev = spoofs[0]
    assert ev["source"]["ip"] == gw
    assert ev["source"]["mac"] == "DE-AD-BE-EF-00-01"
    assert ev["canhgac"]["arp"]["previous_mac"] == p.mac_b.upper().replace(":", "-")
    floods = s.actions("arp_gratuitous_flood")
    assert len(floods) == 1
    assert floods[0]["source"]["mac"] == "DE-AD-BE-EF-00-02"
    assert floods[0]["canhgac"]["arp"]["gratuitous_count"] >= 20
    assert s.status["kernel_drops"] == 0


def test_dns_queries_logged_and_filter_drops_bulk(netns_pair: Pair, sensor_factory):
    p = netns_pair
    s = sensor_factory(p)
    s.wait(lambda: "packets" in s.status, 5, "status")
    before = s.status["packets"]
    # Bulk traffic the kernel filter must drop: UDP to another port, TCP data (ACK).
    p.scapy_b("""
        send(IP(dst=A_IP) / UDP(sport=40000, dport=9999) / Raw(b"x" * 100), count=300)
        send(IP(dst=A_IP) / TCP(sport=40001, dport=80, flags="A") / Raw(b"y" * 100), count=300)
        send(IP(dst=A_IP) / UDP(sport=5353, dport=53) /
             DNS(id=4242, rd=1, qd=DNSQR(qname="exfil.example.test", qtype="TXT")))
    """)
    s.wait(lambda: s.actions("dns_query"), 10, "dns_query")
    time.sleep(1.2)
    s.stop()
    ev = s.actions("dns_query")[0]
    assert ev["event"]["dataset"] == "dns"
    assert ev["dns"]["question"] == {"name": "exfil.example.test", "type": "TXT"}
    assert ev["dns"]["id"] == "4242"
    assert ev["source"] == {"ip": p.ip_b, "port": 5353, "address": p.ip_b}
    assert ev["destination"]["ip"] == p.ip_a and ev["destination"]["port"] == 53
    # 600 bulk packets sent; only the query (and maybe an ARP exchange) got through.
    assert s.status["packets"] - before <= 6, s.status
    # The default filter is built in: capturing needed neither scapy nor libpcap.
    assert s.status["scapy_loaded"] is False and s.status["libpcap_loaded"] is False


def test_custom_filter_is_compiled_by_libpcap(netns_pair: Pair, sensor_factory):
    p = netns_pair
    s = sensor_factory(p, bpf_filter="udp dst port 53")
    s.wait(lambda: "packets" in s.status, 5, "status")
    before = s.status["packets"]
    p.scapy_b("""
        send(IP(dst=A_IP) / TCP(sport=40002, dport=[22, 23, 25, 80, 443], flags="S"))
        send(IP(dst=A_IP) / UDP(sport=53, dport=5353) / DNS(id=1, qr=1))
        send(IP(dst=A_IP) / UDP(sport=5354, dport=53) /
             DNS(id=4243, rd=1, qd=DNSQR(qname="custom.example.test", qtype="A")))
    """)
    s.wait(lambda: s.actions("dns_query"), 10, "dns_query")
    s.wait(lambda: s.status["packets"] > before, 5, "status after the query")
    s.stop()
    assert s.actions("dns_query")[0]["dns"]["question"]["name"] == "custom.example.test"
    assert s.status["packets"] - before == 1, s.status  # SYNs and the answer filtered out
    assert s.status["syn"] == 0
    assert s.status["libpcap_loaded"] is True and s.status["scapy_loaded"] is False


def test_loopback_and_outgoing_are_dropped_in_the_kernel(netns_pair: Pair, tmp_path):
    """Capturing on all interfaces: this host's own SYNs and loopback never reach us."""
    p = netns_pair
    s = Sensor(p, tmp_path, {})  # all interfaces of namespace A
    try:
        s.wait(lambda: bool(s.status), 30, "sensor ready")
        assert s.status["enabled"] is True, s.status
        # B resolves A first, so that its ARP exchange is not counted below.
        p.in_b(PY, "-c", "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
               f".sendto(b'x', ({p.ip_a!r}, 9))")
        s.wait(lambda: s.status.get("arp", 0) >= 1, 10, "ARP from B")
        before = s.status["packets"]
        # 40 connection attempts on loopback and 40 from A to B: 80 SYNs, 80 RSTs.
        sh("ip", "netns", "exec", p.a, PY, "-c", textwrap.dedent(f"""
            import socket
            for host in ("127.0.0.1", {p.ip_b!r}):
                for port in range(20000, 20040):
                    with socket.socket() as c:
                        c.settimeout(2)
                        c.connect_ex((host, port))
        """))
        p.scapy_b("""
            send(IP(dst=A_IP) / UDP(sport=5355, dport=53) /
                 DNS(id=4244, rd=1, qd=DNSQR(qname="marker.example.test", qtype="A")))
        """)
        s.wait(lambda: s.actions("dns_query"), 10, "the marker query")
        s.wait(lambda: s.status["packets"] > before, 5, "status after the marker")
    finally:
        s.stop()
    assert s.status["syn"] == 0, s.status
    # The marker, and at most an ARP exchange A started; not 80 SYNs.
    assert s.status["packets"] - before <= 3, s.status


def test_without_cap_net_raw_disabled_clearly_and_scapy_not_loaded(tmp_path):
    setpriv = need("setpriv")
    s = Sensor(None, tmp_path, {}, netns=False,  # type: ignore[arg-type]
               prefix=(setpriv, "--bounding-set=-net_raw", "--inh-caps=-net_raw"))
    try:
        s.wait(lambda: bool(s.status), 20, "ready")
        assert s.status["enabled"] is False
        assert "CAP_NET_RAW" in s.status["reason"]
        assert s.status["scapy_loaded"] is False
        time.sleep(1.2)
        s.pump()
        assert s.proc.poll() is None  # idles, no crash loop
    finally:
        s.stop()
    assert s.proc.returncode == 0


def test_slow_scan_one_probe_every_5s_over_40_ports_alerts(netns_pair: Pair, sensor_factory):
    """Finding (issue 15): a scan slower than one port per 3 s was never reported: the
    sensor saw every SYN but forgot the source after 5 s idle. nmap, one probe every
    5 s, 40 ports; the sensor's events go through the built-in rules."""
    from collector.detect.engine import Engine
    from collector.detect.loader import BUILTIN_DIR, builtin_packs, load_rules

    nmap = need("nmap")
    p = netns_pair
    s = sensor_factory(p)  # default thresholds: 20 ports in 60 s fast, 20 over 10 min slow
    scan = subprocess.Popen(["ip", "netns", "exec", p.b, nmap, "-sS", "-n", "-Pn", "-p", "1-40",
                             "--max-retries", "0", "--scan-delay", "5s", "--max-scan-delay", "5s",
                             p.ip_a], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # 20 probes 5 s apart before the threshold: wait far longer than that takes.
        s.wait(lambda: s.actions("port_scan"), 400, "slow port_scan")
    finally:
        scan.kill()
        scan.wait()
    ev = s.actions("port_scan")[0]
    assert ev["canhgac"]["scan"]["kind"] == "slow"
    assert ev["source"]["ip"] == p.ip_b and ev["destination"]["ip"] == p.ip_a
    assert ev["canhgac"]["scan"]["distinct_ports"] >= 20
    rules = load_rules([(BUILTIN_DIR / pack, f"canhgac/{pack}") for pack in builtin_packs()])
    engine = Engine([lr.rule for lr in rules.loaded])
    for e in s.events:
        e.setdefault("host", {})["hostname"] = "sensor-a"
    alerts = engine.process(s.events)
    scans = [a for a in alerts if a["event"]["action"] == "rule_match"
             and a["source"]["ip"] == p.ip_b]
    assert len(scans) == 1, alerts
    assert scans[0]["canhgac"]["scan"]["kind"] == "slow"
