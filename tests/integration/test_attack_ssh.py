"""A real sshd (Debian openssh-server) on loopback, a real SSH client (paramiko) guessing
passwords from 127.0.0.7, then logging in with a key: the auth log probe, following
sshd's log file, reports each failure and then the success with the right source."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from agent.probes.auth_log import AuthLogConfig, AuthLogProbe
from agent.probes.base import ProbeContext
from tests.fixtures.common import free_port

ATTACKER = "127.0.0.7"


def need(path: str) -> str:
    found = shutil.which(path) or (path if os.path.exists(path) else None)
    if found is None:
        msg = f"{path} is not installed (deploy/test-deps.sh installs openssh-server)"
        pytest.fail(msg)
    return found


class Sshd:
    def __init__(self, root: Path) -> None:
        sshd = need("/usr/sbin/sshd")
        keygen = need("ssh-keygen")
        self.root = root
        self.port = free_port()
        self.log = root / "sshd.log"
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host_key")],
                       check=True)
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(root / "client_key")],
                       check=True)
        shutil.copy(root / "client_key.pub", root / "authorized_keys")
        (root / "sshd_config").write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {root / 'host_key'}\n"
            f"PidFile {root / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {root / 'authorized_keys'}\n"
            "UsePAM no\n"
            "PasswordAuthentication yes\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "StrictModes no\n"
            "LogLevel INFO\n"
            "MaxStartups 100\n"
        )
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
        self.proc = subprocess.Popen(
            [sshd, "-D", "-f", str(root / "sshd_config"), "-E", str(self.log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.proc.stderr.read()!r}")
            if self.log.exists() and "Server listening" in self.log.read_text():
                return
            time.sleep(0.05)
        raise RuntimeError("sshd did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def sshd(tmp_path) -> Iterator[Sshd]:
    d = tmp_path / "sshd"
    d.mkdir()
    s = Sshd(d)
    try:
        yield s
    finally:
        s.stop()


def attempt(port: int, user: str, *, password: str | None = None,
            key: paramiko.PKey | None = None) -> tuple[bool, int]:
    """One SSH connection from ATTACKER; returns (authenticated, client port)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                    source_address=(ATTACKER, 0))
    client_port = sock.getsockname()[1]
    t = paramiko.Transport(sock)
    try:
        t.start_client(timeout=10)
        try:
            if key is not None:
                t.auth_publickey(user, key)
            else:
                t.auth_password(user, password or "")
        except paramiko.AuthenticationException:
            return False, client_port
        return t.is_authenticated(), client_port
    finally:
        t.close()


async def test_brute_force_then_success_seen_with_source_ip(sshd: Sshd, tmp_path):
    events: list[dict] = []

    async def emit(batch: list[dict]) -> None:
        events.extend(batch)

    cfg = AuthLogConfig(paths=[str(sshd.log)], start_at="beginning", journald="never",
                            poll_interval=0.05)
    probe = AuthLogProbe(cfg, ProbeContext("a", "h", tmp_path))
    task = asyncio.create_task(probe.run(emit))
    try:
        failed_ports = []
        for i in range(5):
            ok, port = await asyncio.to_thread(attempt, sshd.port, "root", password=f"guess{i}")
            assert not ok
            failed_ports.append(port)
        for _ in range(2):
            ok, port = await asyncio.to_thread(attempt, sshd.port, "admin", password="admin")
            assert not ok
            failed_ports.append(port)
        key = paramiko.Ed25519Key.from_private_key_file(str(sshd.root / "client_key"))
        ok, ok_port = await asyncio.to_thread(attempt, sshd.port, "root", key=key)
        assert ok

        def logins() -> list[dict]:
            return [e for e in events if e["event"].get("action") == "ssh_login"]

        for _ in range(200):
            if any(e["event"]["outcome"] == "success" for e in logins()):
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
    got = logins()
    failures = [e for e in got if e["event"]["outcome"] == "failure"]
    successes = [e for e in got if e["event"]["outcome"] == "success"]
    assert len(failures) == 7, [e["event"]["original"] for e in events]
    assert len(successes) == 1
    assert got.index(successes[0]) > max(got.index(f) for f in failures)
    for e in got:
        assert e["source"]["ip"] == ATTACKER
        assert e["event"]["dataset"] == "auth" and e["event"]["category"] == ["authentication"]
        assert ATTACKER in e["related"]["ip"]
    assert sorted(e["source"]["port"] for e in failures) == sorted(failed_ports)
    assert [e["user"]["name"] for e in failures] == ["root"] * 5 + ["admin"] * 2
    assert successes[0]["source"]["port"] == ok_port
    assert successes[0]["user"]["name"] == "root"
    assert successes[0]["canhgac"]["ssh"]["method"] == "publickey"
    invalid = [e for e in events if e["event"].get("action") == "ssh_invalid_user"]
    assert len(invalid) == 2 and all(e["user"]["name"] == "admin" for e in invalid)
    # Every line of the log became exactly one event (raw if not understood).
    lines = sshd.log.read_text().splitlines()
    assert [e["event"]["original"] for e in events] == lines[:len(events)]
