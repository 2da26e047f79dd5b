"""Agent footprint: RSS and CPU of `canhgac agent run` next to prometheus-node-exporter.

Usage:
    .venv/bin/python bench/agent_footprint.py [--seconds 60] [--entry canhgac|module]
                                              [--collector sink|real] [--state-dir DIR]
                                              [--scrape-interval 15] [--disable PROBE ...]

What runs, for ``--seconds`` (default 60) after a 5 s warm-up:
- the agent in its default configuration: every probe that is on by default
  (auth_log, file_integrity and network_sensor included), at default intervals.
  Run it as root (or with the unit's capabilities) so that the network sensor
  really captures. ``--disable PROBE`` (repeatable) turns probes off to see what
  each costs; the output then says the figure is NOT the default configuration.
  Which probes ran, and in what state, is printed from the agent's own
  status.json, next to the table;
  ``--entry canhgac`` starts it as ``canhgac agent run`` (the full CLI),
  ``--entry module`` as ``python -m agent run`` (agent modules only; the form
  the systemd unit uses);
- where it ships to: ``--collector sink`` (default) is a tiny TLS sink in this
  process (aiohttp, local CA, answers every POST /v1/events with a full ack), so
  delivery, TLS and gzip are all exercised without the collector's own CPU in
  the picture; ``--collector real`` starts a real ``canhgac collector run`` on a
  loopback port (the same helper the end-to-end tests use) and enrolls the
  agent with a one-time token; ``--state-dir DIR`` runs the agent from an
  already enrolled state directory (e.g. the collector ``canhgac up`` started);
- Debian's prometheus-node-exporter (installed with apt-get if missing), on a
  loopback port from 0, scraped every ``--scrape-interval`` s as Prometheus would
  (an idle exporter does nothing, which would not be a fair comparison).

Each process is sampled once a second with psutil (RSS; CPU from its own
user+system time). Prints a side-by-side table. Never passes or fails on numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WARMUP = 5.0


@dataclass
class Samples:
    name: str
    rss: list[int] = field(default_factory=list)
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    t_start: float = 0.0
    t_end: float = 0.0

    @property
    def cpu_pct(self) -> float:
        wall = self.t_end - self.t_start
        return 100.0 * (self.cpu_end - self.cpu_start) / wall if wall > 0 else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_node_exporter() -> str:
    exe = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
    if os.path.exists(exe):
        return exe
    print("installing prometheus-node-exporter with apt-get ...", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends",
                    "prometheus-node-exporter"], check=True, env=env)
    return shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"


class Sink:
    """A minimal /v1/events endpoint over TLS that acks everything."""

    def __init__(self) -> None:
        self.events = 0
        self.requests = 0

    async def start(self, work: Path) -> tuple[str, Path]:
        from aiohttp import web

        from canhgac.tls import issue_cert, make_ca, server_context

        ca = make_ca(work / "ca")
        cert = issue_cert(ca, work / "ca", "sink", ["127.0.0.1", "localhost"])

        async def events(request: web.Request) -> web.Response:
            body = await request.read()
            n = body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
            self.events += n
            self.requests += 1
            return web.json_response({"batch_id": request.headers.get("X-Batch-Id"),
                                      "accepted": n, "duplicate": 0, "rejected": 0, "errors": []})

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/events", events)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        port = free_port()
        site = web.TCPSite(self.runner, "127.0.0.1", port,
                           ssl_context=server_context(cert.cert, cert.key))
        await site.start()
        return f"https://127.0.0.1:{port}", ca.cert

    async def stop(self) -> None:
        await self.runner.cleanup()


def write_agent_config(work: Path, disable: list[str]) -> Path:
    cfg = work / "agent.yaml"
    # Empty: the default configuration. Only --disable changes it.
    body = "".join(f"  {name}: false\n" for name in disable)
    cfg.write_text(f"probes:\n{body}" if body else "{}\n", encoding="utf-8")
    return cfg


def probes_line(state: Path, disable: list[str]) -> list[str]:
    """Which probes ran, from the agent's status.json (written every heartbeat)."""
    try:
        snap = json.loads((state / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"  probes: unknown (no status.json: {exc})"]
    on, off = [], []
    for name, p in (snap.get("probes") or {}).items():
        state_ = p.get("state", "?")
        extra = p.get("status") or {}
        if state_ in ("running", "done", "starting", "backoff"):
            note = state_ if state_ != "running" else ""
            if extra.get("enabled") is False:  # network_sensor without CAP_NET_RAW
                note = f"idle: {extra.get('reason', 'disabled')}"
            elif name == "network_sensor" and extra.get("enabled"):
                note = "capturing"
            elif name == "auth_log" and extra.get("source"):
                note = f"{extra['source']}, {extra.get('files_followed', 0)} files followed"
            elif name == "file_integrity" and "files_tracked" in extra:
                note = f"{extra['files_tracked']} files, {extra.get('watches', 0)} watches"
            on.append(f"{name} ({note})" if note else name)
        else:
            why = "--disable" if name in disable else (
                "off by default" if state_ == "disabled" else state_)
            off.append(f"{name} ({why})")
    lines = [f"  probes on:  {', '.join(on) or '-'}", f"  probes off: {', '.join(off) or '-'}"]
    if disable:
        lines.append(f"  NOTE: NOT the default configuration: --disable {' '.join(disable)}")
    else:
        lines.append("  configuration: the default (every probe that is on by default is on)")
    return lines


def cpu_seconds(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


async def sample(procs: dict[str, psutil.Process], seconds: float,
                 scrape_url: str, scrape_interval: float) -> dict[str, Samples]:
    await asyncio.sleep(WARMUP)
    out = {name: Samples(name) for name in procs}
    now = time.monotonic()
    for name, p in procs.items():
        out[name].cpu_start, out[name].t_start = cpu_seconds(p), now
    end = now + seconds
    next_scrape = now
    loop = asyncio.get_running_loop()
    while time.monotonic() < end:
        if time.monotonic() >= next_scrape:
            next_scrape += scrape_interval
            await loop.run_in_executor(None, lambda: urllib.request.urlopen(scrape_url).read())
        for name, p in procs.items():
            out[name].rss.append(p.memory_info().rss)
        await asyncio.sleep(1.0)
    now = time.monotonic()
    for name, p in procs.items():
        out[name].cpu_end, out[name].t_end = cpu_seconds(p), now
    return out


def mib(n: float) -> str:
    return f"{n / 1048576:.1f} MiB"


def report(results: dict[str, Samples], seconds: float, sink: Sink | None,
           probes: list[str]) -> None:
    names = list(results)
    rows = [
        ("", *names),
        ("RSS max", *(mib(max(results[n].rss)) for n in names)),
        ("RSS mean", *(mib(sum(results[n].rss) / len(results[n].rss)) for n in names)),
        ("RSS last", *(mib(results[n].rss[-1]) for n in names)),
        ("CPU % of one core", *(f"{results[n].cpu_pct:.2f}%" for n in names)),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"\nfootprint over {seconds:.0f} s (after {WARMUP:.0f} s warm-up), "
          f"{psutil.cpu_count()} cores, {platform_line()}")
    for r in rows:
        print("  " + "  ".join(c.rjust(w) if i else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    for line in probes:
        print(line)
    print("  targets (issue 13): agent RSS <= 40 MiB, CPU <= 0.2% of one core, "
          "every default probe on")
    if sink is not None:
        print(f"  sink received {sink.events} events in {sink.requests} requests")


def platform_line() -> str:
    import platform

    return f"Python {platform.python_version()}, {platform.system()} {platform.release()}"


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--entry", choices=["canhgac", "module"], default="canhgac")
    ap.add_argument("--collector", choices=["sink", "real"], default="sink")
    ap.add_argument("--state-dir", type=Path, help="an enrolled agent state dir (real collector)")
    ap.add_argument("--scrape-interval", type=float, default=15.0)
    ap.add_argument("--disable", action="append", default=[], metavar="PROBE",
                    help="turn a probe off (repeatable); the figure is then NOT the default "
                    "configuration, and the output says so")
    args = ap.parse_args()
    from agent.probes import PROBES

    unknown = [p for p in args.disable if p not in PROBES]
    if unknown:
        ap.error(f"unknown probe(s) {', '.join(unknown)} (known: {', '.join(PROBES)})")

    node_exporter = ensure_node_exporter()
    work = Path(tempfile.mkdtemp(prefix="canhgac-footprint-"))
    sink: Sink | None = None
    collector = None
    if args.state_dir is None and args.collector == "real":
        from tests.fixtures.procs import CollectorProc

        collector = CollectorProc(work, free_port()).start()
        state = work / "agent"
        enroll = await asyncio.create_subprocess_exec(
            str(BIN / "canhgac"), "agent", "enroll", "--collector", collector.url,
            "--token", collector.token("sys-bench"), "--ca", str(collector.ca),
            "--state-dir", str(state), cwd=ROOT)
        if await enroll.wait() != 0:
            collector.stop()
            raise SystemExit("enrollment with the real collector failed")
    elif args.state_dir is None:
        from agent.enroll import Credentials, save_credentials

        sink = Sink()
        url, ca = await sink.start(work)
        state = work / "agent"
        save_credentials(state, Credentials("bench-agent", "bench-secret", url, ca=str(ca)))
    else:
        state = args.state_dir
    config = write_agent_config(work, args.disable)
    if args.entry == "canhgac":
        cmd = [str(BIN / "canhgac"), "--log-level", "warning", "agent", "run"]
    else:
        cmd = [sys.executable, "-m", "agent", "--log-level", "warning", "run"]
    cmd += ["--state-dir", str(state), "--config", str(config)]
    ne_port = free_port()
    agent = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT)
    ne = await asyncio.create_subprocess_exec(
        node_exporter, f"--web.listen-address=127.0.0.1:{ne_port}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        procs = {f"canhgac agent ({args.entry})": psutil.Process(agent.pid),
                 "node-exporter": psutil.Process(ne.pid)}
        results = await sample(procs, args.seconds, f"http://127.0.0.1:{ne_port}/metrics",
                               args.scrape_interval)
        probes = probes_line(state, args.disable)
    finally:
        for p in (agent, ne):
            if p.returncode is None:
                p.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        agent_rc = await asyncio.wait_for(agent.wait(), 10)
        agent_stop = time.monotonic() - t0
        await asyncio.wait_for(ne.wait(), 10)
        if sink is not None:
            await sink.stop()
        if collector is not None:
            stored = len(collector.stored())
            collector.stop()
            print(f"  real collector stored {stored} events from the agent")
    report(results, args.seconds, sink, probes)
    print(f"  agent exit code {agent_rc} after SIGTERM, in {agent_stop:.2f} s")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(asyncio.run(main()))
