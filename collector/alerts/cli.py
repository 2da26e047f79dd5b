"""`canhgac alerts list|show|ack|resolve` — the operator's side of layer 1.

Times are the province's local time (UTC+7), labelled as such; ids may be given by a
unique prefix of at least 8 characters (the list shows 8).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

LOCAL = dt.timezone(dt.timedelta(hours=7))
OUTCOMES = ("true_positive", "false_positive", "benign")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from collector.alerts.client import add_connection_args

    p = sub.add_parser("alerts", help="list, show, acknowledge and resolve alerts")
    asub = p.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    ls = asub.add_parser("list", help="recent alerts, newest first")
    ls.add_argument("--state", "--status", dest="status",
                    choices=["open", "acknowledged", "resolved"], default=None)
    ls.add_argument("--severity", choices=["low", "medium", "high", "critical"], default=None,
                    help="this severity and above")
    ls.add_argument("--since", default=None, help="only alerts raised within, e.g. 1h, 7d")
    ls.add_argument("--system", default=None, help="one system id")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--format", choices=["table", "json"], default="table")
    add_connection_args(ls)
    ls.set_defaults(func=run_list)
    for name, helptext in (("show", "one alert: what happened, its evidence, who did what"),
                           ("ack", "acknowledge: you are on it (stops the layer-1 SLA clock)"),
                           ("resolve", "resolve, with a note on what was done and the outcome")):
        a = asub.add_parser(name, help=helptext)
        a.add_argument("id", help="alert id (event.id), or its first 8+ characters")
        if name == "show":
            a.add_argument("--format", choices=["text", "json"], default="text")
        else:
            a.add_argument("--note", "-m", default="", required=name == "resolve",
                           help="what you saw / what you did")
        if name == "resolve":
            a.add_argument("--outcome", required=True, choices=OUTCOMES,
                           help="what it was: a real attack, a false alarm, or benign activity")
        add_connection_args(a)
        a.set_defaults(func=run_step if name != "show" else run_show, action=name)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, LOCAL).strftime("%d/%m %H:%M")


def _severity(n: int | None) -> str:
    if n is None:
        return "?"
    label = "low" if n <= 21 else "medium" if n <= 47 else "high" if n <= 73 else "critical"
    return f"{label} ({n})"


def _evidence_text(ev: dict[str, Any], width: int = 70) -> str:
    text = ", ".join(f"{k.split('.')[-1] if k != 'process.command_line' else 'cmd'}={v}"
                     for k, v in ev.items())
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_json(data: object) -> None:
    import orjson

    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")


def run_list(args: argparse.Namespace) -> int:
    from canhgac.table import render
    from collector.alerts.client import Client

    data = Client.from_args(args).request(
        "GET", "/v1/alerts", {"status": args.status, "system": args.system, "limit": args.limit,
                              "severity": args.severity, "since": args.since})
    if args.format == "json":
        _print_json(data)
        return 0
    alerts = data["alerts"]
    rows: list[tuple[object, ...]] = [
        ("TIME (UTC+7)", "SEVERITY", "STATUS", "SYSTEM", "ALERT", "UPD", "ID")]
    for a in alerts:
        title = a["title"]
        ev = _evidence_text(a.get("evidence") or {})
        rows.append((_when(a["created"]), _severity(a["severity"]), a["status"], a["system_id"],
                     title + (f" — {ev}" if ev else ""), a.get("updates") or "", a["id"][:8]))
    print(render(rows))
    print(f"{len(alerts)} alert(s); `canhgac alerts show ID` for the evidence")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from collector.alerts.client import Client, alert_path

    rec = Client.from_args(args).request("GET", alert_path(args.id))
    if args.format == "json":
        _print_json(rec)
        return 0
    ev = rec.get("event") or {}
    alert = (ev.get("canhgac") or {}).get("alert") or {}
    lines = [
        f"{rec['title']}",
        f"  id        {rec['id']}",
        f"  severity  {_severity(rec['severity'])}   rule {rec['rule']}",
        f"  system    {rec['system_id']}   unit {rec['unit']}",
        f"  raised    {_when(rec['created'])} (UTC+7)"
        + (f"   updates {rec['updates']}, last {_when(rec.get('last_update'))}"
           if rec.get("updates") else ""),
        f"  status    {rec['status']}"
        + (f"   acknowledged by {rec['acked_by']} at {_when(rec['acked_at'])}"
           if rec.get("acked_by") else "")
        + (f"   resolved by {rec['resolved_by']} at {_when(rec['resolved_at'])}"
           f" ({rec.get('outcome') or '-'})" if rec.get("resolved_by") else ""),
    ]
    if rec.get("resolve_note"):
        lines.append(f"  note      {rec['resolve_note']}")
    if ev.get("message"):
        lines.append(f"  message   {ev['message']}")
    evidence = rec.get("evidence") or {}
    if evidence:
        lines.append("  evidence")
        lines += [f"    {k:<22} {v}" for k, v in evidence.items()]
    ids = alert.get("source_event_ids") or []
    if ids:
        lines.append(f"  events    {len(ids)}: {', '.join(ids[:5])}{' …' if len(ids) > 5 else ''}")
        lines.append(f"            canhgac query 'event.id:\"{ids[0]}\"' --since 30d")
    if rec["status"] != "resolved":
        lines.append(f"  next      canhgac alerts ack {rec['id'][:8]}  |  canhgac alerts resolve "
                     f"{rec['id'][:8]} --outcome true_positive -m '...'")
    print("\n".join(lines))
    return 0


def run_step(args: argparse.Namespace) -> int:
    from collector.alerts.client import Client, alert_path

    action = "ack" if args.action == "ack" else "resolve"
    body: dict[str, str] = {"note": args.note}
    if action == "resolve":
        body["outcome"] = args.outcome
    rec = Client.from_args(args).request("POST", alert_path(args.id, action), body=body)
    who = rec["acked_by"] if action == "ack" else rec["resolved_by"]
    print(f"{rec['id']}: {rec['status']} by {who}")
    return 0
