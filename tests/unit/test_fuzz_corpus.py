"""Every input of the committed fuzz corpus still passes its check (a crash found once by
``make fuzz`` stays fixed). The checks are the fuzz targets' own, without atheris."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import atheris

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"


def _checks():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("fuzz_checks", FUZZ / "checks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _inputs(target: str) -> list[bytes]:
    inputs = [p.read_bytes() for p in sorted((FUZZ / "corpus" / target).iterdir())]
    assert len(inputs) >= 10
    return inputs


def test_query_corpus_replays_clean() -> None:
    checks = _checks()
    for data in _inputs("query_parser"):  # decoded as the target decodes them
        checks.check_query(atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(400))


def test_validator_corpus_replays_clean() -> None:
    checks = _checks()
    for data in _inputs("validator"):
        checks.check_line(data)
