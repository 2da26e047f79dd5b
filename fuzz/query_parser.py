"""Coverage-guided fuzz target: the query language parser and both translators (make fuzz)."""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
with atheris.instrument_imports():
    from checks import check_query


def test_one_input(data: bytes) -> None:
    check_query(atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(400))


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
