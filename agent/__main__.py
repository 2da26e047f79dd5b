"""``python -m agent run|enroll|status``: the agent without the rest of the CLI.

Same commands as ``canhgac agent ...``, but only the agent's modules are
imported (not the collector's command modules), which keeps the resident
memory of the long-running agent process small. systemd units use this form.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from agent import cli
    from canhgac import logs
    from canhgac.cli import run_command
    from canhgac.errors import UserError

    holder = argparse.ArgumentParser(prog="python -m")
    cli.register(holder.add_subparsers())
    parser: argparse.ArgumentParser = holder._subparsers._group_actions[0].choices["agent"]  # type: ignore[union-attr]
    parser.prog = "python -m agent"
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", default="text", choices=["text", "json"])
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logs.setup(args.log_level, args.log_format)
    try:
        return run_command(args.func, args)
    except UserError as exc:
        print(f"canhgac: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
