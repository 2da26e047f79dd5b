"""The `canhgac` command.

Subcommands are not known to the kernel: each package declares its own in the
``canhgac.commands`` entry-point group (pyproject.toml), as ``name = module:register``.
Only the module of the subcommand being run is imported, so ``canhgac agent run``
loads the agent's modules and nothing of the collector (the agent's memory
footprint depends on it); ``canhgac --help`` imports them all to list them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from canhgac import __version__
from canhgac.errors import UserError

GROUP = "canhgac.commands"
# The order shown in --help; commands not listed here follow alphabetically.
HELP_ORDER: tuple[str, ...] = (
    "up", "agent", "collector", "inventory", "coverage", "report", "alerts", "notify", "rules",
    "national-mock", "check", "query", "version",
)

EPILOG = """\
Bắt đầu nhanh / quick start:
  canhgac up                                  start collector + agent locally (TLS, embedded store)
  canhgac query 'event.dataset:host.metrics' --since 15m
  canhgac <command> --help                    help for one command
"""

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def discover() -> dict[str, EntryPoint]:
    """Subcommand name -> entry point, in help order."""
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    rank = {name: i for i, name in enumerate(HELP_ORDER)}
    return dict(sorted(found.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def _global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", default="text", choices=["text", "json"])


def _command_named(argv: Sequence[str]) -> str | None:
    """The subcommand in ``argv`` (after the global options), without importing anything."""
    pre = argparse.ArgumentParser(add_help=False)
    _global_options(pre)
    try:
        _, rest = pre.parse_known_args(argv)
    except SystemExit:  # a bad global option: the full parser will say so
        return None
    return rest[0] if rest and not rest[0].startswith("-") else None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that subcommand's module is imported."""
    parser = argparse.ArgumentParser(
        prog="canhgac",
        description="canhgac (canh gác: to keep watch) — security monitoring for the "
        "4-layer protection model / giám sát an toàn thông tin theo mô hình 4 lớp.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"canhgac {__version__}")
    _global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = discover()
    if only is not None and only in commands:
        commands = {only: commands[only]}
    for name, ep in commands.items():
        try:
            register: Register = ep.load()
        except ModuleNotFoundError as exc:
            # A Debian package carries only its part's libraries (the agent has no
            # Elasticsearch client or Sigma): its commands work, the others are absent.
            if only == name:
                raise UserError(f"command {name!r} is not available in this installation "
                                f"({exc.name} is not installed; the canhgac-collector package "
                                "has every command)") from None
            continue
        register(sub)
    return parser


def run_command(func: Callable[[argparse.Namespace], Any], args: argparse.Namespace) -> int:
    result = func(args)
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    return int(result or 0)


def error_lang(argv: Sequence[str]) -> str:
    """The language of an error: the command's ``--lang`` if it has one, else as
    canhgac.lang decides. Never fails — a bad language value is itself reported."""
    from canhgac.lang import DEFAULT_LANG, resolve_lang

    explicit = None
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            explicit = argv[i + 1]
        elif arg.startswith("--lang="):
            explicit = arg.partition("=")[2]
    for choice in (explicit, None):
        try:
            return resolve_lang(choice)
        except ValueError:
            continue
    return DEFAULT_LANG


def _report(exc: UserError, argv: Sequence[str]) -> int:
    lang = error_lang(argv)
    text = exc.render(lang)
    # "lỗi" only before a text that is Vietnamese too (some errors exist in English only)
    label = "lỗi" if lang == "vi" and text != str(exc) else "error"
    print(f"canhgac: {label}: {text}", file=sys.stderr)
    return exc.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    from canhgac import logs

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(_command_named(argv))
    except UserError as exc:
        return _report(exc, argv)
    args = parser.parse_args(argv)
    logs.setup(args.log_level, args.log_format)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return run_command(func, args)
    except UserError as exc:
        return _report(exc, argv)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`canhgac ... | head`): not an error of ours. Point stdout
        # at /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a killed writer


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
