"""`canhgac notify test|status`: try one channel, and see what the outbox holds.

``test`` sends one test message straight through a channel (not through the
outbox: it is to see now what the receiver says) and prints what happened.
``status`` reads ``<state_dir>/notify.db`` read-only, so it works whether the
collector runs or not.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sqlite3
import sys
import time
import uuid
from pathlib import Path
from typing import Any

LOCAL = dt.timezone(dt.timedelta(hours=7))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("notify", help="notification channels: send a test, show delivery status")
    nsub = p.add_subparsers(dest="notify_command", metavar="ACTION", required=True)
    t = nsub.add_parser("test", help="send a test message through one channel and say what happened")
    t.add_argument("--config", "-c", help="collector.yaml (default: the usual search)")
    t.add_argument("--channel", required=True, help="channel name under notifications.channels")
    t.add_argument("--to", action="append", default=[],
                   help="email address for an email channel (repeatable; default: its 'to')")
    t.add_argument("--language", choices=["vi", "en", "vi+en"], default="vi+en")
    t.set_defaults(func=run_test)
    s = nsub.add_parser("status", help="per channel: pending, delivered, failures, last error")
    s.add_argument("--config", "-c", help="collector.yaml (to find the state directory)")
    s.add_argument("--state-dir", help="collector state directory")
    s.add_argument("--format", choices=["table", "json"], default="table")
    s.set_defaults(func=run_status)


def run_test(args: argparse.Namespace) -> int:
    from canhgac.config import did_you_mean
    from canhgac.errors import UserError
    from collector.config import load
    from collector.notify.channels import SendError
    from collector.notify.channels.build import build_channel
    from collector.notify.config import parse_notify_config
    from collector.notify.render import render_test

    config, source = load(args.config)
    notif = parse_notify_config(config.notifications, source)
    if args.channel not in notif.channels:
        known = ", ".join(notif.channels) or "none configured"
        raise UserError(f"{source}: no channel {args.channel!r}{did_you_mean(args.channel, notif.channels)}"
                        f" under notifications.channels (channels: {known})")
    channel = build_channel(args.channel, notif.channels[args.channel])
    subject, text = render_test(args.channel, args.language)
    payload: dict[str, Any] = {
        "kind": "test", "key": f"test:{args.channel}:{uuid.uuid4().hex}", "route": "",
        "channel": args.channel, "language": args.language, "subject": subject, "text": text,
        "alert": None, "recipients": [{"name": a, "email": a} for a in args.to],
    }

    async def send() -> str:
        try:
            return await channel.send(payload)
        finally:
            await channel.close()

    started = time.monotonic()
    try:
        detail = asyncio.run(send())
    except SendError as exc:
        how = "refused for good, would not be retried" if exc.permanent else "would be retried"
        print(f"FAILED: {channel.kind} channel {args.channel!r}: {exc} ({how})", file=sys.stderr)
        return 1
    took = time.monotonic() - started
    print(f"sent: {channel.kind} channel {args.channel!r}: {detail} in {took:.2f} s "
          f"(key {payload['key']})")
    return 0


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, LOCAL).strftime("%d/%m %H:%M:%S")


def _age(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    s = max(0, int(now - ts))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _read(db_path: Path) -> tuple[list[Any], dict[str, int]]:
    from collector.notify.outbox import ChannelStatus

    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        pend = {r[0]: r[1:] for r in db.execute(
            "SELECT channel, COUNT(*), MIN(created), SUM(attempts>0) FROM outbox"
            " WHERE status='pending' GROUP BY channel")}
        stats = {r[0]: r[1:] for r in db.execute(
            "SELECT channel, delivered, failures, dead, last_success, last_error, last_error_at"
            " FROM channel_stats")}
        held = db.execute("SELECT COUNT(*) FROM routed WHERE held=1").fetchone()[0]
        esc = db.execute("SELECT COUNT(*) FROM escalations").fetchone()[0]
    finally:
        db.close()
    out = []
    for ch in sorted(set(pend) | set(stats)):
        n, oldest, retrying = pend.get(ch, (0, None, 0))
        st = stats.get(ch, (0, 0, 0, None, None, None))
        out.append(ChannelStatus(ch, n, oldest, int(retrying or 0), *st))
    return out, {"held_for_digest": int(held), "escalations_scheduled": int(esc)}


def run_status(args: argparse.Namespace) -> int:
    import dataclasses

    import orjson

    from canhgac.table import render
    from collector.cli import state_dir_of
    from collector.config import load
    from collector.notify import OUTBOX_FILE
    from collector.notify.config import parse_notify_config

    state = state_dir_of(args)
    path = state / OUTBOX_FILE
    kinds: dict[str, str] = {}
    if not args.state_dir:
        config, source = load(args.config)
        kinds = {n: type(c).__name__.removesuffix("Channel").lower()
                 for n, c in parse_notify_config(config.notifications, source).channels.items()}
    if not path.exists():
        print(f"no notifications yet ({path} does not exist)"
              + ("" if kinds else "; no channel is configured under notifications:"))
        return 0
    channels, extra = _read(path)
    if args.format == "json":
        data = {"channels": [dataclasses.asdict(c) for c in channels], **extra}
        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    now = time.time()
    rows: list[list[object]] = [["CHANNEL", "TYPE", "PENDING", "OLDEST", "RETRYING", "DELIVERED",
                                 "FAILURES", "DEAD", "LAST OK (UTC+7)", "LAST ERROR"]]
    seen = {c.channel for c in channels}
    for c in channels:
        err = f"{_when(c.last_error_at)} {c.last_error}" if c.last_error else "-"
        rows.append([c.channel, kinds.get(c.channel, "?"), c.pending, _age(c.oldest_pending, now),
                     c.retrying, c.delivered, c.failures, c.dead, _when(c.last_success), err])
    for name, kind in kinds.items():
        if name not in seen:
            rows.append([name, kind, 0, "-", 0, 0, 0, 0, "-", "-"])
    print(render(rows, [20, 12, 0, 0, 0, 0, 0, 0, 0, 60]))
    print(f"held for a storm digest: {extra['held_for_digest']}; "
          f"escalations scheduled: {extra['escalations_scheduled']}")
    return 0
