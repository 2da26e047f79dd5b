"""Coverage-guided fuzz target: the collector's per-line event validator (make fuzz)."""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
with atheris.instrument_imports():
    from checks import check_line


def test_one_input(data: bytes) -> None:
    check_line(data)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
