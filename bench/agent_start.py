"""Agent start to first event at the collector (issue 14: ≤ 5 s).

A real collector process on loopback (with its store); an agent enrolled with a one-time
token, then started as `python -m agent run` (the form the systemd unit uses) in its
default configuration — every probe on by default. The clock starts when the agent
process is spawned and stops when its first event is in the collector's store (and,
separately, its first heartbeat). Repeated ``--runs`` times, each with a fresh agent.

    python bench/agent_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, percentile, start_collector
from collector.auth import AuthStore


def _first(db: Path, agent_id: str, where: str = "1=1") -> bool:
    if not db.exists():
        return False
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(f"SELECT 1 FROM events WHERE json_extract(doc, '$.agent.id') = ? "
                           f"AND {where} LIMIT 1", (agent_id,)).fetchone()
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()
    return row is not None


def one_run(work: Path, url: str, ca: Path, n: int) -> tuple[float, float]:
    state = work / f"agent-{n}"
    auth = AuthStore(work / "collector" / "auth.db")
    token = auth.create_enroll_token("sys-1")
    auth.close()
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    subprocess.run([sys.executable, "-m", "agent", "enroll", "--collector", url, "--token", token,
                    "--ca", str(ca), "--state-dir", str(state)], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    agent_id = yaml.safe_load((state / "credentials.json").read_text())["agent_id"]
    cfg = work / f"agent-{n}.yaml"
    cfg.write_text(yaml.safe_dump({"state_dir": str(state)}))
    db = work / "collector" / "events.db"
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "--config", str(cfg)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = heartbeat = 0.0
    try:
        deadline = t0 + 60
        while time.monotonic() < deadline and not (first and heartbeat):
            if not first and _first(db, agent_id):
                first = time.monotonic() - t0
            if not heartbeat and _first(db, agent_id, "dataset = 'agent.health'"):
                heartbeat = time.monotonic() - t0
            time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(20)
    return first, heartbeat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="canhgac-agent-start-"))
    inv = work / "inventory.yaml"
    inv.write_text(yaml.safe_dump({"systems": [
        {"id": "sys-1", "name": "Hệ thống thử", "unit": "Đơn vị", "level": 3}]},
        allow_unicode=True), encoding="utf-8")
    proc, url, ca = start_collector(work, {"inventory": str(inv), "outputs": {"store": {}}})
    try:
        firsts, beats = [], []
        for n in range(args.runs):
            first, beat = one_run(work, url, ca, n)
            firsts.append(first)
            beats.append(beat)
            print(f"run {n + 1}: first event stored after {first:.2f} s, first heartbeat "
                  f"{beat:.2f} s")
        print(f"agent start → first event at the collector (default probes, {args.runs} runs): "
              f"median {percentile(firsts, 50):.2f} s, max {max(firsts):.2f} s (target ≤ 5 s)")
    finally:
        proc.terminate()
        proc.wait(20)


if __name__ == "__main__":
    main()
