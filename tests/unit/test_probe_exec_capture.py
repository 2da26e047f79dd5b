"""Event-driven process starts (proc connector), outbound connections, slow scans.

The connector and sock_diag tests use the real kernel (the suite runs as root);
the parser is also checked against datagrams built as the kernel lays them out.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from agent.probes import exec_capture
from agent.probes import proc_connector as pc
from agent.probes.account_names import AccountNames
from agent.probes.base import ProbeContext
from agent.probes.netdetect import PortScanDetector, SlowScanDetector, Syn
from agent.probes.process import ProcessConfig, ProcessProbe
from agent.probes.socket import SocketConfig, SocketProbe


def ctx(tmp_path: Path) -> ProbeContext:
    return ProbeContext("agent-1", "host-1", tmp_path)


def test_parse_exec_exit_fork_and_junk():
    data = (pc.build_event(pc.PROC_EVENT_EXEC, 42)
            + pc.build_event(pc.PROC_EVENT_FORK, 43, parent=42)
            + pc.build_event(pc.PROC_EVENT_EXIT, 42, parent=1, exit_code=3 << 8))
    evs = pc.parse(data)
    assert [(e.what, e.pid) for e in evs] == [
        (pc.PROC_EVENT_EXEC, 42), (pc.PROC_EVENT_FORK, 43), (pc.PROC_EVENT_EXIT, 42)]
    assert evs[1].parent == 42 and evs[2].exit_code == 3 << 8
    assert pc.parse(b"") == [] and pc.parse(b"\x00" * 60) == []
    assert pc.parse(pc.build_event(pc.PROC_EVENT_EXEC, 7)[:40]) == []  # cut short


def test_read_process_of_a_live_child(tmp_path):
    # the child lives until the test closes its stdin (or kills it): no timer involved
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()", "mark-é"],
                             cwd=tmp_path, stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while b"mark" not in Path(f"/proc/{child.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        fields, ppid = exec_capture.read_process(child.pid, "/proc", 4096, AccountNames())
    finally:
        child.kill()
        child.wait()
    p = fields["process"]
    assert ppid == os.getpid() and p["parent"] == {"pid": os.getpid()}
    assert p["args"][-1] == "mark-é" and p["command_line"].endswith("mark-é")
    assert p["executable"] == os.path.realpath(sys.executable)
    assert p["working_directory"] == str(tmp_path)
    assert fields["user"]["id"] == str(os.geteuid()) and fields["group"]["id"] == str(os.getegid())


async def _run_probe(probe, until, timeout: float = 30.0) -> list[dict]:
    events: list[dict] = []

    async def emit(batch: list[dict]) -> None:
        events.extend(batch)

    task = asyncio.create_task(probe.run(emit))
    try:
        deadline = time.monotonic() + timeout
        while not until(events):
            assert time.monotonic() < deadline, [e["event"].get("action") for e in events]
            assert not task.done(), task.exception()
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
    return events


async def test_connector_reports_a_1ms_process_with_its_parent(tmp_path):
    """Finding (issue 15): a short-lived reverse shell was never seen by the 5 s poll."""
    probe = ProcessProbe(ProcessConfig(source="connector", interval=3600), ctx(tmp_path))
    marker = f"canhgac-{os.getpid()}-short"

    started: list[subprocess.Popen] = []

    def done(evs: list[dict]) -> bool:
        if probe.capture is not None and not started:
            started.append(subprocess.Popen(["bash", "-c", f"/bin/sleep 0.001 0; : {marker}"]))
        return any(e.get("process", {}).get("args") == ["/bin/sleep", "0.001", "0"] for e in evs)

    events = await _run_probe(probe, done)
    started[0].wait()
    sleep = next(e for e in events if e.get("process", {}).get("args") == ["/bin/sleep", "0.001", "0"])
    assert sleep["event"]["type"] == ["start"] and sleep["event"]["action"] == "process-started"
    assert sleep["process"]["executable"].endswith("/sleep")
    assert sleep["process"]["parent"]["executable"].endswith("/bash")
    assert marker in sleep["process"]["parent"]["command_line"]
    assert sleep["user"]["id"] == str(os.geteuid()) and "name" in sleep["group"]
    assert sleep["process"]["working_directory"] == os.getcwd()


async def test_poll_fallback_when_connector_is_refused(tmp_path, monkeypatch):
    def refuse(*_a, **_k):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(pc, "open_socket", refuse)
    probe = ProcessProbe(ProcessConfig(interval=0.5), ctx(tmp_path))
    child = None

    def done(evs: list[dict]) -> bool:
        nonlocal child
        if child is None and any(e["event"]["action"] == "process-baseline" for e in evs):
            child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()",
                                      "poll-mark"], stdin=subprocess.PIPE)
        return any("poll-mark" in e.get("process", {}).get("command_line", "") for e in evs)

    try:
        await _run_probe(probe, done)
    finally:
        if child is not None:
            child.kill()
            child.wait()
    assert "connector unavailable" in probe.status()["reason"]
    assert probe.status()["source"] == "poll"


def test_account_tool_exec_is_remembered(monkeypatch):
    recent = exec_capture.RecentAccountTools()
    monkeypatch.setattr(exec_capture, "RECENT_ACCOUNT_TOOLS", recent)
    cap = exec_capture.ExecCapture.__new__(exec_capture.ExecCapture)
    exec_capture.ExecCapture.__init__(cap, socket.socket(), asyncio.new_event_loop())
    child = subprocess.Popen(["/bin/sleep", "30"])
    try:
        deadline = time.monotonic() + 30
        while b"sleep" not in Path(f"/proc/{child.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        monkeypatch.setattr(exec_capture, "ACCOUNT_TOOLS", frozenset({"sleep"}))
        ev = cap.on_exec(child.pid)
    finally:
        child.kill()
        child.wait()
    assert ev is not None and ev["process"]["name"] == "sleep"
    assert recent.latest_within(60)["process"]["pid"] == child.pid
    assert recent.latest_within(60, exec_capture.file_view("self"))["process"]["pid"] == child.pid
    assert recent.latest_within(60, ("mnt:[1]", "/srv/chroot")) is None  # another filesystem view
    assert recent.latest_within(-1) is None
    cap.close()
    cap.sock.close()


def test_exec_rate_limit_counts_the_excess():
    cap = exec_capture.ExecCapture(socket.socket(), asyncio.new_event_loop(),
                                   max_events_per_second=5)
    allowed = sum(cap._allow() for _ in range(100))
    assert allowed <= 6 and cap.counters["rate_limited"] >= 94
    cap.close()
    cap.sock.close()


# -- outbound connections -------------------------------------------------------
async def test_outbound_connection_with_its_process(tmp_path):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    probe = SocketProbe(SocketConfig(outbound_interval=0.1, outbound_include_loopback=True,
                                     interval=3600), ctx(tmp_path))
    shell: subprocess.Popen | None = None

    def done(evs: list[dict]) -> bool:
        nonlocal shell
        if shell is None and probe.conns is not None:
            shell = subprocess.Popen(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}; "
                                                    "read -t 30 line <&3"])
        return any(e["event"]["action"] == "connection-opened"
                   and e["destination"]["port"] == port for e in evs)

    try:
        events = await _run_probe(probe, done)
    finally:
        if shell is not None:
            shell.kill()
            shell.wait()
        srv.close()
    opened = [e for e in events if e["event"]["action"] == "connection-opened"]
    mine = [e for e in opened if e["destination"]["port"] == port]
    assert len(mine) == 1  # the accepted (server) side is inbound: not reported
    ev = mine[0]
    assert ev["event"]["type"] == ["connection", "start"] and ev["event"]["dataset"] == "socket"
    assert ev["destination"]["ip"] == "127.0.0.1" and ev["network"]["direction"] == "egress"
    assert shell is not None and ev["process"]["pid"] == shell.pid
    assert "/dev/tcp/127.0.0.1" in ev["process"]["command_line"]


def test_outbound_is_rate_limited(tmp_path):
    probe = SocketProbe(SocketConfig(outbound_max_per_second=3), ctx(tmp_path))
    assert probe._take(10, 1000) == 3
    assert probe._take(10, 1000) == 0


# -- slow port scans --------------------------------------------------------------
def _slow_scan(fast: PortScanDetector, slow: SlowScanDetector, src: str, ports: range,
               every: float) -> list[dict]:
    out: list[dict] = []
    t = 1000.0
    for port in ports:
        fast.feed(Syn(src, "10.0.0.1", port, t))
        for tick in range(int(every / 0.5)):
            now = t + tick * 0.5
            quiet: list = []
            out += fast.flush(now, quiet)
            for s, part in quiet:
                ev = slow.feed(s, part, now)
                if ev:
                    out.append(ev)
        t += every
    return out


def test_one_probe_every_5s_over_40_ports_is_a_slow_scan():
    """Finding (issue 15): the sensor saw every SYN but forgot a source after 5 s idle."""
    fast = PortScanDetector(window=60, min_ports=20, min_hosts=20, idle=5)
    slow = SlowScanDetector(window=600, min_ports=20, min_hosts=20)
    out = _slow_scan(fast, slow, "10.0.0.66", range(1, 41), 5.0)
    assert len(out) == 1, out  # once per window, not once per port after the threshold
    scan = out[0]["canhgac"]["scan"]
    assert out[0]["event"]["action"] == "port_scan" and scan["kind"] == "slow"
    assert out[0]["source"]["ip"] == "10.0.0.66" and scan["distinct_ports"] == 20


def test_ordinary_clients_are_not_slow_scans_and_memory_is_bounded():
    fast = PortScanDetector(window=60, min_ports=20, min_hosts=20, idle=5)
    slow = SlowScanDetector(window=600, min_ports=20, min_hosts=20, max_sources=50)
    # A client reconnecting to the same 3 services every 5 s for 10 minutes.
    fast2 = fast
    out = []
    for i in range(120):
        fast2.feed(Syn("10.0.0.5", "10.0.0.1", [22, 443, 5432][i % 3], 1000.0 + 5 * i))
        quiet: list = []
        fast2.flush(1000.0 + 5 * i + 5, quiet)
        for s, part in quiet:
            ev = slow.feed(s, part, 1000.0 + 5 * i + 5)
            if ev:
                out.append(ev)
    assert out == []
    for i in range(1000):
        part = PortScanDetector()
        part.feed(Syn(f"10.9.{i // 256}.{i % 256}", "10.0.0.1", 80, 1.0))
        quiet = []
        part.flush(100.0, quiet)
        slow.feed(quiet[0][0], quiet[0][1], 100.0)
    assert len(slow.sources) <= 50 and slow.evicted >= 950


def test_fast_scan_is_not_reported_again_as_slow():
    fast = PortScanDetector(window=60, min_ports=20, min_hosts=20, idle=5)
    slow = SlowScanDetector(window=600)
    for port in range(100):
        fast.feed(Syn("10.0.0.66", "10.0.0.1", port, 1.0))
    quiet: list = []
    out = fast.flush(10.0, quiet)
    assert len(out) == 1 and quiet == []
    slow.scan_reported("10.0.0.66", 10.0)
    fast.feed(Syn("10.0.0.66", "10.0.0.1", 1000, 20.0))
    fast.flush(30.0, quiet)
    assert slow.feed(quiet[0][0], quiet[0][1], 30.0) is None


def test_two_execs_of_one_pid_in_a_batch_do_not_share_the_last_image():
    cap = exec_capture.ExecCapture(socket.socket(), asyncio.new_event_loop())
    me = os.getpid()
    evs = cap.handle_many([pc.build_event(pc.PROC_EVENT_EXEC, me), pc.build_event(pc.PROC_EVENT_EXEC, me)])
    assert len(evs) == 2
    assert "command_line" not in evs[0]["process"]
    assert evs[0]["canhgac"]["process"]["incomplete"] is True
    assert evs[1]["process"]["args"] == Path(f"/proc/{me}/cmdline").read_bytes().rstrip(b"\0").decode(
        "utf-8", "replace").split("\0")
    cap.close()
    cap.sock.close()
