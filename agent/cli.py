"""`canhgac agent run|enroll|status|capabilities`.

Heavy imports (aiohttp, psutil, the queue) stay inside the command functions so
``canhgac --help`` stays instant and ``agent status`` stays light.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from canhgac.errors import UserError

DEFAULT_STATE_DIR = Path(".canhgac/agent")

RUN_EPILOG = """\
Ví dụ / examples:
  canhgac agent enroll --collector https://collector:8443 --token TOKEN --ca ca.pem
  canhgac agent run --config /etc/canhgac/agent.yaml
  canhgac agent status

The agent keeps every event in a durable local queue (STATE_DIR/queue.db) until the
collector acknowledges it. SIGTERM/Ctrl-C stops it within a few seconds, losing nothing.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "agent",
        help="run the host agent, enroll it, show its status / agent giám sát trên máy chủ",
        description="The canhgac host agent: probes on this server, shipped durably to the "
        "collector over TLS. / Agent giám sát: thu thập dữ liệu trên máy chủ và gửi về "
        "collector qua TLS.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    asub = p.add_subparsers(dest="agent_command", metavar="ACTION")
    p.set_defaults(func=lambda args: p.print_help() or 2)

    run = asub.add_parser(
        "run", help="run the agent in the foreground / chạy agent",
        description="Run the agent until SIGTERM or Ctrl-C. Needs credentials from "
        "`canhgac agent enroll` (in the state directory).",
    )
    _common(run)
    run.set_defaults(func=cmd_run)

    enroll = asub.add_parser(
        "enroll", help="enroll this agent with a collector / đăng ký agent với collector",
        description="Exchange a one-time enrollment token (made with `canhgac collector "
        "enroll-token --system ID`) for this agent's own id and secret, stored in "
        "STATE_DIR/credentials.json with mode 0600.",
    )
    enroll.add_argument("--collector", required=True, metavar="URL",
                        help="collector URL, e.g. https://collector:8443")
    enroll.add_argument("--token", default=os.environ.get("CANHGAC_ENROLL_TOKEN"), metavar="T",
                        help="one-time enrollment token (default: $CANHGAC_ENROLL_TOKEN, which "
                        "keeps it out of the process list; write --token=T if T starts with '-') "
                        "/ mã đăng ký dùng một lần")
    enroll.add_argument("--ca", required=True, type=Path, metavar="FILE",
                        help="CA certificate (PEM) that signed the collector's certificate")
    enroll.add_argument("--hostname", help="name to enroll under (default: this host's name)")
    enroll.add_argument("--force", action="store_true",
                        help="replace existing credentials in the state directory")
    _common(enroll)
    enroll.set_defaults(func=cmd_enroll)

    status = asub.add_parser(
        "status", help="show probes, queue and delivery of a running agent / trạng thái agent",
        description="Read STATE_DIR/status.json (refreshed every heartbeat) and show probes, "
        "queue depth, last delivery and drops. Exit code 0 when the agent is running, 1 if not.",
    )
    _common(status)
    status.add_argument("--format", choices=["table", "json"], default="table",
                        help="output format (default: table)")
    status.set_defaults(func=cmd_status)

    caps = asub.add_parser(
        "capabilities", help="the Linux capabilities the enabled probes need / quyền cần cấp",
        description="Print which enabled probe needs which capability, then the systemd drop-in "
        "(/etc/systemd/system/canhgac-agent.service.d/capabilities.conf) that grants exactly those.",
    )
    _common(caps)
    caps.add_argument("--format", choices=["table", "dropin"], default="table",
                      help="table (with the drop-in after it) or the drop-in alone")
    caps.set_defaults(func=cmd_capabilities)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="agent.yaml (default: built-in defaults; see configs/agent.yaml)")
    p.add_argument("--state-dir", type=Path, metavar="DIR",
                   help=f"state directory: queue, credentials, status (default: {DEFAULT_STATE_DIR} "
                   "or state_dir from --config)")


def _load_config(args: argparse.Namespace) -> tuple[Any, str]:
    from agent.config import load

    cfg, source = load(args.config)
    if args.state_dir is not None:
        cfg.state_dir = args.state_dir
    return cfg, source


def _state_dir(args: argparse.Namespace) -> Path:
    if args.state_dir is not None:
        return args.state_dir
    if args.config is not None:
        cfg, _ = _load_config(args)
        return Path(cfg.state_dir)
    return DEFAULT_STATE_DIR


def cmd_capabilities(args: argparse.Namespace) -> int:
    from agent.capabilities import dropin, explain, needed
    from agent.config import resolve_probes

    cfg, source = _load_config(args)
    enabled = [spec.name for spec in resolve_probes(cfg, source) if spec.status == "enabled"]
    if args.format == "table":
        from canhgac.table import render

        rows = [("PROBE", "CAPABILITY", "WHY"), *explain(enabled)]
        print(render(rows) if len(rows) > 1 else "no enabled probe needs a capability")
        print()
    print(dropin(needed(enabled)), end="")
    return 0


def cmd_run(args: argparse.Namespace) -> Any:
    """Validate the config, then run the agent.

    ``canhgac agent run`` imports only the agent's modules (the kernel CLI loads just
    the subcommand it runs), so it is as lean as ``python -m agent run``.
    """
    cfg, source = _load_config(args)
    return _run(cfg, source)


