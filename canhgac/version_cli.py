"""`canhgac version`."""

from __future__ import annotations

import argparse
import platform

from canhgac import __version__


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("version", help="print version information")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(f"canhgac {__version__} (Python {platform.python_version()}, {platform.system()})")
    return 0
