"""Helpers shared by the benchmarks: start a real collector process, enroll agents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def start_collector(
    state: Path, extra: dict | None = None, port: int = 0, profile: str | None = None
) -> tuple[subprocess.Popen, str, Path]:
    """Run `canhgac collector run` as its own process; returns (proc, url, ca).

    With ``profile``, under cProfile (stats written to that file when it stops)."""
    state.mkdir(parents=True, exist_ok=True)
    cfg = {"state_dir": str(state / "collector"), "listen": {"host": "127.0.0.1", "port": port}}
    cfg.update(extra or {})
    cfg_path = state / "collector.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    info = state / "collector" / "collector.json"
    if info.exists():
        info.unlink()
    proc = subprocess.Popen(
        [sys.executable, *(["-m", "cProfile", "-o", profile] if profile else []),
         "-m", "canhgac.cli", "--log-level", "warning", "collector", "run",
         "--config", str(cfg_path)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        if info.exists():
            data = json.loads(info.read_text())
            return proc, data["url"], Path(data["ca"])
        if proc.poll() is not None:
            raise SystemExit(f"collector exited with {proc.returncode}")
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("collector did not start within 30 s")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def proc_stats(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds user+system) of a process."""
    import psutil

    p = psutil.Process(pid)
    t = p.cpu_times()
    return p.memory_info().rss / 2**20, t.user + t.system
