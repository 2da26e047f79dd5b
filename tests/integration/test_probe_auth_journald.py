"""The auth log probe on a journald-only host: a real systemd-journald, started in a
private mount namespace (tmpfs over /run and /var/log/journal, so the host is not
touched), syslog messages sent by util-linux ``logger`` to its /dev/log socket, the
probe reading through the real ``journalctl -f -o json``. Restart resumes at the
saved cursor: nothing lost, nothing twice."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JOURNALD = "/lib/systemd/systemd-journald"


def need(tool: str) -> str:
    found = shutil.which(tool) or (tool if os.path.exists(tool) else None)
    if found is None:
        msg = f"{tool} is not installed"
        pytest.fail(msg)
    return found


@pytest.fixture
def journal_ns(tmp_path) -> Iterator[int]:
    """A private mount namespace running systemd-journald; yields journald's pid."""
    unshare, jd = need("unshare"), need(JOURNALD)
    need("journalctl")
    need("logger")
    need("nsenter")
    pidfile = tmp_path / "journald.pid"
    script = (
        "set -e; mount -t tmpfs tmpfs /run; "
        "if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi; "
        f"{jd} & echo $! > {pidfile}; wait"
    )
    holder = subprocess.Popen([unshare, "-m", "--propagation", "private", "sh", "-c", script],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pid = None
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if pidfile.exists() and pidfile.read_text().strip():
                pid = int(pidfile.read_text())
                probe = subprocess.run(["nsenter", "-m", "-t", str(pid), "test", "-S",
                                        "/run/systemd/journal/dev-log"])
                if probe.returncode == 0:
                    break
            if holder.poll() is not None:
                raise RuntimeError(f"journald namespace failed: {holder.stderr.read()!r}")
            time.sleep(0.1)
        else:
            raise RuntimeError("journald did not start")
        yield pid
    finally:
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            holder.wait(10)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()


def log(pid: int, tag: str, msg: str, prio: str = "authpriv.info", msg_pid: int = 4242) -> None:
    subprocess.run(["nsenter", "-m", "-t", str(pid), "logger", "--socket",
                    "/run/systemd/journal/dev-log", "-t", tag, f"--id={msg_pid}", "-p", prio,
                    msg], check=True)


class Probe:
    def __init__(self, ns_pid: int, state: Path, config: dict) -> None:
        self.proc = subprocess.Popen(
            ["nsenter", "-m", "-t", str(ns_pid), sys.executable, "-m", "agent.probes.auth_log",
             "--config", json.dumps(config), "--state-dir", str(state)],
            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.q: queue.Queue[dict] = queue.Queue()
        self.events: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.q.put(json.loads(line))

    def wait(self, cond, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            if self.proc.poll() is not None and self.q.empty():
                raise AssertionError(f"probe exited: {self.proc.stderr.read()}")
            try:
                self.events.append(self.q.get(timeout=0.1))
            except queue.Empty:
                pass
        raise AssertionError(f"timeout; got {[e['event']['original'] for e in self.events]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        while not self.q.empty():
            self.events.append(self.q.get())


def real(events: list[dict]) -> list[dict]:
    return [e for e in events if "canhgac-test" not in e["event"]["original"]]


def test_journald_follow_and_resume_at_cursor(journal_ns: int, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    cfg = {"paths": [str(tmp_path / "no-such-auth.log")]}  # journald: auto -> journal
    p = Probe(journal_ns, state, cfg)
    try:
        # journalctl starts at the end: send markers until one comes through.
        for i in range(50):
            log(journal_ns, "canhgac-test", f"marker {i}", prio="auth.notice")
            try:
                p.wait(lambda: any("marker" in e["event"]["original"] for e in p.events), 0.3)
                break
            except AssertionError:
                continue
        for port in (50001, 50002, 50003):
            log(journal_ns, "sshd", f"Failed password for root from 203.0.113.9 port {port} ssh2")
        log(journal_ns, "sshd", "Accepted publickey for ops from 203.0.113.9 port 50004 ssh2: "
                                "ED25519 SHA256:abc")
        log(journal_ns, "cron", "not an auth facility", prio="daemon.info")
        log(journal_ns, "useradd", "new user: name=toor, UID=0, GID=0, home=/root, "
                                   "shell=/bin/bash, from=/dev/pts/0", msg_pid=777)
        p.wait(lambda: len(real(p.events)) >= 5)
        time.sleep(0.5)
    finally:
        p.stop()
    got = real(p.events)
    assert [e["event"]["action"] for e in got] == ["ssh_login"] * 4 + ["user_created"]
    assert [e["event"]["outcome"] for e in got[:4]] == ["failure"] * 3 + ["success"]
    assert all(e["source"]["ip"] == "203.0.113.9" for e in got[:4])
    assert [e["source"]["port"] for e in got[:4]] == [50001, 50002, 50003, 50004]
    assert got[0]["process"] == {"name": "sshd", "pid": 4242}
    assert got[0]["log"]["syslog"]["facility"]["code"] == 10
    assert got[4]["event"]["dataset"] == "iam" and got[4]["user"]["id"] == "0"
    assert "Failed password for root" in got[0]["event"]["original"]
    # Written while the probe is stopped: found at restart, after the saved cursor.
    log(journal_ns, "sshd", "Invalid user oracle from 198.51.100.7 port 40000")
    log(journal_ns, "su", "FAILED SU (to root) alice on pts/0")
    p2 = Probe(journal_ns, state, cfg)
    try:
        p2.wait(lambda: len(p2.events) >= 2)
        time.sleep(1.0)
    finally:
        p2.stop()
    assert [e["event"]["action"] for e in p2.events] == ["ssh_invalid_user", "su"]
