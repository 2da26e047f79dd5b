"""The network sensor's built-in default filter against libpcap's compilation of it.

Both programs are run by libpcap's own BPF interpreter (``pcap_offline_filter``)
over the same frames: hand-made edge cases with known verdicts, then thousands
of seeded mutations of them. Every verdict must agree.
"""

from __future__ import annotations

import ctypes
import random
import socket

import pytest
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from agent.probes import bpf


class _PktHdr(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long),
                ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32)]


def _run(lib: ctypes.CDLL, program, frame: bytes) -> int:
    """Bytes the program accepts of ``frame`` (0: dropped), by libpcap's interpreter."""
    insns = ctypes.create_string_buffer(bpf.pack(program))
    prog = bpf._BpfProgram(len(program), ctypes.cast(insns, ctypes.c_void_p))
    hdr = _PktHdr(0, 0, len(frame), len(frame))
    return lib.pcap_offline_filter(ctypes.byref(prog), ctypes.byref(hdr), frame)


@pytest.fixture(scope="module")
def libpcap() -> ctypes.CDLL:
    try:
        lib = bpf._libpcap()
    except bpf.FilterError as exc:
        pytest.fail(f"{exc} (deploy/test-deps.sh installs it)")
    lib.pcap_offline_filter.restype = ctypes.c_int
    lib.pcap_offline_filter.argtypes = [ctypes.POINTER(bpf._BpfProgram),
                                        ctypes.POINTER(_PktHdr), ctypes.c_char_p]
    return lib


E = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
A4, B4 = "10.0.0.1", "10.0.0.2"
A6, B6 = "fd00::1", "fd00::2"
DNSQ = DNS(id=7, rd=1, qd=DNSQR(qname="example.test"))

# (name, frame, accepted by the default filter; None: whatever libpcap says)
CASES: list[tuple[str, bytes, bool | None]] = [
    ("v4 syn", bytes(E / IP(src=A4, dst=B4) / TCP(dport=22, flags="S")), True),
    ("v4 syn with ip options", bytes(E / IP(src=A4, dst=B4, options=b"\x01\x01\x01\x00")
                                     / TCP(dport=22, flags="S")), True),
    ("v4 syn+ece+cwr", bytes(E / IP(src=A4, dst=B4) / TCP(dport=22, flags="SEC")), True),
    ("v4 syn-ack", bytes(E / IP(src=A4, dst=B4) / TCP(dport=22, flags="SA")), False),
    ("v4 ack", bytes(E / IP(src=A4, dst=B4) / TCP(dport=22, flags="A") / Raw(b"x" * 50)), False),
    ("v4 rst", bytes(E / IP(src=A4, dst=B4) / TCP(dport=22, flags="R")), False),
    ("v4 first fragment syn", bytes(E / IP(src=A4, dst=B4, flags="MF")
                                    / TCP(dport=22, flags="S")), True),
    ("v4 later fragment", bytes(E / IP(src=A4, dst=B4, frag=3, proto=6) / Raw(b"\x00" * 20)),
     False),
    ("v4 dns query", bytes(E / IP(src=A4, dst=B4) / UDP(sport=5353, dport=53) / DNSQ), True),
    ("v4 dns answer", bytes(E / IP(src=B4, dst=A4) / UDP(sport=53, dport=5353) / DNSQ), True),
    ("v4 other udp", bytes(E / IP(src=A4, dst=B4) / UDP(sport=4000, dport=9999) / Raw(b"y")),
     False),
    ("v4 later udp fragment", bytes(E / IP(src=A4, dst=B4, frag=9, proto=17)
                                    / Raw(b"\x00\x35\x00\x35" + b"\x00" * 8)), False),
    ("v4 icmp", bytes(E / IP(src=A4, dst=B4) / ICMP()), False),
    ("v6 syn", bytes(E / IPv6(src=A6, dst=B6) / TCP(dport=443, flags="S")), True),
    ("v6 syn-ack", bytes(E / IPv6(src=A6, dst=B6) / TCP(dport=443, flags="SA")), False),
    ("v6 fragment header syn", bytes(E / IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment()
                                     / TCP(dport=443, flags="S")), None),
    ("v6 hop-by-hop syn", bytes(E / IPv6(src=A6, dst=B6) / IPv6ExtHdrHopByHop()
                                / TCP(dport=443, flags="S")), False),
    ("v6 dns query", bytes(E / IPv6(src=A6, dst=B6) / UDP(sport=5353, dport=53) / DNSQ), True),
    ("v6 dns answer", bytes(E / IPv6(src=B6, dst=A6) / UDP(sport=53, dport=5353) / DNSQ), True),
    ("v6 other udp", bytes(E / IPv6(src=A6, dst=B6) / UDP(sport=4000, dport=9999)), False),
    ("arp request", bytes(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc=A4, pdst=B4)), True),
    ("arp reply", bytes(E / ARP(op=2, psrc=B4, pdst=A4)), True),
    ("vlan-tagged syn", bytes(E / Dot1Q(vlan=5) / IP(src=A4, dst=B4) / TCP(flags="S")), False),
    ("truncated ipv4", bytes(E / IP(src=A4, dst=B4) / TCP(flags="S"))[:30], False),
    ("ethernet header only", bytes(E)[:14], False),
    ("runt", b"\x08\x00", False),
]


