"""`canhgac up`: the whole stack on one machine, on embedded defaults.

Each part runs as its own process, exactly as in production (collector, agent,
mock national center), so what `up` shows is what a deployment does. State,
generated configs, TLS material and logs live under one directory
(default ./.canhgac) and are reused by the next `up`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import yaml

from canhgac.errors import UserError

DEMO_UNIT = "Sở Thông tin và Truyền thông"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "up",
        help="start collector + agent (+ mock national center) locally / chạy toàn bộ hệ thống",
        description="Start the whole canhgac stack on this machine with embedded defaults: "
        "a collector on https://127.0.0.1:8443 with the embedded event store, one local agent "
        "enrolled to it, and TLS from a local CA generated under the state directory. "
        "Ctrl-C stops everything cleanly.",
    )
    p.add_argument("--state-dir", default=".canhgac", help="where state, configs, TLS and logs go")
    p.add_argument("--port", type=int, default=8443, help="collector port (default 8443)")
    p.add_argument("--no-agent", action="store_true", help="do not start the local agent")
    p.add_argument("--no-national", action="store_true", help="do not start the mock national center")
    p.add_argument("--national-port", type=int, default=9443, help="mock national center port")
    p.add_argument("--inventory", help="inventory.yaml to use instead of the generated demo")
    p.add_argument("--notify-webhook", metavar="URL",
                   help="send every alert of the stack to this URL (a webhook channel named "
                   "'webhook', docs/notifications.md)")
    p.set_defaults(func=run)


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log: Path


@dataclass
class Stack:
    state: Path
    children: list[Child] = field(default_factory=list)

    def spawn(self, name: str, args: list[str]) -> Child:
        log = self.state / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        fh = open(log, "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "canhgac.cli", *args],
            stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C goes to us; we stop children in order
        )
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def stop(self) -> None:
        """Stop in reverse start order, each fully, so an agent's last flush finds its collector."""
        for child in reversed(self.children):
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
            try:
                child.proc.wait(10)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()


def _write_once(path: Path, data: dict) -> None:
    if not path.exists():
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _write_collector_yaml(path: Path, generated: dict) -> None:
    """Write the stack's collector.yaml; on later runs keep the user's edits but take
    this run's options (--inventory, --port, the national link) — they must not be
    silently ignored because a file from an earlier run exists."""
    doc: dict = {}
    if path.exists():
        with contextlib.suppress(OSError, yaml.YAMLError):
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
            doc = loaded if isinstance(loaded, dict) else {}
    doc.update({k: generated[k] for k in ("state_dir", "inventory")})
    doc["listen"] = {**(doc.get("listen") or {}), **generated["listen"]}
    outputs = doc.get("outputs") if isinstance(doc.get("outputs"), dict) else {}
    doc["outputs"] = {**generated["outputs"], **{k: v for k, v in outputs.items()
                                                 if k not in ("national",)}}
    if "national" in generated:
        doc["national"] = generated["national"]
        doc["outputs"]["national"] = generated["outputs"].get("national", {})
    else:
        doc.pop("national", None)
        doc["outputs"].pop("national", None)
    _set_notify_webhook(doc, generated.get("notify_webhook"))
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _set_notify_webhook(doc: dict, url: str | None) -> None:
    """``--notify-webhook URL``: a webhook channel named ``webhook`` (every alert, as the
    default route takes every channel); without it this run has no such channel, and
    routes the user wrote keep their other channels."""
    notif = doc.get("notifications") if isinstance(doc.get("notifications"), dict) else {}
    channels = notif.get("channels") if isinstance(notif.get("channels"), dict) else {}
    if url:
        channels["webhook"] = {"type": "webhook", "url": url}
    else:
        channels.pop("webhook", None)
        for route in notif.get("routes") or []:
            if isinstance(route, dict) and isinstance(route.get("channels"), list):
                route["channels"] = [c for c in route["channels"] if c != "webhook"]
        if isinstance(notif.get("routes"), list):
            notif["routes"] = [r for r in notif["routes"]
                               if not (isinstance(r, dict) and r.get("channels") == [])]
    if channels:
        notif["channels"] = channels
        doc["notifications"] = notif
    else:
        doc.pop("notifications", None)


