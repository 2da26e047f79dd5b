"""The `canhgac` command.

Each area registers its own subcommands: the modules named in ``COMMANDS``
expose ``register(subparsers)``. Heavy imports stay inside the command
functions so ``canhgac --help`` is instant.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Sequence

from canhgac import __version__
from canhgac.errors import UserError

# Order is the order shown in --help.
COMMANDS: tuple[str, ...] = (
    "canhgac.commands.up",
    "agent.cli",
    "collector.cli",
    "collector.inventory_cli",
    "collector.coverage.cli",
    "collector.alerts.cli",
    "collector.detect.cli",
    "national_center.cli",
    "collector.national.cli",
    "canhgac.commands.query",
    "canhgac.commands.version",
)

EPILOG = """\
Bắt đầu nhanh / quick start:
  canhgac up                                  start collector + agent locally (TLS, embedded store)
  canhgac query 'event.dataset:host.metrics' --since 15m
  canhgac <command> --help                    help for one command
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="canhgac",
        description="canhgac (canh gác: to keep watch) — security monitoring for the "
        "4-layer protection model / giám sát an toàn thông tin theo mô hình 4 lớp.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"canhgac {__version__}")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", default="text", choices=["text", "json"])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency: let it surface
                raise
            continue  # a command area not part of this build
        module.register(sub)
    return parser


def run_command(func, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    result = func(args)
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    return int(result or 0)


def main(argv: Sequence[str] | None = None) -> int:
    from canhgac import logs

    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(args.log_level, args.log_format)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return run_command(func, args)
    except UserError as exc:
        print(f"canhgac: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
