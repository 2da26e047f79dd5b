"""Decoder and detectors of the network sensor over frames built with scapy."""

from __future__ import annotations

from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether

from agent.probes.netdetect import (
    Arp,
    ArpDetector,
    DnsQuery,
    PortScanDetector,
    Syn,
    decode,
    dns_event,
    mac_str,
)

A_MAC, B_MAC, EVIL = "02:00:00:00:00:0a", "02:00:00:00:00:0b", "de:ad:be:ef:00:01"


def test_decode_syn_only_without_ack():
    syn = bytes(Ether(src=B_MAC, dst=A_MAC) / IP(src="10.250.1.2", dst="10.250.1.1")
                / TCP(sport=4000, dport=22, flags="S"))
    assert decode(syn, 1.0) == Syn("10.250.1.2", "10.250.1.1", 22, 1.0)
    synack = bytes(Ether() / IP() / TCP(flags="SA"))
    assert decode(synack, 1.0) is None
    vlan = bytes(Ether() / Dot1Q(vlan=5) / IP(src="10.0.0.9", dst="10.0.0.1")
                 / TCP(dport=443, flags="S"))
    assert decode(vlan, 2.0) == Syn("10.0.0.9", "10.0.0.1", 443, 2.0)
    v6 = bytes(Ether() / IPv6(src="2001:db8::9", dst="2001:db8::1") / TCP(dport=8080, flags="S"))
    assert decode(v6, 3.0) == Syn("2001:db8::9", "2001:db8::1", 8080, 3.0)


def test_decode_arp_and_dns():
    arp = bytes(Ether(src=EVIL, dst=A_MAC) / ARP(op=2, hwsrc=EVIL, psrc="10.250.1.254",
                                                 hwdst=A_MAC, pdst="10.250.1.1"))
    a = decode(arp, 5.0)
    assert isinstance(a, Arp)
    assert (a.op, a.sender_ip, a.sender_mac, a.target_ip) == (
        2, "10.250.1.254", "DE-AD-BE-EF-00-01", "10.250.1.1")
    q = bytes(Ether() / IP(src="10.250.1.2", dst="10.250.1.1") / UDP(sport=5353, dport=53)
              / DNS(id=7, rd=1, qd=DNSQR(qname="www.example.test", qtype="AAAA")))
    d = decode(q, 6.0)
    assert isinstance(d, DnsQuery)
    assert (d.name, d.qtype, d.id, d.src, d.sport) == (
        "www.example.test", "AAAA", 7, "10.250.1.2", 5353)
    answer = bytes(Ether() / IP() / UDP(sport=53, dport=53) / DNS(qr=1, qd=DNSQR(qname="x.")))
    assert decode(answer, 6.0) is None
    assert decode(b"\x00" * 10, 0.0) is None
    assert decode(bytes(Ether() / IP() / UDP(dport=53) / b"\x01"), 0.0) is None
    ev = dns_event(d)
    assert ev["event"]["dataset"] == "dns"
    assert ev["dns"]["question"] == {"name": "www.example.test", "type": "AAAA"}
    assert ev["destination"]["port"] == 53 and ev["network"]["transport"] == "udp"


def test_mac_format_is_ecs():
    assert mac_str(bytes.fromhex("00a0c9147c8e")) == "00-A0-C9-14-7C-8E"


def test_vertical_scan_one_summary_after_idle():
    d = PortScanDetector(window=60, min_ports=20, min_hosts=20, idle=5)
    for port in range(1, 101):
        d.feed(Syn("10.0.0.66", "10.0.0.1", port, 100.0 + port / 100))
    d.feed(Syn("10.0.0.5", "10.0.0.1", 22, 100.0))  # a normal client
    assert d.flush(102.0) == []  # not idle yet
    out = d.flush(107.0)
    assert len(out) == 1
    ev = out[0]
    assert ev["event"]["action"] == "port_scan"
    assert ev["source"]["ip"] == "10.0.0.66" and ev["destination"]["ip"] == "10.0.0.1"
    scan = ev["canhgac"]["scan"]
    assert scan["distinct_ports"] == 100 and scan["kind"] == "vertical"
    assert scan["sample_ports"] == list(range(1, 21))
    assert ev["event"]["start"] < ev["event"]["end"]
    assert d.flush(200.0) == []  # reported once; state released


def test_horizontal_scan_and_window_end():
    d = PortScanDetector(window=10, min_ports=20, min_hosts=5, idle=5)
    t = 0.0
    for h in range(1, 8):
        for _ in range(3):
            t += 1.0  # never idle for 5 s; the window ends it
            d.feed(Syn("10.0.0.66", f"10.0.1.{h}", 445, t))
    out = d.flush(t)
    assert len(out) == 1
    assert out[0]["canhgac"]["scan"]["kind"] == "horizontal"
    assert out[0]["canhgac"]["scan"]["distinct_hosts"] == 7


def test_scan_state_is_bounded():
    d = PortScanDetector(max_sources=100)
    for i in range(1000):
        d.feed(Syn(f"10.1.{i // 256}.{i % 256}", "10.0.0.1", 80, 1.0))
    assert len(d.sources) == 100 and d.evicted == 900


def arp(op, mac, ip, tip, ts):
    return Arp(op, mac, ip, "00-00-00-00-00-00", tip, mac, ts)


def test_arp_binding_change_is_spoof_once_and_first_binding_kept():
    d = ArpDetector(realert=60)
    assert d.feed(arp(2, "02-00-00-00-00-0B", "10.0.0.254", "10.0.0.1", 1.0)) == []
    out = d.feed(arp(2, "DE-AD-BE-EF-00-01", "10.0.0.254", "10.0.0.1", 2.0))
    assert len(out) == 1
    ev = out[0]
    assert ev["event"]["action"] == "arp_spoof"
    assert ev["source"] == {"ip": "10.0.0.254", "mac": "DE-AD-BE-EF-00-01",
                            "address": "10.0.0.254"}
    assert ev["canhgac"]["arp"]["previous_mac"] == "02-00-00-00-00-0B"
    for t in range(3, 30):  # repeating the lie: throttled, and never becomes the reference
        assert d.feed(arp(2, "DE-AD-BE-EF-00-01", "10.0.0.254", "10.0.0.1", float(t))) == []
    assert d.bindings["10.0.0.254"][0] == "02-00-00-00-00-0B"
    assert len(d.feed(arp(2, "DE-AD-BE-EF-00-01", "10.0.0.254", "10.0.0.1", 70.0))) == 1
    # ARP probes (sender 0.0.0.0) claim nothing.
    assert d.feed(arp(1, "DE-AD-BE-EF-00-09", "0.0.0.0", "10.0.0.254", 71.0)) == []


def test_gratuitous_flood():
    d = ArpDetector(flood_window=10, flood_count=20)
    out = []
    for i in range(40):
        out += d.feed(arp(2, "DE-AD-BE-EF-00-02", "10.0.0.77", "10.0.0.77", 100 + i * 0.01))
    assert [e["event"]["action"] for e in out] == ["arp_gratuitous_flood"]
    # A host announcing itself a few times is not a flood.
    d2 = ArpDetector(flood_window=10, flood_count=20)
    assert all(d2.feed(arp(2, "02-00-00-00-00-03", "10.0.0.3", "10.0.0.3", float(i))) == []
               for i in range(5))