async def _run(cfg: Any, source: str) -> int:
    from agent.runtime import AgentRuntime

    return await AgentRuntime(cfg, source).run()


async def cmd_enroll(args: argparse.Namespace) -> int:
    from agent.enroll import CREDENTIALS, enroll, load_credentials

    if not args.token:
        raise UserError("--token is required (or set CANHGAC_ENROLL_TOKEN)")
    state_dir = _state_dir(args)
    existing = load_credentials(state_dir) if (state_dir / CREDENTIALS).exists() else None
    if existing is not None and not args.force:
        raise UserError(
            f"already enrolled as {existing.agent_id} with {existing.collector} "
            f"({state_dir / CREDENTIALS}); use --force to replace / đã đăng ký"
        )
    creds = await enroll(args.collector, args.token, args.ca, state_dir, hostname=args.hostname)
    print(f"enrolled / đã đăng ký: agent {creds.agent_id}"
          + (f", system {creds.system_id}" if creds.system_id else "")
          + f", collector {creds.collector}")
    print(f"credentials: {state_dir / CREDENTIALS} (mode 0600)")
    print(f"next: canhgac agent run --state-dir {state_dir}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import orjson

    from agent.health import STATUS_FILE, read_status

    state_dir = _state_dir(args)
    snap = read_status(state_dir)
    if snap is None:
        raise UserError(
            f"no agent status at {state_dir / STATUS_FILE}: is the agent running there? "
            "(canhgac agent run) / chưa có trạng thái agent"
        )
    running, why = _liveness(snap)
    snap["running"] = running
    if args.format == "json":
        sys.stdout.write(orjson.dumps(snap, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render_status(snap, running, why))
    return 0 if running else 1


def _liveness(snap: dict[str, Any]) -> tuple[bool, str]:
    if snap.get("state") != "running":
        return False, f"agent {snap.get('state', 'stopped')}"
    pid = int(snap.get("pid") or 0)
    if pid:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False, f"pid {pid} is gone (agent crashed or was killed)"
        except PermissionError:
            pass
    age = time.time() - float(snap.get("updated_epoch") or 0)
    interval = float(snap.get("heartbeat_interval") or 30)
    if age > 3 * interval + 5:
        return False, f"status is stale ({_dur(age)} old)"
    return True, ""


def _dur(seconds: float) -> str:
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def _ago(iso: str | None) -> str:
    if not iso:
        return "never / chưa"
    from canhgac.timeutil import parse_rfc3339

    try:
        return f"{_dur(time.time() - parse_rfc3339(iso).timestamp())} ago"
    except ValueError:
        return iso


def render_status(snap: dict[str, Any], running: bool, why: str = "") -> str:
    """A readable status page for operators (English with Vietnamese labels)."""
    lines: list[str] = []
    if running:
        head = (f"canhgac agent: running / đang chạy (pid {snap.get('pid')}, "
                f"up {_dur(snap.get('uptime_seconds', 0))}, updated {_ago(snap.get('updated'))})")
    else:
        head = f"canhgac agent: NOT running / không chạy: {why}"
    lines.append(head)
    lines.append(f"  host        {snap.get('hostname', '')}   agent id {snap.get('agent_id') or '-'}"
                 f"   system {snap.get('system_id') or '-'}   version {snap.get('version', '')}")
    d = snap.get("delivery") or {}
    if d:
        state = "up" if d.get("up") else "DOWN"
        if d.get("auth_refused"):
            state = "CREDENTIALS REFUSED (re-enroll?)"
        lines.append(f"  collector   {d.get('url', '')}  {state}; last delivery "
                     f"{_ago(d.get('last_success'))}; delivered {d.get('delivered_events', 0)}, "
                     f"send errors {d.get('send_errors', 0)}, dead-lettered {d.get('dead_events', 0)}")
        if d.get("last_error") and not d.get("up"):
            lines.append(f"              last error: {d['last_error']}")
    q = snap.get("queue") or {}
    lines.append(
        f"  queue       {q.get('depth', 0)} events waiting / chờ gửi "
        f"({_bytes(q.get('bytes', 0))} of {_bytes(q.get('max_bytes', 0))}, "
        f"oldest {_dur(q.get('oldest_age_seconds', 0))})"
    )
    lines.append(
        f"  drops       telemetry dropped {q.get('dropped_telemetry', 0)}, security refused "
        f"{q.get('refused_security', 0)}, dead letters {q.get('dead_letter', 0)}"
    )
    if snap.get("rss_bytes"):
        lines.append(f"  memory      {_bytes(snap['rss_bytes'])} RSS")
    lines.append("")
    rows = [("PROBE", "STATE", "RESTARTS", "EVENTS", "DATASETS", "LAST ERROR")]
    for name, p in (snap.get("probes") or {}).items():
        err = p.get("last_error") or p.get("error") or ""
        rows.append((name, p.get("state", ""), str(p.get("restarts", 0)), str(p.get("events", 0)),
                     ",".join(p.get("datasets", [])), err[:70]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False))
                     + "  " + r[-1])
    return "\n".join(line.rstrip() for line in lines) + "\n"
