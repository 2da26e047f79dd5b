"""Run one probe alone from the command line, events as NDJSON on stdout.

For debugging a probe on a host, tests and benchmarks: ``python -m
agent.probes.<probe> --config '{"...": ...}'``. Each probe supplies its own
``runner(config, state_dir)`` coroutine; the argument handling is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

Runner = Callable[[dict[str, Any], str], Awaitable[None]]


def standalone_main(prog: str, description: str, state_prefix: str, runner: Runner,
                    argv: list[str] | None = None) -> None:  # pragma: no cover - thin CLI
    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("--config", default="{}", help="probe config as JSON")
    ap.add_argument("--state-dir", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    state = args.state_dir or tempfile.mkdtemp(prefix=state_prefix)
    asyncio.run(runner(json.loads(args.config), state))
