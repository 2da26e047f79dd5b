"""The mock center as `canhgac up` runs it: its own process, files from national_center.local."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from canhgac.config import load_section
from collector.config import CollectorConfig
from collector.national.config import load as load_national
from national_center.local import prepare
from tests.fixtures.common import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_prepared_center_runs_and_passes_the_check(tmp_path, test_ca):
    port = free_port()
    local = prepare(tmp_path / "national", test_ca, port=port)
    again = prepare(tmp_path / "national", test_ca, port=port)
    assert again.collector_sections == local.collector_sections  # idempotent: secret reused
    secret_file = Path(local.collector_sections["national"]["link"]["secret_file"])
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert secret_file.read_text().strip() not in orjson.dumps(local.collector_sections).decode()

    cfg_doc = {"state_dir": str(tmp_path / "collector"), **local.collector_sections}
    cfg = load_section(cfg_doc, CollectorConfig, "collector.yaml")
    assert load_national(cfg.national, "collector.yaml").link.configured
    cfg_path = tmp_path / "collector.yaml"
    cfg_path.write_text(orjson.dumps(cfg_doc).decode())

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "canhgac.cli", *local.argv], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                time.sleep(0.1)
        done = subprocess.run([sys.executable, "-m", "canhgac.cli", "check", "national",
                               "--config", str(cfg_path), "--format", "json"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert orjson.loads(done.stdout)["ok"] is True
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out.decode()
    assert "indicators: 4" in out.decode()
