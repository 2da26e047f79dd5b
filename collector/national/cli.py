"""`canhgac check national`: is layer 4 connected? A pass/fail table, exit 0 or 1."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check", help="check connectivity of external links (national center)")
    checks = p.add_subparsers(dest="check_target", metavar="TARGET", required=True)
    n = checks.add_parser(
        "national",
        help="DNS, TCP, TLS, ping RTT, clock skew and a signed no-op against the national center",
    )
    n.add_argument("--config", type=Path, default=None,
                   help="collector.yaml holding the national.link section (default: "
                   "$CANHGAC_CONFIG, ./collector.yaml, ./.canhgac/collector.yaml)")
    n.add_argument("--format", choices=["table", "json"], default="table")
    n.set_defaults(func=run)


def run(args: argparse.Namespace) -> Any:
    """Load the config synchronously (clear errors), then hand back the check coroutine."""
    from canhgac.errors import UserError
    from collector.config import load as load_collector
    from collector.config import locate
    from collector.national.config import load as load_national

    path = locate(args.config)
    if path is None:
        raise UserError("no collector.yaml found (./collector.yaml, ./.canhgac/collector.yaml, "
                        "$CANHGAC_CONFIG): pass --config PATH")
    cfg, source = load_collector(path)
    national = load_national(cfg.national, source)
    link = national.link
    if not link.configured:
        raise UserError(f"{source}: national.link.url: not set, nothing to check")
    return _check(args, national, source)


async def _check(args: argparse.Namespace, national: Any, source: str) -> int:
    import orjson

    from collector.national.check import run_check

    link = national.link
    rep = await run_check(link, link.secret_bytes(source),
                          max_clock_skew=national.check.max_clock_skew,
                          cert_min_days=national.check.cert_min_days)
    if args.format == "json":
        print(orjson.dumps({
            "ok": rep.ok, "url": link.url, "key_id": link.key_id, "rtt_seconds": rep.rtt,
            "clock_skew_seconds": rep.skew, "cert_days_left": rep.cert_days_left,
            "steps": [{"name": s.name, "ok": s.ok, "seconds": round(s.seconds, 6),
                       "detail": s.detail} for s in rep.steps],
        }, option=orjson.OPT_INDENT_2).decode())
    else:
        print(f"national center {link.url} (key {link.key_id})")
        print(rep.table())
    return 0 if rep.ok else 1
