"""`canhgac … | head`: a reader that goes away is not an error of ours."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_closed_pipe_exits_quietly() -> None:
    reader, writer = os.pipe()
    os.close(reader)  # nobody will read: the first write raises EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "canhgac.cli", "inventory", "show",
             str(ROOT / "configs" / "inventory.yaml")],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=writer,
            stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(writer)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 141
