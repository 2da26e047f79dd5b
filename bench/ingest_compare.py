"""Ingest side by side: this tree (worker processes), this tree in one process, and a base commit.

Runs ``bench/ingest.py`` in rounds, the three configurations one after the other in
each round, so the VM's drift (its speed varies by ±10 % over minutes) touches them
alike, and prints each run and the medians:

- ``workers auto``: this tree, the collector's default (``ingest_workers: auto``:
  1 worker process on 2 cores);
- ``workers 0``: this tree with everything on the event loop: the same code and the
  same work per event on one core (the reference the issue's "both cores" is about);
- ``base <rev>``: the code before issue 13 (default 884be6e, the last commit before
  the ingest workers), checked out with ``git worktree`` into a temporary directory
  and run with its own ``bench/ingest.py`` (same agents, batches and durability).
  It does less work per event than this tree (validation became stricter since).

Each run takes the CPU lock exclusively (``flock -x /tmp/canhgac-cpu.lock``), as the
docs' figures do. Usage:

    .venv/bin/python bench/ingest_compare.py --rounds 5
    .venv/bin/python bench/ingest_compare.py --rounds 3 --base none   # this tree only
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = str(Path(tempfile.gettempdir()) / "canhgac-cpu.lock")  # the lock the docs' figures use
_FIGURES = {
    "events/s": re.compile(r"throughput\s+([\d,]+) events/s"),
    "p99 ms": re.compile(r"ack latency p99\s+([\d.]+) ms"),
    "CPU cores": re.compile(r"collector CPU\s+(\d+) % of one core"),
}
# Printed by this tree's bench only (the base's does not wait for the store).
_STORED = re.compile(r"stored\s+([\d,]+) events/s")


def run_once(tree: Path, args: list[str]) -> dict[str, float]:
    cmd = ["flock", "-x", LOCK, sys.executable, str(tree / "bench" / "ingest.py"), *args]
    proc = subprocess.run(cmd, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                          capture_output=True, text=True, check=False)
    out: dict[str, float] = {}
    for name, rx in _FIGURES.items():
        m = rx.search(proc.stdout)
        if m is None:
            raise SystemExit(f"{tree}: bench/ingest.py printed no {name!r} (exit "
                             f"{proc.returncode}):\n{proc.stdout[-800:]}{proc.stderr[-1500:]}")
        out[name] = float(m.group(1).replace(",", ""))
    out["CPU cores"] /= 100
    m = _STORED.search(proc.stdout)
    if m is not None:
        out["stored"] = float(m.group(1).replace(",", ""))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--agents", type=int, default=8)
    ap.add_argument("--batches", type=int, default=400)
    ap.add_argument("--base", default="884be6e",
                    help="commit to compare with (default: before issue 13's workers); 'none' to skip")
    args = ap.parse_args()
    load = ["--agents", str(args.agents), "--batches", str(args.batches)]
    configs: list[tuple[str, Path, list[str]]] = [
        ("workers auto", ROOT, load),
        ("workers 0", ROOT, [*load, "--workers", "0"]),
    ]
    base_dir = None
    if args.base != "none":
        base_dir = Path(tempfile.mkdtemp(prefix="canhgac-ingest-base-")) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q",
                        str(base_dir), args.base], check=True)
        configs.append((f"base {args.base}", base_dir, load))
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in configs}
    try:
        for r in range(1, args.rounds + 1):
            for name, tree, cmd_args in configs:
                fig = run_once(tree, cmd_args)
                results[name].append(fig)
                stored = f"  stored {fig['stored']:>7,.0f}/s" if "stored" in fig else ""
                print(f"round {r}/{args.rounds}  {name:<16} {fig['events/s']:>9,.0f} events/s  "
                      f"p99 {fig['p99 ms']:>6.1f} ms  {fig['CPU cores']:.2f} cores{stored}", flush=True)
    finally:
        if base_dir is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_dir)],
                           check=False)
    ref = statistics.median(f["events/s"] for f in results["workers 0"])
    print(f"\ningest, {args.agents} agents x {args.batches} batches of 500 events, fsync per commit; "
          f"median of {args.rounds} interleaved rounds")
    print(f"  {'configuration':<16} {'events/s':>10} {'range':>19} {'p99 ms':>7} {'cores':>6} "
          f"{'vs workers 0':>13} {'stored/s':>9}")
    for name, figs in results.items():
        eps = [f["events/s"] for f in figs]
        med = statistics.median(eps)
        print(f"  {name:<16} {med:>10,.0f} {min(eps):>9,.0f}-{max(eps):<9,.0f} "
              f"{statistics.median(f['p99 ms'] for f in figs):>7.1f} "
              f"{statistics.median(f['CPU cores'] for f in figs):>6.2f} {med / ref:>12.2f}x "
              f"{_median_of(figs, 'stored'):>9}")
    print("  events/s: acked (after the fsync'd commit); stored/s: until the embedded store had "
          "written every event")
    print("  target (issue 13): >= 55,000 events/s acked with workers auto")


def _median_of(figs: list[dict[str, float]], key: str) -> str:
    values = [f[key] for f in figs if key in f]
    return f"{statistics.median(values):,.0f}" if values else "-"


if __name__ == "__main__":
    main()
