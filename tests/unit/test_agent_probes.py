"""Default probes: diff logic on fixtures, and each probe against the real host."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.probes.base import ProbeContext
from agent.probes.host_inventory import HostInventoryConfig, HostInventoryProbe, ecs_mac
from agent.probes.host_metrics import HostMetricsConfig, HostMetricsProbe
from agent.probes.process import ProcessConfig, ProcessProbe, ProcessTable
from agent.probes.session import Session, SessionConfig, SessionProbe, diff_sessions
from agent.probes.socket import (
    Listener,
    SocketConfig,
    SocketProbe,
    decode_address,
    diff_listeners,
    netlink_listeners,
    parse_proc_net,
)


def ctx(tmp_path) -> ProbeContext:
    return ProbeContext(agent_id="a1", hostname="web01", state_dir=tmp_path)


# -- process -------------------------------------------------------------------
def test_process_table_first_scan_is_baseline_then_diffs():
    t = ProcessTable()
    assert t.diff({1: 10.0, 2: 20.0}) == ([], [])
    started, ended = t.diff({1: 10.0, 3: 30.0})
    assert started == [3]
    assert [i.pid for i in ended] == [2]
    # pid reused by a new process (different start time): end + start
    started, ended = t.diff({1: 99.0, 3: 30.0})
    assert started == [1] and [i.pid for i in ended] == [1]


def test_process_probe_sees_a_real_start_and_end(tmp_path):
    probe = ProcessProbe(ProcessConfig(), ctx(tmp_path))
    probe.table.diff(probe._scan())  # baseline
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "canhgac-marker"])
    try:
        # Between fork and exec a process has no command line yet: wait for the exec (a
        # busy machine can scan in between; found by `make test-stress`).
        deadline = time.monotonic() + 30
        cmdline = Path(f"/proc/{child.pid}/cmdline")
        while b"canhgac-marker" not in cmdline.read_bytes():
            assert time.monotonic() < deadline, "the child never exec'd"
            time.sleep(0.01)
        events = probe.scan_once()
        starts = [e for e in events if e["event"]["type"] == ["start"]
                  and e["process"]["pid"] == child.pid]
        assert len(starts) == 1
        e = starts[0]
        assert e["event"]["category"] == ["process"] and e["event"]["dataset"] == "process"
        assert e["process"]["parent"]["pid"] == os.getpid()
        assert "canhgac-marker" in e["process"]["command_line"]
        assert e["process"]["args"][-1] == "canhgac-marker"
        assert e["process"]["executable"]
        assert e["user"]["name"]
    finally:
        child.kill()
        child.wait()
    ends = [e for e in probe.scan_once() if e["event"]["type"] == ["end"]]
    mine = [e for e in ends if e["process"]["pid"] == child.pid]
    assert len(mine) == 1 and "canhgac-marker" in mine[0]["process"]["command_line"]


def test_process_events_per_scan_are_bounded(tmp_path):
    probe = ProcessProbe(ProcessConfig(max_events_per_scan=10), ctx(tmp_path))
    probe.table.diff(probe._scan())  # baseline
    # More new processes than the cap, whatever else runs on this machine.
    children = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
                for _ in range(15)]
    try:
        events = probe.scan_once()
    finally:
        for c in children:
            c.kill()
            c.wait()
    assert len(events) == 11
    assert events[-1]["event"]["action"] == "process-events-suppressed"


# -- socket --------------------------------------------------------------------
HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
REST = "00000000:00000000 00:00000000 00000000"
PROC_TCP = HEADER + (
    f"   0: 0100007F:0277 00000000:0000 0A {REST}     0        0 1111 1\n"
    f"   1: 00000000:0016 00000000:0000 0A {REST}     0        0 2222 1\n"
    f"   2: 0100007F:9C40 0100007F:0016 01 {REST}  1000        0 3333 1\n"
)
V6_LOOPBACK = "00000000000000000000000001000000"
V6_ANY = "0" * 32
PROC_TCP6 = HEADER + f"   0: {V6_LOOPBACK}:0050 {V6_ANY}:0000 0A {REST}    33        0 4444 1\n"
PROC_UDP = HEADER + (
    f"  1: 00000000:0044 00000000:0000 07 {REST}     0        0 5555 2 0 0\n"
    f"  2: 0100007F:D431 0100007F:0035 01 {REST}  1000        0 6666 2 0 0\n"
)


def test_parse_proc_net_keeps_listeners_only():
    tcp = parse_proc_net(PROC_TCP, "tcp")
    assert tcp == [Listener("tcp", "127.0.0.1", 631, 1111, 0), Listener("tcp", "0.0.0.0", 22, 2222, 0)]
    assert parse_proc_net(PROC_TCP6, "tcp") == [Listener("tcp", "::1", 80, 4444, 33)]
    assert parse_proc_net(PROC_UDP, "udp") == [Listener("udp", "0.0.0.0", 68, 5555, 0)]
    assert decode_address("0000000000000000FFFF00000100007F:0050") == ("127.0.0.1", 80)


def test_socket_diff_from_fixture_proc(tmp_path):
    net = tmp_path / "net"
    net.mkdir()
    (net / "tcp").write_text(PROC_TCP)
    (net / "udp").write_text(PROC_UDP)
    probe = SocketProbe(SocketConfig(source="proc", proc_root=str(tmp_path)), ctx(tmp_path))
    first = probe.scan_once(first=True)
    assert {e["event"]["action"] for e in first} == {"socket-listening"}
    assert {e["event"]["kind"] for e in first} == {"state"}
    assert len(first) == 3
    # 127.0.0.1:631 stops listening; [::1]:80 starts
    (net / "tcp").write_text(PROC_TCP.replace(f"0A {REST}     0        0 1111",
                                              f"07 {REST}     0        0 1111"))
    (net / "tcp6").write_text(PROC_TCP6)
    events = probe.scan_once()
    by_action = {(e["event"]["action"], e["server"]["port"]) for e in events}
    assert by_action == {("socket-opened", 80), ("socket-closed", 631)}
    opened = next(e for e in events if e["event"]["action"] == "socket-opened")
    assert opened["network"] == {"transport": "tcp", "type": "ipv6"}
    assert opened["event"]["type"] == ["start"] and opened["event"]["category"] == ["network"]
    assert opened["user"]["id"] == "33"
    old = {Listener("tcp", "::", 1, 1, 0)}
    assert diff_listeners(old, set()) == ([], sorted(old))


def test_netlink_and_proc_agree(tmp_path):
    srv = socket.socket(socket.AF_INET6)
    srv.bind(("::1", 0))
    srv.listen()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    try:
        for _ in range(5):  # other tests may open sockets in between: retry a few times
            a = netlink_listeners()
            b = SocketProbe(SocketConfig(source="proc"), ctx(tmp_path)).read_listeners()
            if a == b:
                break
        assert a == b
        ports = {(s.transport, s.ip, s.port) for s in a}
        assert ("tcp", "::1", srv.getsockname()[1]) in ports
        assert ("udp", "127.0.0.1", udp.getsockname()[1]) in ports
    finally:
        srv.close()
        udp.close()


@pytest.mark.parametrize("source", ["netlink", "proc"])
def test_socket_probe_sees_a_real_listener_with_its_process(tmp_path, source):
    probe = SocketProbe(SocketConfig(source=source), ctx(tmp_path))
    probe.scan_once(first=True)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    try:
        events = probe.scan_once()
        mine = [e for e in events if e["server"]["port"] == port]
        assert len(mine) == 1
        e = mine[0]
        assert e["event"]["action"] == "socket-opened"
        assert e["server"]["ip"] == "127.0.0.1"
        assert e["process"]["pid"] == os.getpid()
        assert e["process"]["name"]
    finally:
        srv.close()
    closed = [e for e in probe.scan_once() if e["server"]["port"] == port]
    assert [e["event"]["action"] for e in closed] == ["socket-closed"]


# -- session -------------------------------------------------------------------
def test_session_login_logout_diff(tmp_path):
    probe = SessionProbe(SessionConfig(), ctx(tmp_path))
    a = Session("an", "pts/0", "203.0.113.9", 1700000000.0, 1234)
    b = Session("binh", "pts/1", "bastion.tinh.gov.vn", 1700000100.0, None)
    first = probe.scan_once([a], first=True)
    assert [e["event"]["action"] for e in first] == ["user-session-active"]
    events = probe.scan_once([a, b])
    assert len(events) == 1
    login = events[0]
    assert login["event"]["action"] == "user-login"
    assert login["event"]["category"] == ["authentication", "session"]
    assert login["event"]["outcome"] == "success"
    assert login["user"] == {"name": "binh", "terminal": "pts/1"}
    assert login["source"] == {"domain": "bastion.tinh.gov.vn"}
    events = probe.scan_once([b])
    assert [e["event"]["action"] for e in events] == ["user-logout"]
    assert events[0]["source"] == {"ip": "203.0.113.9"} and events[0]["process"] == {"pid": 1234}
    assert diff_sessions({}, []) == ([], [])


# -- host metrics / inventory ------------------------------------------------------
def test_host_metrics_fields(tmp_path):
    probe = HostMetricsProbe(HostMetricsConfig(), ctx(tmp_path))
    import psutil

    probe._prev_disk = psutil.disk_io_counters()
    probe._prev_net = psutil.net_io_counters()
    probe._prev_time = time.monotonic() - 1
    events = probe.collect()
    host = events[0]
    assert host["event"]["dataset"] == "host.metrics" and host["event"]["kind"] == "metric"
    assert 0.0 <= host["host"]["cpu"]["usage"] <= 1.0
    assert host["system"]["memory"]["total"] > 0
    assert 0 <= host["system"]["memory"]["actual"]["used"]["pct"] <= 1
    assert set(host["system"]["load"]) >= {"1", "5", "15", "norm", "cores"}
    assert "ingress" in host["host"]["network"] and "bytes" in host["host"]["network"]["egress"]
    fs = [e["system"]["filesystem"] for e in events[1:]]
    assert any(f["mount_point"] == "/" for f in fs)
    for f in fs:
        assert f["total"] >= f["used"]["bytes"] and 0 <= f["used"]["pct"] <= 1


def test_host_inventory_fields(tmp_path):
    ev = HostInventoryProbe(HostInventoryConfig(), ctx(tmp_path)).collect()
    h = ev["host"]
    assert ev["event"]["kind"] == "state" and ev["event"]["dataset"] == "host.inventory"
    assert h["hostname"] == "web01" and h["architecture"]
    assert h["os"]["type"] == "linux" and h["os"]["kernel"]
    assert isinstance(h["ip"], list) and isinstance(h["mac"], list)
    assert h["uptime"] >= 0
    assert ecs_mac("00:00:5e:00:53:23") == "00-00-5E-00-53-23"
    if Path("/proc/sys/kernel/random/boot_id").exists():
        assert h["boot"]["id"]


# -- the probe contract ----------------------------------------------------------
def test_config_class_comes_from_the_type_argument():
    from dataclasses import dataclass

    from agent.probes import PROBES, load_probe_class
    from agent.probes.base import Emit, Probe, ProbeConfig

    for name in PROBES:
        cls = load_probe_class(name)
        assert cls.config_class is not ProbeConfig, name
        assert cls.config_class.__name__.endswith("Config"), name
    assert SocketProbe.config_class is SocketConfig

    @dataclass
    class XConfig(ProbeConfig):
        x: int = 1

    class XProbe(Probe[XConfig]):
        name = "x"
        datasets = ()

        async def run(self, emit: Emit) -> None:
            return None

    assert XProbe.config_class is XConfig
    assert XProbe(XConfig(x=3), ProbeContext("a", "h", Path("."))).config.x == 3
    with pytest.raises(TypeError, match="contradicts"):
        class YProbe(Probe[XConfig]):
            config_class = ProbeConfig


def test_process_scan_reads_what_psutil_says(tmp_path):
    """New pids are read from /proc/<pid>/stat directly: same start times as psutil."""
    import psutil

    p = ProcessProbe(ProcessConfig(), ctx(tmp_path))
    boot = psutil.boot_time()
    scanned = p._scan()
    assert os.getpid() in scanned
    compared = 0
    for pid, create_time in scanned.items():
        try:
            proc = psutil.Process(pid)
            expected, ppid = proc.create_time(), proc.ppid()
        except psutil.Error:
            continue  # ended in between
        assert ppid != 2 and pid != 2  # kernel threads are left out by default
        if psutil.boot_time() == boot:  # the kernel's btime did not move meanwhile
            assert create_time == expected, pid
            compared += 1
    assert compared >= 1
    assert p._kernel_threads or not any(
        q.info["ppid"] == 2 for q in psutil.process_iter(["ppid"]))
    with_threads = ProcessProbe(ProcessConfig(include_kernel_threads=True), ctx(tmp_path))
    assert not p._kernel_threads or p._kernel_threads & set(with_threads._scan())
