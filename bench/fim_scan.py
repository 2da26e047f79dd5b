"""File integrity: files/s and MB/s for a full scan of a 50,000-file tree, beside AIDE.

Same tree, same run, warm page cache for both (each tool runs once to warm up,
then is timed), one thread each. Figures are printed, never judged.

    .venv/bin/python bench/fim_scan.py [--files 50000] [--keep DIR]

What is timed:
  * canhgac walk+hash      : the probe's scan loop (lstat + SHA-256), no rate limit
  * canhgac probe, 1st run : the probe building its SQLite baseline (what a fresh agent does)
  * canhgac probe, restart : load baseline, rescan, compare (what every agent start does)
  * canhgac rate-limited   : the default caps (2,000 files/s, 32 MiB/s) to show the pacing
  * aide --init / --check  : AIDE 0.18 with sha256+p+u+g+s+m+i (the same facts we record)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.probes.base import ProbeContext
from agent.probes.file_integrity import FileIntegrityConfig, FileIntegrityProbe
from agent.probes.fim_scan import Excluder, RateLimiter, record, walk


def make_tree(root: Path, n: int, seed: int = 1) -> tuple[int, int]:
    """n files in 500-file directories; sizes like /usr and /etc: mostly small, a few big."""
    rnd = random.Random(seed)
    total = 0
    blob = os.urandom(4 << 20)
    for i in range(n):
        d = root / f"d{i // 500:03d}"
        if i % 500 == 0:
            d.mkdir(parents=True)
        r = rnd.random()
        size = (rnd.randint(100, 4096) if r < 0.7 else rnd.randint(4096, 65536) if r < 0.97
                else rnd.randint(65536, 2 << 20))
        off = rnd.randint(0, len(blob) - size)
        (d / f"f{i:06d}").write_bytes(blob[off:off + size])
        total += size
    return n, total


def scan(roots: list[Path], limiter: RateLimiter | None) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    files = nbytes = 0
    for p in walk([str(r) for r in roots], Excluder([])):
        r = record(p, 256 << 20, limiter)
        if r is not None and r.type == "file":
            files += 1
            nbytes += r.size
    return time.perf_counter() - t0, files, nbytes


async def probe_scan(root: Path, state: Path) -> tuple[float, int]:
    cfg = FileIntegrityConfig(paths=[str(root)], max_files_per_second=0, max_bytes_per_second=0)
    p = FileIntegrityProbe(cfg, ProbeContext("bench", "bench", state, level=3))
    events: list[dict] = []

    async def emit(batch: list[dict]) -> None:
        events.extend(batch)

    t0 = time.perf_counter()
    task = asyncio.create_task(p.run(emit))
    await p.ready.wait()
    dt = time.perf_counter() - t0
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    return dt, len(events)


def aide(root: Path, work: Path, mode: str) -> float:
    cfg = work / "aide.conf"
    cfg.write_text(
        f"database_in=file:{work}/aide.db\n"
        f"database_out=file:{work}/aide.db.new\n"
        "gzip_dbout=no\n"
        "report_url=stdout\n"
        "Bench = p+u+g+s+m+i+sha256\n"
        f"{root} Bench\n"
    )
    t0 = time.perf_counter()
    out = subprocess.run(["aide", f"--config={cfg}", f"--{mode}"], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if out.returncode not in (0, 1, 2, 3, 4, 5, 6, 7) or "ERROR" in out.stderr:
        raise RuntimeError(f"aide --{mode} failed ({out.returncode}): {out.stderr[-500:]}")
    if mode == "init":
        os.replace(work / "aide.db.new", work / "aide.db")
    return dt


def row(name: str, seconds: float, files: int, nbytes: int) -> None:
    print(f"{name:<32} {seconds:8.2f} s {files / seconds:11,.0f} files/s "
          f"{nbytes / seconds / 1e6:9.1f} MB/s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--keep", help="build the tree here and keep it")
    args = ap.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="canhgac-fimbench-"))
    try:
        root = base / "tree"
        if not root.exists():
            t0 = time.perf_counter()
            n, total = make_tree(root, args.files)
            print(f"tree: {n:,} files, {total / 1e6:,.1f} MB, built in "
                  f"{time.perf_counter() - t0:.1f} s ({root})")
        total = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        n = args.files
        print(f"host: {os.cpu_count()} CPUs; Python {sys.version.split()[0]}; "
              f"warm page cache; one thread per tool\n")
        scan([root], None)  # warm the cache
        dt, files, nbytes = scan([root], None)
        row("canhgac walk+hash", dt, files, nbytes)
        state = base / "state"
        shutil.rmtree(state, ignore_errors=True)
        dt, _ = asyncio.run(probe_scan(root, state))
        row("canhgac probe, 1st run (SQLite)", dt, n, total)
        dt, ev = asyncio.run(probe_scan(root, state))
        row("canhgac probe, restart+compare", dt, n, total)
        assert ev == 0, f"{ev} change events on an unchanged tree"
        if shutil.which("aide"):
            work = base / "aide"
            work.mkdir(exist_ok=True)
            aide(root, work, "init")  # warm-up
            dt = aide(root, work, "init")
            row("aide --init", dt, n, total)
            dt = aide(root, work, "check")
            row("aide --check", dt, n, total)
        else:
            print("aide: not installed (apt-get install aide)")
        lim = RateLimiter(2000, 32 * 1024 * 1024)
        subset = sorted(root.iterdir())[:8]  # 4,000 files: past the one-second burst
        dt, files, nbytes = scan(subset, lim)
        row("canhgac rate-limited (defaults)", dt, files, nbytes)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
