"""Security probes: declared datasets, typed configs, capability check, FIM helpers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from agent.probes import load_probe_class
from agent.probes.base import ProbeContext
from agent.probes.file_integrity import BINARY_PATHS, FileIntegrityConfig, changes_between, default_paths
from agent.probes.fim_scan import Excluder, RateLimiter, expand
from agent.probes.fim_store import FileRecord
from agent.probes.network_sensor import CAP_NET_RAW, NetworkSensorConfig, NetworkSensorProbe, has_capability
from canhgac.config import load_section
from canhgac.errors import ConfigError


@pytest.mark.parametrize(("name", "datasets"), [
    ("auth_log", {"auth", "iam", "raw"}),
    ("file_integrity", {"file"}),
    ("network_sensor", {"network", "dns"}),
])
def test_registry_and_datasets(name, datasets):
    cls = load_probe_class(name)
    assert cls.name == name and set(cls.datasets) == datasets
    assert cls.describe_config()["enabled"] is True


def test_configs_load_from_yaml_shapes():
    fim = load_section({"paths": ["/etc/passwd"], "exclude": ["*.swp"], "scan-interval": "15m",
                        "max_bytes_per_second": 1048576}, FileIntegrityConfig, "agent.yaml",
                       "probes.file_integrity")
    assert fim.scan_interval == 900 and fim.max_bytes_per_second == 1048576.0
    with pytest.raises(ConfigError, match="probes.network_sensor.scan_min_ports"):
        load_section({"scan_min_ports": 1}, NetworkSensorConfig, "agent.yaml",
                     "probes.network_sensor")
    with pytest.raises(ConfigError, match="unknown key"):
        load_section({"interface": "eth0"}, NetworkSensorConfig, "agent.yaml",
                     "probes.network_sensor")
    auth = load_section({"paths": ["/var/log/secure"], "start_at": "beginning"},
                        load_probe_class("auth_log").config_class, "agent.yaml", "probes.auth_log")
    assert auth.paths == ["/var/log/secure"]


def test_default_watch_lists_by_level():
    assert not set(BINARY_PATHS) & set(default_paths(2))
    assert not set(BINARY_PATHS) & set(default_paths(None))
    assert set(BINARY_PATHS) <= set(default_paths(3))
    for p in ("/etc/passwd", "/etc/shadow", "/etc/sudoers", "/etc/sudoers.d", "/etc/ssh",
              "/etc/systemd/system", "/etc/cron*", "/var/spool/cron"):
        assert p in default_paths(1)


def test_capability_parsing(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapEff:\t0000000000002000\n")
    assert has_capability(CAP_NET_RAW, str(status))
    status.write_text("Name:\tx\nCapEff:\t0000000000001000\n")
    assert not has_capability(CAP_NET_RAW, str(status))
    assert not has_capability(CAP_NET_RAW, str(tmp_path / "missing"))


async def test_disabled_without_capability_idles(tmp_path, monkeypatch):
    import agent.probes.network_sensor as ns

    monkeypatch.setattr(ns, "has_capability", lambda bit: False)
    p = NetworkSensorProbe(NetworkSensorConfig(), ProbeContext("a", "h", tmp_path))
    task = asyncio.create_task(p.run(lambda evs: asyncio.sleep(0)))
    await asyncio.wait_for(p.ready.wait(), 5)
    await asyncio.sleep(0.1)
    assert not task.done()
    assert p.status()["enabled"] is False and "CAP_NET_RAW" in p.status()["reason"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_importing_the_probe_does_not_import_scapy():
    code = ("import sys, agent.probes.network_sensor, agent.probes.netdetect; "
            "print('scapy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def rec(**kw) -> FileRecord:
    base = dict(path="/etc/x", type="file", size=10, mode=0o644, uid=0, gid=0, mtime_ns=1,
                inode=5, sha256="aa", target=None)
    base.update(kw)
    return FileRecord(**base)


def test_changes_between():
    assert changes_between(rec(), rec(mtime_ns=99)) == []  # touch is not a change
    assert changes_between(rec(), rec(sha256="bb", size=11)) == ["hash", "size"]
    assert changes_between(rec(), rec(mode=0o4755, uid=1)) == ["mode", "uid"]
    # not hashed (unreadable/too big): size and mtime are the evidence
    assert changes_between(rec(sha256=None), rec(sha256=None, mtime_ns=2)) == ["mtime"]
    assert changes_between(rec(type="symlink", sha256=None, target="/a"),
                           rec(type="symlink", sha256=None, target="/b")) == ["target_path"]


def test_rate_limiter_paces_files_and_bytes():
    lim = RateLimiter(files_per_second=200, bytes_per_second=0)
    t0 = time.monotonic()
    for _ in range(300):  # a full bucket (200) then 100 more at 200/s
        lim.take(files=1)
    assert 0.4 <= time.monotonic() - t0 < 1.5
    lim = RateLimiter(files_per_second=0, bytes_per_second=1_000_000)
    t0 = time.monotonic()
    for _ in range(3):
        lim.take(nbytes=1_000_000)
    assert 1.8 <= time.monotonic() - t0 < 3.5


def test_excluder_and_glob_expansion(tmp_path):
    for n in ("cron.d", "cron.daily", "crontab", "other"):
        (tmp_path / n).mkdir()
    assert expand([str(tmp_path / "cron*"), str(tmp_path / "nothere")]) == [
        str(tmp_path / n) for n in ("cron.d", "cron.daily", "crontab")] + [
        str(tmp_path / "nothere")]
    ex = Excluder(["*.swp", "/var/cache/*"])
    assert ex("/etc/.passwd.swp") and ex("/var/cache/x") and not ex("/etc/passwd")
