"""`canhgac alerts list|show|ack|resolve` — the operator's side of layer 1."""

from __future__ import annotations

import argparse
import datetime as dt
import sys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from collector.alerts.client import add_connection_args

    p = sub.add_parser("alerts", help="list, show, acknowledge and resolve alerts")
    asub = p.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    ls = asub.add_parser("list", help="recent alerts, newest first")
    ls.add_argument("--status", choices=["open", "acknowledged", "resolved"], default=None)
    ls.add_argument("--system", default=None)
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--format", choices=["table", "json"], default="table")
    add_connection_args(ls)
    ls.set_defaults(func=run_list)
    for name, helptext in (("show", "one alert with its event"),
                           ("ack", "acknowledge: you are on it (stops the layer-1 SLA clock)"),
                           ("resolve", "resolve, with a note on what was done")):
        a = asub.add_parser(name, help=helptext)
        a.add_argument("id", help="alert id (event.id)")
        if name != "show":
            a.add_argument("--note", "-m", default="", help="what you saw / what you did")
        add_connection_args(a)
        a.set_defaults(func=run_step if name != "show" else run_show, action=name)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.timezone(dt.timedelta(hours=7))).strftime(
        "%m-%d %H:%M")


def _print_json(data: object) -> None:
    import orjson

    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")


def run_list(args: argparse.Namespace) -> int:
    from collector.alerts.client import Client

    data = Client.from_args(args).request(
        "GET", "/v1/alerts", {"status": args.status, "system": args.system, "limit": args.limit})
    if args.format == "json":
        _print_json(data)
        return 0
    rows = data["alerts"]
    print(f"{'created':<11} {'status':<12} {'system':<14} {'title':<28} id")
    for a in rows:
        title = a["title"] if len(a["title"]) <= 28 else a["title"][:27] + "…"
        system = a["system_id"][:14]
        print(f"{_when(a['created']):<11} {a['status']:<12} {system:<14} {title:<28} {a['id']}")
    print(f"{len(rows)} alert(s)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from collector.alerts.client import Client, alert_path

    _print_json(Client.from_args(args).request("GET", alert_path(args.id)))
    return 0


def run_step(args: argparse.Namespace) -> int:
    from collector.alerts.client import Client, alert_path

    action = "ack" if args.action == "ack" else "resolve"
    rec = Client.from_args(args).request("POST", alert_path(args.id, action), body={"note": args.note})
    who = rec["acked_by"] if action == "ack" else rec["resolved_by"]
    print(f"{rec['id']}: {rec['status']} by {who}")
    return 0
