"""Classic BPF for the network sensor: the default filter built in, others by libpcap.

The sensor's default filter is a constant program (below), so the default path
loads neither scapy (~28 MiB of resident memory for one function call) nor
libpcap (and the dbus/systemd/gcrypt libraries it links). It is what libpcap
1.10 compiles ``DEFAULT_FILTER`` to (``tcpdump -d -s 65535 -y EN10MB``, the
snap length and link type scapy used), kept readable instruction by
instruction; tests/unit/test_probe_bpf.py runs it and libpcap's own
compilation of the expression over the same frames and requires the same
verdict for every one.

Any other ``bpf_filter`` is compiled by libpcap's ``pcap_compile`` through
ctypes (what scapy did for us before), so a custom expression behaves as in
tcpdump.

:func:`prefilter` puts two Linux-only checks in front of either program: the
packets this host sends, and everything on the loopback interface, are dropped
by the kernel instead of being copied to the sensor and dropped there (a busy
local proxy or database makes a SYN per connection on ``lo``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import socket
import struct
from collections.abc import Sequence

#: one instruction: (code, jump if true, jump if false, k)
Insn = tuple[int, int, int, int]

SO_ATTACH_FILTER = 26
DLT_EN10MB = 1
SNAPLEN = 0xFFFF
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF

DEFAULT_FILTER = (
    "(tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn)"
    " or (ip6 and tcp and (ip6[53] & 0x12) == 0x02)"
    " or arp"
    " or (udp port 53)"
)

# Opcodes used below (linux/filter.h: class | size | mode, or class | op | source).
LDH_ABS = 0x28  # A = u16 at [k]
LDB_ABS = 0x30  # A = u8 at [k]
LDH_IND = 0x48  # A = u16 at [X + k]
LDB_IND = 0x50  # A = u8 at [X + k]
LDXB_MSH = 0xB1  # X = 4 * ([k] & 0xf): the IPv4 header length
JEQ = 0x15  # pc += (A == k) ? jt : jf
JSET = 0x45  # pc += (A & k) ? jt : jf
AND = 0x54  # A &= k
RET = 0x06  # accept k bytes of the packet (0: drop)
LDW_ABS = 0x20  # A = u32 at [k]; k past SKF_AD_OFF reads packet metadata (Linux)

SKF_AD_OFF = 0xFFFFF000  # -0x1000 as an unsigned k
SKF_AD_PKTTYPE = 4  # the packet type (PACKET_HOST, PACKET_OUTGOING ...)
SKF_AD_IFINDEX = 8  # the interface it was seen on
PACKET_OUTGOING = 4

# Offsets are from the start of the Ethernet frame (14-byte header).
DEFAULT_PROGRAM: tuple[Insn, ...] = (
    (LDH_ABS, 0, 0, 12),            # 00 ethertype
    (JEQ, 0, 16, 0x0800),           # 01 IPv4? else 18
    (LDB_ABS, 0, 0, 23),            # 02 IPv4 protocol
    (JEQ, 0, 6, 6),                 # 03 TCP? else 10
    (LDH_ABS, 0, 0, 20),            # 04 flags + fragment offset
    (JSET, 29, 0, 0x1FFF),          # 05 a later fragment: drop
    (LDXB_MSH, 0, 0, 14),           # 06 X = IPv4 header length
    (LDB_IND, 0, 0, 27),            # 07 TCP flags (14 + 13)
    (AND, 0, 0, 0x12),              # 08 SYN|ACK
    (JEQ, 24, 25, 0x02),            # 09 SYN without ACK: accept, else drop
    (JEQ, 0, 24, 17),               # 10 UDP? else drop
    (LDH_ABS, 0, 0, 20),            # 11 flags + fragment offset
    (JSET, 22, 0, 0x1FFF),          # 12 a later fragment: drop
    (LDXB_MSH, 0, 0, 14),           # 13 X = IPv4 header length
    (LDH_IND, 0, 0, 14),            # 14 UDP source port
    (JEQ, 18, 0, 53),               # 15 53: accept
    (LDH_IND, 0, 0, 16),            # 16 UDP destination port
    (JEQ, 16, 17, 53),              # 17 53: accept, else drop
    (JEQ, 0, 14, 0x86DD),           # 18 IPv6? else 33
    (LDB_ABS, 0, 0, 20),            # 19 IPv6 next header
    (JEQ, 3, 0, 6),                 # 20 TCP: 24
    (JEQ, 0, 5, 0x2C),              # 21 fragment header? else 27
    (LDB_ABS, 0, 0, 54),            # 22 its next header
    (JEQ, 0, 11, 6),                # 23 TCP? else drop
    (LDB_ABS, 0, 0, 67),            # 24 ip6[53]: TCP flags after a 40-byte header
    (AND, 0, 0, 0x12),              # 25 SYN|ACK
    (JEQ, 7, 0, 0x02),              # 26 SYN without ACK: accept
    (LDB_ABS, 0, 0, 20),            # 27 IPv6 next header
    (JEQ, 0, 6, 17),                # 28 UDP? else drop
    (LDH_ABS, 0, 0, 54),            # 29 UDP source port
    (JEQ, 3, 0, 53),                # 30 53: accept
    (LDH_ABS, 0, 0, 56),            # 31 UDP destination port
    (JEQ, 1, 2, 53),                # 32 53: accept, else drop
    (JEQ, 0, 1, 0x0806),            # 33 ARP: accept, else drop
    (RET, 0, 0, SNAPLEN),           # 34 accept
    (RET, 0, 0, 0),                 # 35 drop
)

_INSN = struct.Struct("HBBI")  # struct sock_filter / struct bpf_insn


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


class FilterError(ValueError):
    """The expression does not compile, or libpcap is not there to compile it."""


def _libpcap() -> ctypes.CDLL:
    names = ["libpcap.so.1", "libpcap.so.0.8", "libpcap.so"]
    found = ctypes.util.find_library("pcap")
    if found:
        names.append(found)
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.pcap_open_dead.restype = ctypes.c_void_p
        lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.pcap_compile.restype = ctypes.c_int
        lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_BpfProgram),
                                     ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32]
        lib.pcap_geterr.restype = ctypes.c_char_p
        lib.pcap_geterr.argtypes = [ctypes.c_void_p]
        lib.pcap_freecode.restype = None
        lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
        lib.pcap_close.restype = None
        lib.pcap_close.argtypes = [ctypes.c_void_p]
        return lib
    raise FilterError("libpcap is not installed (Debian: libpcap0.8); it is needed to compile "
                      "a bpf_filter other than the default")


def pcap_compile(expr: str, linktype: int = DLT_EN10MB, snaplen: int = SNAPLEN) -> list[Insn]:
    """Compile ``expr`` with libpcap, optimised, as tcpdump and scapy do."""
    lib = _libpcap()
    handle = lib.pcap_open_dead(linktype, snaplen)
    if not handle:
        raise FilterError("pcap_open_dead failed")
    prog = _BpfProgram()
    try:
        if lib.pcap_compile(handle, ctypes.byref(prog), expr.encode(), 1,
                            PCAP_NETMASK_UNKNOWN) != 0:
            err = (lib.pcap_geterr(handle) or b"").decode("utf-8", "replace")
            raise FilterError(f"bpf_filter {expr!r} does not compile: {err}")
        try:
            raw = ctypes.string_at(prog.bf_insns, prog.bf_len * _INSN.size)
        finally:
            lib.pcap_freecode(ctypes.byref(prog))
    finally:
        lib.pcap_close(handle)
    return [(code, jt, jf, k) for code, jt, jf, k in _INSN.iter_unpack(raw)]


def compile_filter(expr: str) -> Sequence[Insn]:
    """The program for ``expr``: the built-in one for the default filter, else libpcap's."""
    if " ".join(expr.split()) == DEFAULT_FILTER:
        return DEFAULT_PROGRAM
    return pcap_compile(expr)