def _demo_inventory(path: Path) -> None:
    """One level-3 system on this host, with every layer declared, so coverage has content."""
    import datetime as dt

    today = dt.date.today()
    _write_once(path, {
        "province": "Thừa Thiên Huế",
        "systems": [{
            "id": "demo-portal",
            "name": "Cổng thông tin điện tử (demo)",
            "unit": DEMO_UNIT,
            "level": 3,
            "approval": {"approved": True, "decision": "1234/QĐ-UBND (demo)",
                         "date": dt.date(2024, 8, 15)},
            "plan": {"deployed": dt.date(2024, 11, 20)},
            "hosts": [socket.gethostname()],
            "onsite": {"team": [{"name": "Nguyễn Văn An", "role": "Trưởng nhóm ATTT"}]},
            "monitoring": {"provider": "SOC tỉnh (demo)"},
            "assessments": [{"date": today - dt.timedelta(days=60),
                             "organisation": "Đơn vị đánh giá độc lập (demo)", "result": "passed",
                             "independent": True}],
            "national": {"enabled": True},
        }],
    })


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_for_file(path: Path, child: Child, timeout: float = 30) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists():
            with contextlib.suppress(orjson.JSONDecodeError):
                return orjson.loads(path.read_bytes())
        if child.proc.poll() is not None:
            tail = child.log.read_text(errors="replace").splitlines()[-15:]
            raise UserError(f"{child.name} exited with code {child.proc.returncode}; last log lines:\n"
                            + "\n".join(tail))
        time.sleep(0.1)
    raise UserError(f"{child.name} did not start within {timeout:.0f} s (see {child.log})")


def _scrape(url: str, ca: Path, token_file: Path) -> dict[str, float]:
    ctx = ssl.create_default_context(cafile=str(ca))
    token = token_file.read_text(encoding="utf-8").strip()
    req = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, context=ctx, timeout=2) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, _, value = line.rpartition(" ")
        key = name.split("{")[0]
        try:
            out[key] = out.get(key, 0.0) + float(value)
            out[name] = float(value)
        except ValueError:
            continue
    return out


