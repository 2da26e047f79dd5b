"""`canhgac coverage [--unit U] [--at DAY] [--system S [--since 1y]] [--format table|json]`.

Reads ``GET /v1/coverage`` (live, or ``?at=DAY`` from history) and
``GET /v1/coverage/history`` (``--since``) from the running collector (see
collector/alerts/client.py for why the API and not the state files).
"""

from __future__ import annotations

import argparse
import os
import sys

from canhgac.text import nfc


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from collector.alerts.client import add_connection_args

    p = sub.add_parser("coverage", help="4-layer coverage and level obligations per system")
    p.add_argument("--unit", default=None, help="only this owner unit (exact name)")
    p.add_argument("--system", default=None, help="only this system (inventory id)")
    p.add_argument("--at", default=None, metavar="DAY",
                   help="as history knew it at the end of DAY (YYYY-MM-DD or dd/mm/yyyy)")
    p.add_argument("--since", default=None, metavar="PERIOD",
                   help="with --system: its trend since PERIOD (30d, 12w, 1y) or a date")
    p.add_argument("--every", choices=["change", "day"], default="change",
                   help="with --since: a line per change (default) or per daily snapshot")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    p.add_argument("--lang", choices=["vi", "en"], default=None,
                   help="language of reasons and flags (default: $CANHGAC_LANG, else the "
                        "locale, else vi)")
    add_connection_args(p)
    p.set_defaults(func=run)


def use_colour(mode: str, stream=sys.stdout) -> bool:  # type: ignore[no-untyped-def]
    if mode != "auto":
        return mode == "always"
    return stream.isatty() and not os.environ.get("NO_COLOR")


def run(args: argparse.Namespace) -> int:
    import orjson

    from canhgac.errors import UserError
    from canhgac.message import EMPTY, Message
    from collector.alerts.client import Client
    from collector.coverage.render import render, render_trend
    from collector.inventory import parse_date

    if args.unit:
        args.unit = nfc(args.unit)  # the same unit however its diacritics were typed
    if args.since is not None and not args.system:
        raise UserError(Message("--since shows one system's trend: add --system ID",
                                "--since cho xu hướng của một hệ thống: thêm --system ID"))
    if args.since is not None and args.at is not None:
        raise UserError(Message("--at and --since do not go together (--at: one day, all "
                                "systems; --since: one system over time)",
                                "không dùng --at cùng --since (--at: một ngày, mọi hệ thống; "
                                "--since: một hệ thống theo thời gian)"))
    if args.at is not None:
        try:
            parse_date(args.at)
        except ValueError:
            raise UserError(Message("--at: not a date: {at!r} (use YYYY-MM-DD or dd/mm/yyyy, "
                                    "e.g. 2025-06-30 or 30/06/2025)",
                                    "--at: không phải ngày: {at!r} (viết YYYY-MM-DD hoặc "
                                    "dd/mm/yyyy, ví dụ 2025-06-30 hoặc 30/06/2025)",
                                    at=args.at)) from None
    client = Client.from_args(args)
    if args.since is not None:
        data = client.request("GET", "/v1/coverage/history",
                              {"system": args.system, "since": args.since, "every": args.every})
        if args.format == "json":
            sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        else:
            print(render_trend(data, colour=use_colour(args.color)))
        return 0
    data = client.request("GET", "/v1/coverage", {"unit": args.unit, "at": args.at,
                                                  "system": args.system})
    if args.unit and not data["systems"]:
        raise UserError(Message("no systems of unit {unit!r} (check the exact name, "
                                "diacritics included: canhgac inventory show)",
                                "đơn vị {unit!r} không có hệ thống nào (kiểm tra đúng tên, cả "
                                "dấu: canhgac inventory show)", unit=args.unit))
    if args.system and not data["systems"]:
        when = Message(" on {at}", " vào ngày {at}", at=args.at) if args.at else EMPTY
        raise UserError(Message("unknown system {sid!r}{when} (see canhgac inventory show)",
                                "không có hệ thống {sid!r}{when} (xem canhgac inventory show)",
                                sid=args.system, when=when))
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        from canhgac.lang import resolve_lang

        try:
            lang = resolve_lang(args.lang)
        except ValueError as exc:  # a bad CANHGAC_LANG
            raise UserError(str(exc)) from None
        print(render(data, colour=use_colour(args.color), lang=lang))
        if args.at and not data["systems"]:
            start = data.get("history_from") or "—"
            print(f"(không có ảnh chụp đến ngày {args.at} / no snapshot on or before {args.at}; "
                  f"lịch sử bắt đầu / history starts: {start})")
    return 0