def prefilter(program: Sequence[Insn], *, drop_outgoing: bool,
              drop_ifindex: int | None) -> list[Insn]:
    """``program`` behind kernel-side drops of outgoing packets and of one interface.

    The checks jump to a ``ret #0`` appended after ``program`` (whose own jumps are
    relative and never leave it). A program too long for an 8-bit jump is
    returned as it is: the sensor drops those packets itself anyway.
    """
    checks: list[tuple[int, int]] = []  # (metadata offset, value to drop)
    if drop_outgoing:
        checks.append((SKF_AD_PKTTYPE, PACKET_OUTGOING))
    if drop_ifindex is not None:
        checks.append((SKF_AD_IFINDEX, drop_ifindex))
    size = 2 * len(checks) + len(program)
    if not checks or size > 255:
        return list(program)
    out: list[Insn] = []
    for meta, value in checks:
        out.append((LDW_ABS, 0, 0, SKF_AD_OFF + meta))
        out.append((JEQ, size - len(out) - 1, 0, value))
    out.extend(program)
    out.append((RET, 0, 0, 0))
    return out


def pack(program: Sequence[Insn]) -> bytes:
    return b"".join(_INSN.pack(*i) for i in program)


def attach(sock: socket.socket, program: Sequence[Insn]) -> None:
    """SO_ATTACH_FILTER: the kernel copies the program, the buffer can go afterwards."""
    buf = ctypes.create_string_buffer(pack(program))
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