def run(args: argparse.Namespace) -> int:
    state = Path(args.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    for port, flag in ((args.port, "--port"), (args.national_port, "--national-port")):
        if (flag == "--port" or not args.no_national) and not _port_free(port):
            raise UserError(f"port {port} on 127.0.0.1 is in use (another `canhgac up`?); use {flag}")
    inventory = Path(args.inventory).resolve() if args.inventory else state / "inventory.yaml"
    if not args.inventory:
        _demo_inventory(inventory)
    national = None
    if not args.no_national:
        from canhgac.tls import make_ca
        from national_center.local import prepare as prepare_national

        national = prepare_national(state / "national", make_ca(state / "collector" / "tls"),
                                    port=args.national_port)
    collector_doc: dict = {
        "state_dir": str(state / "collector"),
        "listen": {"host": "127.0.0.1", "port": args.port},
        "inventory": str(inventory),
        "outputs": {"store": {}},
    }
    if args.notify_webhook:
        if not args.notify_webhook.startswith(("http://", "https://")):
            raise UserError(f"--notify-webhook: must start with http:// or https://, "
                            f"got {args.notify_webhook!r}")
        collector_doc["notify_webhook"] = args.notify_webhook
    if national is not None:
        collector_doc["national"] = dict(national.collector_sections["national"])
        # Production sends hourly summaries; the local tour shows layer 4 within a minute.
        collector_doc["national"]["summaries"] = {"interval": "1m"}
        collector_doc["outputs"].update(national.collector_sections["outputs"])
    collector_cfg = state / "collector.yaml"
    _write_collector_yaml(collector_cfg, collector_doc)
    stack = Stack(state)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        info_file = state / "collector" / "collector.json"
        with contextlib.suppress(FileNotFoundError):
            info_file.unlink()
        if national is not None:
            stack.spawn("national", national.argv)
        collector = stack.spawn("collector", ["collector", "run", "--config", str(collector_cfg)])
        info = _wait_for_file(info_file, collector)
        url, ca = info["url"], Path(info["ca"])
        agent_state = state / "agent"
        if not args.no_agent:
            if not (agent_state / "credentials.json").exists():
                from collector.auth import AuthStore

                auth = AuthStore(state / "collector" / "auth.db")
                token = auth.create_enroll_token("demo-portal", ttl_seconds=600)
                auth.close()
                done = subprocess.run(
                    [sys.executable, "-m", "canhgac.cli", "agent", "enroll", "--collector", url,
                     "--token", token, "--ca", str(ca), "--state-dir", str(agent_state)],
                    capture_output=True, text=True, check=False,
                )
                if done.returncode != 0:
                    raise UserError(f"agent enrollment failed: {done.stderr.strip()}")
            stack.spawn("agent", ["agent", "run", "--state-dir", str(agent_state)])
        _banner(url, ca, state, stack)
        _live(url, ca, state / "collector" / "metrics.token", stack, lambda: stopping)
    finally:
        print("\nstopping ...", file=sys.stderr)
        stack.stop()
        print("stopped. State kept in " + str(state), file=sys.stderr)
    return 0


def _banner(url: str, ca: Path, state: Path, stack: Stack) -> None:
    cols = shutil.get_terminal_size((100, 20)).columns
    print("canhgac is running / canhgac đang chạy".center(min(cols, 78), "─"))
    by_name = {c.name: c for c in stack.children}
    print(f"  collector    {url}   (pid {by_name['collector'].proc.pid})")
    print(f"  console      {url}/ui/   (web console: sign in with the token in "
          f"{state / 'collector' / 'admin.token'}, or one from canhgac collector operator-token)")
    print(f"  metrics      {url}/metrics   (Bearer token: {state / 'collector' / 'metrics.token'})")
    print(f"  CA cert      {ca}")
    if "national" in by_name:
        print(f"  national     mock center, pid {by_name['national'].proc.pid}   "
              "(canhgac national-mock received)")
    if "agent" in by_name:
        print(f"  agent        pid {by_name['agent'].proc.pid}, enrolled as system demo-portal")
    print("  coverage     canhgac coverage --config " + str(state / "collector.yaml"))
    print(f"  state dir    {state}")
    print(f"  logs         {state / 'logs'}")
    print("  query        canhgac query 'event.dataset:host.metrics' --since 15m")
    print("  stop         Ctrl-C")


def _live(url: str, ca: Path, token_file: Path, stack: Stack,  # type: ignore[no-untyped-def]
          stopping) -> None:
    tty = sys.stdout.isatty()
    last_print = 0.0
    gone: set[str] = set()
    while not stopping():
        for child in stack.children:
            if child.proc.poll() is None or child.name in gone:
                continue
            if child.name != "national":
                raise UserError(f"{child.name} exited with code {child.proc.returncode} "
                                f"(see {child.log})")
            # The national center is outside the province: its outage is what layer 4
            # measures, so the stack keeps running and shows the link down.
            gone.add(child.name)
            print(f"\nnational center mock stopped (code {child.proc.returncode}): the link "
                  "shows as down (canhgac check national); the stack keeps running", flush=True)
        try:
            m = _scrape(url, ca, token_file)
            stored = m.get('canhgac_output_events_delivered_total{output="store"}', 0)
            online = m.get('canhgac_agents{state="online"}', 0)
            link = m.get("canhgac_national_link_up")
            line = (f"received {int(m.get('canhgac_ingest_events_received_total', 0)):,}  "
                    f"stored {int(stored):,}  "
                    f"rejected {int(m.get('canhgac_ingest_events_rejected_total', 0)):,}  "
                    f"alerts {int(m.get('canhgac_alerts_raised_total', 0)):,}  "
                    f"agents online {int(online)}"
                    + ("" if link is None else f"  national link {'up' if link else 'DOWN'}"))
        except OSError as exc:
            line = f"collector not answering: {exc}"
        if tty:
            print("\r\x1b[2K" + line, end="", flush=True)
        elif time.time() - last_print > 10:
            print(line, flush=True)
            last_print = time.time()
        for _ in range(20):
            if stopping():
                break
            time.sleep(0.1)
