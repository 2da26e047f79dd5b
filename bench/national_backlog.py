"""Benchmark: drain a national-center backlog, then steady-state reports/s.

The mock center runs as its own process (`canhgac national-mock run`, TLS on
loopback); the collector side is the real thing in this process: a DurableQueue
holding the backlog, the `national` output (policy, minimisation, gzip, HMAC
signing) and the DeliveryLoop, with the delivery settings the collector uses.

Phase 1: N alerts (default 100,000) are spooled while the link is "down", then
the loop starts and we time until the spool is drained and the center holds
exactly N distinct alerts.
Phase 2: alerts arrive at a fixed offered rate for a few seconds; we report the
delivered rate and the end-to-end delay (alert created -> stored at the center).

Prints figures; never passes or fails on time.

    .venv/bin/python bench/national_backlog.py [--alerts 100000] [--rate 5000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import percentile  # noqa: E402
from canhgac.config import Duration, Secret  # noqa: E402
from canhgac.schema import ALERT, PRIORITY_SECURITY, new_event  # noqa: E402
from canhgac.tls import issue_cert, make_ca  # noqa: E402
from shipper.delivery import DeliveryConfig, DeliveryLoop  # noqa: E402
from shipper.outputs.national import make_output  # noqa: E402
from shipper.outputs.national.config import LinkConfig, NationalOutputConfig  # noqa: E402
from shipper.queue import DurableQueue  # noqa: E402

KEY_ID = "vn-bench"


def alert(i: int) -> bytes:
    ev = new_event(ALERT, kind="alert", category=["authentication"], action="rule_match",
                   message=f"Dò mật khẩu SSH từ 203.0.113.{i % 250} (lần {i})")
    ev["event"]["severity"] = (47, 73, 99)[i % 3]
    ev["rule"] = {"id": "ssh-bruteforce", "name": "SSH brute force", "ruleset": "canhgac"}
    ev["user"] = {"name": f"user{i % 997}"}
    ev["source"] = {"ip": f"203.0.113.{i % 250}", "port": 40000 + i % 20000}
    ev["process"] = {"command_line": "/usr/sbin/sshd -D -R"}
    ev["host"] = {"name": f"web-{i % 8}"}
    ev["canhgac"] = {"system": {"id": f"sys-{i % 20}", "name": "Cổng dịch vụ công", "level": 3},
                     "unit": {"name": "Sở Thông tin và Truyền thông"}}
    return orjson.dumps(ev)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_center(tmp: Path, secret: bytes) -> tuple[subprocess.Popen, str, Path, Path]:
    ca = make_ca(tmp / "ca")
    cert = issue_cert(ca, tmp, "center", ["127.0.0.1", "localhost"])
    keys = tmp / "keys.yaml"
    keys.write_text(f"keys:\n  - id: {KEY_ID}\n    secret: hex:{secret.hex()}\n")
    db = tmp / "received.db"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "canhgac.cli", "--log-level", "warning", "national-mock", "run",
         "--listen", f"127.0.0.1:{port}", "--cert", str(cert.cert), "--key", str(cert.key),
         "--keys", str(keys), "--db", str(db)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    import socket

    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"https://127.0.0.1:{port}", ca.cert, db
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"mock center exited with {proc.returncode}") from None
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("mock center did not start")


def center_rows(db: Path) -> list[tuple[str, float, str]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT event_id, received, doc FROM reports").fetchall()
    finally:
        con.close()


def center_count(db: Path) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT COUNT(*) FROM reports").fetchone()[0]
    finally:
        con.close()


async def main(args: argparse.Namespace) -> None:
    secret = secrets.token_bytes(32)
    with tempfile.TemporaryDirectory(prefix="canhgac-bench-national-") as d:
        tmp = Path(d)
        proc, url, ca, db = start_center(tmp, secret)
        try:
            link = LinkConfig(url=url, key_id=KEY_ID, secret=Secret("hex:" + secret.hex()),
                              ca=ca, timeout=Duration(30), connect_timeout=Duration(5))
            out = make_output(link, secret, NationalOutputConfig(), state_dir=tmp / "state")
            dcfg = DeliveryConfig(**out.delivery_config)
            q = DurableQueue(tmp / "spool.db", outputs=("national",), max_bytes=4 << 30)
            await q.open()

            # -- phase 1: backlog ----------------------------------------
            n = args.alerts
            t = time.perf_counter()
            chunk = 500
            for start in range(0, n, chunk):
                await q.append([alert(i) for i in range(start, min(n, start + chunk))],
                               PRIORITY_SECURITY)
            spool_s = time.perf_counter() - t
            st = (await q.stats())["national"]
            print(f"backlog: {st.pending_events} alerts in the spool "
                  f"({q.bytes_used / 2**20:.1f} MiB) built in {spool_s:.1f} s")
            loop = DeliveryLoop(q, out, dcfg)
            t = time.perf_counter()
            await loop.start()
            ok = await loop.flush(timeout=3600)
            drain = time.perf_counter() - t
            stored = center_count(db)
            c = out.counters
            print(f"drain:   {n} alerts in {drain:.2f} s = {n / drain:,.0f} alerts/s, "
                  f"{c.requests} requests ({c.requests / drain:.1f}/s), "
                  f"{c.bytes_sent / 2**20:.1f} MiB gzip sent, flushed={ok}, "
                  f"center stored {stored} (exact: {stored == n})")

            # -- phase 2: steady state -----------------------------------
            rate, seconds = args.rate, args.seconds
            tick = 0.05
            per_tick = max(1, int(rate * tick))
            before_req, before_del = c.requests, c.delivered
            t0 = time.perf_counter()
            i = n
            next_at = t0
            while time.perf_counter() - t0 < seconds:
                await q.append([alert(j) for j in range(i, i + per_tick)], PRIORITY_SECURITY)
                i += per_tick
                next_at += tick
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            produced = i - n
            ok = await loop.flush(timeout=600)
            elapsed = time.perf_counter() - t0
            await loop.stop()
            await q.close()
            rows = center_rows(db)
            delays = []
            for _eid, received, doc in rows[n:]:
                created = orjson.loads(doc)["event"]["created"]
                from canhgac.timeutil import parse_rfc3339

                delays.append(received - parse_rfc3339(created).timestamp())
            reqs = c.requests - before_req
            print(f"steady:  offered {rate:,}/s for {seconds:.0f} s ({produced} alerts): "
                  f"delivered {c.delivered - before_del} in {elapsed:.2f} s "
                  f"= {(c.delivered - before_del) / elapsed:,.0f} alerts/s, "
                  f"{reqs / elapsed:.1f} requests/s (avg {produced / max(reqs, 1):.0f} alerts/request), "
                  f"flushed={ok}")
            if delays:
                print(f"delay:   created -> stored at center p50 {percentile(delays, 50) * 1000:.0f} ms, "
                      f"p99 {percentile(delays, 99) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms")
            ids = [r[0] for r in rows]
            print(f"center:  {len(ids)} reports, {len(set(ids))} distinct, "
                  f"duplicates acknowledged {c.duplicates + c.duplicate_batches}")
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alerts", type=int, default=100_000)
    ap.add_argument("--rate", type=int, default=5000, help="steady-state offered alerts/s")
    ap.add_argument("--seconds", type=float, default=10.0)
    asyncio.run(main(ap.parse_args()))
