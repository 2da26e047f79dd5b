"""Run every fuzz target for a bounded time on its committed corpus: ``make fuzz``.

Each target runs in its own process (libFuzzer exits on the first crash and writes the
input to ``fuzz/crashes/``); new interesting inputs are added to ``fuzz/corpus/<target>/``
so the corpus grows when you commit it. Prints a summary table; exit 1 on any crash.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = ("query_parser", "validator")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=60, help="per target (default 60)")
    ap.add_argument("targets", nargs="*", help=f"default: all of {', '.join(TARGETS)}")
    args = ap.parse_args()
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown:
        ap.error(f"unknown target(s) {', '.join(unknown)} (known: {', '.join(TARGETS)})")
    args.targets = args.targets or list(TARGETS)
    crashes = HERE / "crashes"
    crashes.mkdir(exist_ok=True)
    rows = []
    for name in args.targets:
        corpus = HERE / "corpus" / name
        corpus.mkdir(parents=True, exist_ok=True)
        before = len(list(corpus.iterdir()))
        print(f"fuzz: {name} for {args.seconds} s (corpus {before} inputs) ...", flush=True)
        t0 = time.monotonic()
        res = subprocess.run(
            [sys.executable, str(HERE / f"{name}.py"), str(corpus),
             f"-max_total_time={args.seconds}", f"-artifact_prefix={crashes}/{name}-",
             "-max_len=4096", "-rss_limit_mb=2048", "-print_final_stats=1"],
            capture_output=True, text=True, check=False)
        took = time.monotonic() - t0
        found = re.search(r"stat::number_of_executed_units:\s*(\d+)", res.stderr or "")
        runs = f"{int(found.group(1)):,}" if found else "?"
        rows.append((name, "ok" if res.returncode == 0 else f"CRASH (rc {res.returncode})",
                     runs, before, len(list(corpus.iterdir())), f"{took:.0f}"))
        if res.returncode != 0:
            print(res.stderr[-3000:], file=sys.stderr)
    widths = [max(len(str(r[i])) for r in rows + [("target", "result", "runs", "corpus before",
                                                     "corpus after", "seconds")])
              for i in range(6)]
    head = ("target", "result", "runs", "corpus before", "corpus after", "seconds")
    for r in (head, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0 if all(r[1] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
