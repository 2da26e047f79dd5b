"""`canhgac coverage [--unit U] [--format table|json]`.

Reads ``GET /v1/coverage`` from the running collector (see
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
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    add_connection_args(p)
    p.set_defaults(func=run)


def use_colour(mode: str, stream=sys.stdout) -> bool:  # type: ignore[no-untyped-def]
    if mode != "auto":
        return mode == "always"
    return stream.isatty() and not os.environ.get("NO_COLOR")


def run(args: argparse.Namespace) -> int:
    import orjson

    from canhgac.errors import UserError
    from collector.alerts.client import Client
    from collector.coverage.render import render

    if args.unit:
        args.unit = nfc(args.unit)  # the same unit however its diacritics were typed
    data = Client.from_args(args).request("GET", "/v1/coverage", {"unit": args.unit})
    if args.unit and not data["systems"]:
        raise UserError(f"no systems of unit {args.unit!r} (check the exact name, diacritics "
                        "included: canhgac inventory show)")
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(render(data, colour=use_colour(args.color)))
    return 0
