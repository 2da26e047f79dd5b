"""`canhgac national-mock run|received`: the mock national center from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from canhgac.errors import UserError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "national-mock",
        help="mock national monitoring center (NCSC) for tests, demos and rehearsal",
        description="A stand-in for the national center: signed reports in, STIX indicators out.",
    )
    cmds = p.add_subparsers(dest="national_cmd", metavar="SUBCOMMAND", required=True)

    run = cmds.add_parser("run", help="serve the mock center over TLS")
    run.add_argument("--listen", default="127.0.0.1:9443", help="HOST:PORT (default %(default)s)")
    run.add_argument("--cert", required=True, type=Path, help="server certificate (PEM)")
    run.add_argument("--key", required=True, type=Path, help="server private key (PEM)")
    run.add_argument("--keys", required=True, type=Path, help="province keys file (YAML)")
    run.add_argument("--indicators", type=Path, help="indicators: YAML list or STIX bundle JSON")
    run.add_argument("--db", type=Path, default=Path(".canhgac/national/received.db"))
    run.add_argument("--skew", default="300s", help="allowed clock skew (default %(default)s)")
    run.add_argument("--admin-token-file", type=Path,
                     help="file holding the admin bearer token (default: admin from loopback only)")
    run.add_argument("--fault", action="append", default=[], metavar="NAME=VALUE",
                     help="inject a fault, e.g. latency=200ms, error_rate=0.1, drop_rate=0.05, "
                     "unavailable_for=30s, windows=10s:30s, slow_tls=2s, reject_signatures=true")
    run.set_defaults(func=run_cmd)

    rec = cmds.add_parser("received", help="show what the mock center has received")
    rec.add_argument("--db", type=Path, default=Path(".canhgac/national/received.db"))
    rec.add_argument("--format", choices=["table", "json", "ndjson"], default="table")
    rec.add_argument("--kind", help="only this event.kind (alert, metric, ...)")
    rec.add_argument("--limit", type=int, default=50,
                     help="show the last N rows (table/json; 0 = all)")
    rec.set_defaults(func=received_cmd)


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise UserError(f"--listen: expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def run_cmd(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from canhgac.timeutil import parse_duration
    from national_center.faults import Faults, parse_cli
    from national_center.keys import load_key_systems, load_keys
    from national_center.server import CenterSettings, MockCenter

    host, port = _listen(args.listen)
    faults = Faults()
    try:
        faults.update(parse_cli(args.fault))
        skew = parse_duration(args.skew)
    except ValueError as exc:
        raise UserError(f"--fault/--skew: {exc}") from None
    for path, what in ((args.cert, "--cert"), (args.key, "--key")):
        if not path.is_file():
            raise UserError(f"{what}: {path}: file not found")
    token = ""
    if args.admin_token_file:
        try:
            token = args.admin_token_file.read_text().strip()
        except OSError as exc:
            raise UserError(f"--admin-token-file: {exc.strerror}") from None
    keys = load_keys(args.keys)
    systems = load_key_systems(args.keys)
    if not keys:
        raise UserError(f"{args.keys}: keys: no province keys defined")
    center = MockCenter(CenterSettings(
        keys=keys, db=args.db, cert=args.cert, key=args.key, host=host, port=port,
        indicators=args.indicators, skew_seconds=skew, admin_token=token, faults=faults,
        systems=systems,
    ))
    try:
        await center.start()
    except OSError as exc:
        await center.close()
        raise UserError(f"--listen {args.listen}: {exc.strerror or exc}") from None
    logging.getLogger("national_center").info(
        "keys: %d province(s); indicators: %d; db: %s", len(keys), len(center.indicators), args.db)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await center.close()
    return 0


def received_cmd(args: argparse.Namespace) -> int:
    import orjson

    from national_center.storage import Storage

    if not args.db.exists():
        raise UserError(f"--db: {args.db}: no such database (has the mock run yet?)")
    st = Storage(args.db)
    try:
        if args.format == "ndjson":
            for row in st.reports(kind=args.kind):
                sys.stdout.buffer.write(orjson.dumps(row["doc"]) + b"\n")
            return 0
        if args.limit > 0:
            total, shown = st.recent(args.limit, args.kind)
        else:
            shown = st.reports(kind=args.kind)
            total = len(shown)
        counters = st.counters()
    finally:
        st.close()
    if args.format == "json":
        print(orjson.dumps({"total": total, "counters": counters, "reports": shown},
                           option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"{total} report(s) stored; counters: "
          + ", ".join(f"{k}={v}" for k, v in sorted(counters.items())))
    if not shown:
        return 0
    head = ("RECEIVED", "PROVINCE KEY", "KIND", "DATASET", "SYSTEM", "SEV", "SUMMARY")
    table = [head]
    from canhgac.timeutil import from_epoch

    for r in shown:
        doc = r["doc"]
        rule = doc.get("rule", {}) if isinstance(doc.get("rule"), dict) else {}
        text = rule.get("name") or doc.get("message") or r["event_id"]
        table.append((from_epoch(r["received"])[:19], r["key_id"], r["kind"], r["dataset"],
                      r["system_id"] or "-", str(r["severity"] or "-"), str(text)[:60]))
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0
