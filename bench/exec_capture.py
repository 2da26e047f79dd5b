"""Exec capture: of N short-lived processes, how many does the process probe report
with their exact command line, and what does the probe cost while they run?

    flock -x /tmp/canhgac-cpu.lock .venv/bin/python bench/exec_capture.py [--processes 10000]
                                                                   [--source auto|poll]

The process probe runs alone as its own process (``python -m agent.probes.process``,
events as NDJSON into a file: the agent's queue and shipping are not in the figure,
see bench/agent_footprint.py for those). Once it reports that it is listening, a
helper process spawns ``/bin/sleep 0.001 0.<n>`` N times, one after the other
(``posix_spawn`` + ``waitpid``: each lives about 1 ms; the second argument makes
every command line unique and adds less than a nanosecond to the sleep). Then the
bench waits until the probe has reported every one of them or has been quiet for
5 s, and counts:

- captured exactly: a ``process-started`` event whose ``process.args`` is exactly
  the spawned argv and whose parent is the helper;
- incomplete: a start event for the pid without the command line (gone before read);
- missed: no start event at all.

CPU is the probe process's user+system time during the storm (from the first spawn
to the last event), as a share of one core. Run as root (the connector needs
CAP_NET_ADMIN). Figures are printed, never judged.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]

SPAWNER = r"""
import os, sys, time
n = int(sys.argv[1])
env = {"PATH": "/usr/bin:/bin"}
t0 = time.monotonic()
pids = []
for i in range(n):
    pid = os.posix_spawn("/bin/sleep", ["/bin/sleep", "0.001", f"0.{i:012d}"], env)
    os.waitpid(pid, 0)
    pids.append(pid)
print(time.monotonic() - t0, flush=True)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=10_000)
    ap.add_argument("--source", choices=["auto", "connector", "poll"], default="connector")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="canhgac-exec-bench-"))
    out_path = work / "events.ndjson"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with out_path.open("w") as out:
        probe = subprocess.Popen(
            [sys.executable, "-m", "agent.probes.process", "--state-dir", str(work),
             "--config", json.dumps({"source": args.source})],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if probe.poll() is not None:
                raise SystemExit(f"probe exited: {probe.stderr.read().decode() if probe.stderr else ''}")
            status = _last_status(out_path)
            if status and (status.get("source") == "connector" or args.source == "poll"):
                break
            time.sleep(0.1)
        else:
            raise SystemExit("the probe did not start listening within 60 s")
        ps = psutil.Process(probe.pid)
        cpu0 = sum(ps.cpu_times()[:2])
        t0 = time.monotonic()
        spawner = subprocess.run([sys.executable, "-c", SPAWNER, str(args.processes)],
                                 capture_output=True, text=True, check=True)
        spawn_seconds = float(spawner.stdout.strip())
        # Wait for the probe to catch up: its counts stop moving for 2 s (6 s for the poll).
        quiet = 2.0 if args.source != "poll" else 6.0
        seen: tuple[int, int] = (-1, -1)
        last_change = time.monotonic()
        while time.monotonic() - last_change < quiet:
            st = _last_status(out_path) or {}
            now_seen = (st.get("started", 0), st.get("ended", 0))
            if now_seen != seen:
                seen, last_change = now_seen, time.monotonic()
            time.sleep(0.1)
        busy_seconds = last_change - t0
        cpu = sum(ps.cpu_times()[:2]) - cpu0
        status = _last_status(out_path) or {}
    finally:
        probe.terminate()
        probe.wait(10)
    exact, incomplete, helper = _count(out_path, args.processes)
    n = args.processes
    print(f"processes spawned:        {n} in {spawn_seconds:.1f} s "
          f"({n / spawn_seconds:,.0f}/s, each /bin/sleep 0.001)")
    print(f"probe source:             {status.get('source')}  {status.get('connector', '')}")
    print(f"captured, exact cmdline:  {exact} ({100 * exact / n:.2f} %)")
    print(f"start without cmdline:    {incomplete} ({100 * incomplete / n:.2f} %)")
    missed = n - exact - incomplete
    print(f"missed (or start unnamed): {missed} ({100 * missed / n:.2f} %)")
    print(f"helper seen as parent:    {helper}")
    print(f"probe CPU during storm:   {cpu:.2f} s over {busy_seconds:.1f} s = "
          f"{100 * cpu / busy_seconds:.1f} % of one core "
          f"({1e6 * cpu / n:.0f} µs per process, start + end events)")


def _last_status(path: Path) -> dict | None:
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 65536))
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith(b'{"status"'):
            try:
                return json.loads(line)["status"]
            except ValueError:
                continue
    return None


def _count(path: Path, n: int) -> tuple[int, int, int]:
    """(starts with the exact argv, starts without a command line, distinct parent pids)."""
    want = {f"0.{i:012d}" for i in range(n)}
    exact: set[str] = set()
    sleeps_incomplete = 0
    parents: set[int] = set()
    with path.open("rb") as fh:
        for line in fh:
            if b"process-started" not in line:
                continue
            ev = json.loads(line)
            p = ev.get("process", {})
            args = p.get("args")
            if args and len(args) == 3 and args[:2] == ["/bin/sleep", "0.001"] and args[2] in want:
                exact.add(args[2])
                parents.add(p.get("parent", {}).get("pid", -1))
            elif not args and p.get("name") == "sleep":
                sleeps_incomplete += 1
    return len(exact), sleeps_incomplete, len(parents)


if __name__ == "__main__":
    main()