def test_default_expression_maps_to_the_built_in_program():
    assert bpf.compile_filter(bpf.DEFAULT_FILTER) is bpf.DEFAULT_PROGRAM
    # Whitespace does not matter; anything else is libpcap's to compile.
    assert bpf.compile_filter("  " + bpf.DEFAULT_FILTER.replace(" or ", "\n or ")) \
        is bpf.DEFAULT_PROGRAM
    assert len(bpf.DEFAULT_PROGRAM) == 36
    assert all(0 <= jt < 256 and 0 <= jf < 256 for _, jt, jf, _ in bpf.DEFAULT_PROGRAM)


@pytest.mark.parametrize(("name", "frame", "accepted"), CASES, ids=[c[0] for c in CASES])
def test_known_verdicts_agree_with_libpcap(libpcap, name, frame, accepted):
    ours = _run(libpcap, bpf.DEFAULT_PROGRAM, frame)
    theirs = _run(libpcap, bpf.pcap_compile(bpf.DEFAULT_FILTER), frame)
    assert ours == theirs, name
    if accepted is not None:
        assert bool(ours) is accepted, name
    if ours:
        assert ours == bpf.SNAPLEN


def test_mutated_frames_agree_with_libpcap(libpcap):
    """Seeded byte flips around the fields the filter reads: same verdict, always."""
    theirs_prog = bpf.pcap_compile(bpf.DEFAULT_FILTER)
    rng = random.Random(1345)
    accepted = dropped = 0
    for _, frame, _ in CASES:
        for _ in range(300):
            f = bytearray(frame)
            for _ in range(rng.randint(1, 3)):
                if f:
                    pos = rng.choice((12, 13, 14, 20, 21, 23, 46, 47, 54, 56, 57, 67,
                                      rng.randrange(len(f))))
                    if pos < len(f):
                        f[pos] = rng.choice((0, 0x06, 0x11, 0x12, 0x2C, 0x35, 0x45, 0x86,
                                             0xDD, 0x08, rng.randrange(256)))
            if rng.random() < 0.1:
                f = f[:rng.randrange(len(f) + 1)]
            ours = _run(libpcap, bpf.DEFAULT_PROGRAM, bytes(f))
            assert ours == _run(libpcap, theirs_prog, bytes(f)), bytes(f).hex()
            accepted += bool(ours)
            dropped += not ours
    assert accepted > 500 and dropped > 500  # both branches exercised


def test_custom_filters_compile_with_libpcap_and_errors_are_clear(libpcap):
    prog = bpf.compile_filter("udp port 53")
    assert prog != list(bpf.DEFAULT_PROGRAM)
    dns = bytes(E / IP(src=A4, dst=B4) / UDP(sport=5353, dport=53) / DNSQ)
    syn = bytes(E / IP(src=A4, dst=B4) / TCP(dport=22, flags="S"))
    assert _run(libpcap, prog, dns) and not _run(libpcap, prog, syn)
    with pytest.raises(bpf.FilterError, match=r"'tcp prt 22' does not compile: .*syntax error"):
        bpf.compile_filter("tcp prt 22")


def test_the_kernel_takes_the_built_in_program():
    """SO_ATTACH_FILTER validates a classic BPF program (jumps in range, ends in ret)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        bpf.attach(a, bpf.DEFAULT_PROGRAM)
        with pytest.raises(OSError):
            bpf.attach(a, [(bpf.JEQ, 5, 5, 0)])  # jumps past the end, no ret


def test_prefilter_jumps_to_a_drop_after_the_program():
    prog = bpf.prefilter(bpf.DEFAULT_PROGRAM, drop_outgoing=True, drop_ifindex=1)
    assert prog[4:-1] == list(bpf.DEFAULT_PROGRAM) and prog[-1] == (bpf.RET, 0, 0, 0)
    for i in (1, 3):  # each check jumps exactly to the final drop
        code, jt, jf, _ = prog[i]
        assert code == bpf.JEQ and i + 1 + jt == len(prog) - 1 and jf == 0
    assert prog[0][3] == bpf.SKF_AD_OFF + bpf.SKF_AD_PKTTYPE and prog[1][3] == bpf.PACKET_OUTGOING
    assert prog[2][3] == bpf.SKF_AD_OFF + bpf.SKF_AD_IFINDEX and prog[3][3] == 1
    only_lo = bpf.prefilter(bpf.DEFAULT_PROGRAM, drop_outgoing=False, drop_ifindex=7)
    assert len(only_lo) == len(bpf.DEFAULT_PROGRAM) + 3 and only_lo[1][1] == len(only_lo) - 3
    assert bpf.prefilter(bpf.DEFAULT_PROGRAM, drop_outgoing=False, drop_ifindex=None) \
        == list(bpf.DEFAULT_PROGRAM)
    long = [(bpf.RET, 0, 0, 0)] * 300  # no 8-bit jump over it: left as it is
    assert bpf.prefilter(long, drop_outgoing=True, drop_ifindex=1) == long
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        bpf.attach(a, prog)  # the kernel accepts the metadata loads
