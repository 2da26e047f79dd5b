"""Network sensor: packets/s handled without kernel drops, beside tshark, same traffic.

Two private namespaces joined by a veth pair (10.250.254.0/24, deleted on exit).
A pcap is generated with scapy: SYNs from many sources (scan-like), ARP, DNS
queries, and bulk traffic the sensor's kernel filter must discard (TCP data,
other UDP). tcpreplay sends it from namespace B at increasing rates; in
namespace A the sensor (``python -m agent.probes.network_sensor``) and tshark
(dumpcap writing to /dev/null, with the same capture filter) listen on the same
interface during the same replay. Each reports what the kernel delivered and
dropped. Figures are printed, never judged.

    .venv/bin/python bench/net_sensor.py [--packets 200000] [--rates 20000,50000,...,0]

Rate 0 means tcpreplay --topspeed. Needs root, tcpreplay and tshark.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.probes.network_sensor import DEFAULT_FILTER  # noqa: E402

NS_A, NS_B = "canhgac-bench-a", "canhgac-bench-b"
IF_A, IF_B = "cgbencha", "cgbenchb"
MAC_A, MAC_B = "02:00:00:00:fe:01", "02:00:00:00:fe:02"
NET = "10.250.254"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True)


def setup() -> None:
    teardown()
    sh("ip", "netns", "add", NS_A)
    sh("ip", "netns", "add", NS_B)
    sh("ip", "link", "add", IF_A, "type", "veth", "peer", "name", IF_B)
    for ns, dev, mac, ip in ((NS_A, IF_A, MAC_A, f"{NET}.1"), (NS_B, IF_B, MAC_B, f"{NET}.2")):
        sh("ip", "link", "set", dev, "netns", ns)
        sh("ip", "-n", ns, "link", "set", dev, "address", mac)
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")


def teardown() -> None:
    for ns in (NS_A, NS_B):
        sh("ip", "netns", "del", ns, check=False)


def make_pcap(path: Path, n: int) -> dict[str, int]:
    """The capture to replay; returns how many packets of each kind it holds."""
    from scapy.layers.dns import DNS, DNSQR
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import ARP, Ether
    from scapy.utils import PcapWriter

    rnd = random.Random(42)
    counts = {"syn": 0, "arp": 0, "dns": 0, "bulk": 0}
    eth = Ether(src=MAC_B, dst=MAC_A)
    # Templates, then byte-level patching: building 200k scapy packets one by one is slow.
    syn_t = bytes(eth / IP(src="10.9.0.1", dst=f"{NET}.1") / TCP(sport=40000, dport=1,
                                                                flags="S"))
    data_t = bytes(eth / IP(src=f"{NET}.2", dst=f"{NET}.1") / TCP(sport=443, dport=50000,
                                                                 flags="PA") / (b"z" * 1200))
    udp_t = bytes(eth / IP(src=f"{NET}.2", dst=f"{NET}.1") / UDP(sport=5000, dport=9999)
                  / (b"u" * 512))
    dns_pkts = [bytes(eth / IP(src=f"{NET}.2", dst=f"{NET}.1") / UDP(sport=30000 + i, dport=53)
                      / DNS(id=i, rd=1, qd=DNSQR(qname=f"host{i}.example.test")))
                for i in range(256)]
    arp_pkts = [bytes(Ether(src=MAC_B, dst="ff:ff:ff:ff:ff:ff")
                      / ARP(op=1, hwsrc=MAC_B, psrc=f"{NET}.2", pdst=f"{NET}.{i}"))
                for i in range(3, 253)]
    with PcapWriter(str(path), linktype=1, sync=False) as w:
        for i in range(n):
            r = rnd.random()
            if r < 0.40:
                b = bytearray(syn_t)
                b[26:30] = bytes([10, 9, rnd.randrange(4), rnd.randrange(256)])  # source IP
                b[36:38] = rnd.randrange(1, 65536).to_bytes(2, "big")  # dst port
                b[24:26] = b"\0\0"  # checksums are not checked by the sensor
                pkt = bytes(b)
                counts["syn"] += 1
            elif r < 0.45:
                pkt = arp_pkts[i % len(arp_pkts)]
                counts["arp"] += 1
            elif r < 0.50:
                pkt = dns_pkts[i % len(dns_pkts)]
                counts["dns"] += 1
            elif r < 0.85:
                pkt = data_t
                counts["bulk"] += 1
            else:
                pkt = udp_t
                counts["bulk"] += 1
            w.write(pkt)
    return counts


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError):
        return 0.0


class SensorProc:
    def __init__(self, state: str) -> None:
        cfg = {"interfaces": [IF_A], "scan_idle": 1, "scan_window": 30}
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", NS_A, sys.executable, "-m", "agent.probes.network_sensor",
             "--config", json.dumps(cfg), "--state-dir", state],
            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.status: dict = {}
        self.events = 0
        self.ready = threading.Event()
        self.cpu = 0.0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            doc = json.loads(line)
            if "ready" in doc:
                self.ready.set()
            key = next((k for k in ("ready", "status", "final") if k in doc), None)
            if key:
                self.status = doc[key]
                if key != "final":
                    self.cpu = cpu_seconds(self.proc.pid)
            else:
                self.events += 1

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)


class TsharkProc:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", NS_A, "tshark", "-i", IF_A, "-f", DEFAULT_FILTER, "-q",
             "-w", "/dev/null", "-B", "8"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.err = ""
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err += line
            if "Capturing on" in line:
                self.ready.set()

    def stop(self) -> tuple[int, int]:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(20)
        time.sleep(0.2)
        cap = re.search(r"(\d+) packets? captured", self.err)
        drop = re.search(r"(\d+) packets? dropped", self.err)
        return int(cap.group(1)) if cap else -1, int(drop.group(1)) if drop else 0


def run_rate(pcap: Path, rate: int, state: str) -> dict:
    sensor, tshark = SensorProc(state), TsharkProc()
    if not sensor.ready.wait(30) or not tshark.ready.wait(30):
        sensor.stop()
        tshark.stop()
        raise RuntimeError(f"capture did not start: {tshark.err[-300:]}")
    time.sleep(0.5)
    speed = ["--topspeed"] if rate == 0 else [f"--pps={rate}"]
    rep = sh("ip", "netns", "exec", NS_B, "tcpreplay", "-q", "-K", "-i", IF_B, *speed, str(pcap))
    m = re.search(r"Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps", rep.stdout)
    sent = re.search(r"Actual: (\d+) packets", rep.stdout)
    time.sleep(2.0)
    cpu = sensor.cpu
    sensor.stop()
    t_cap, t_drop = tshark.stop()
    st = sensor.status
    return {"rate": rate, "pps": float(m.group(1)) if m else 0.0,
            "sent": int(sent.group(1)) if sent else 0,
            "sensor_rx": st.get("kernel_packets", 0), "sensor_drops": st.get("kernel_drops", 0),
            "sensor_events": sensor.events, "sensor_cpu": cpu,
            "tshark_rx": t_cap, "tshark_drops": t_drop}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--rates", default="20000,50000,100000,200000,0")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    work = Path(tempfile.mkdtemp(prefix="canhgac-netbench-"))
    try:
        setup()
        pcap = work / "mix.pcap"
        t0 = time.perf_counter()
        counts = make_pcap(pcap, args.packets)
        matching = counts["syn"] + counts["arp"] + counts["dns"]
        print(f"pcap: {args.packets:,} packets ({pcap.stat().st_size / 1e6:.0f} MB) built in "
              f"{time.perf_counter() - t0:.1f} s: {counts['syn']:,} SYN, {counts['arp']:,} ARP, "
              f"{counts['dns']:,} DNS, {counts['bulk']:,} bulk (filtered out in the kernel)")
        print(f"packets matching the filter: {matching:,}; host: {os.cpu_count()} CPUs\n")
        print(f"{'target pps':>10} {'sent pps':>10} | {'sensor rx':>9} {'drops':>6} "
              f"{'events':>6} {'cpu s':>6} | {'tshark rx':>9} {'drops':>6}")
        best = 0.0
        for rate in (int(r) for r in args.rates.split(",")):
            r = run_rate(pcap, rate, str(work / f"state{rate}"))
            label = "max" if rate == 0 else f"{rate:,}"
            print(f"{label:>10} {r['pps']:>10,.0f} | {r['sensor_rx']:>9,} {r['sensor_drops']:>6,} "
                  f"{r['sensor_events']:>6,} {r['sensor_cpu']:>6.2f} | {r['tshark_rx']:>9,} "
                  f"{r['tshark_drops']:>6,}")
            if r["sensor_drops"] == 0 and r["sensor_rx"] >= matching:
                best = max(best, r["pps"])
        print(f"\nhighest replay rate with every matching packet handled and no kernel drop: "
              f"{best:,.0f} packets/s on the wire ({best * matching / args.packets:,.0f} "
              "matching packets/s through the sensor)")
    finally:
        teardown()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
