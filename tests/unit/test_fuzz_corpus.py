"""Every input of the committed fuzz corpus still passes its target (a crash found once
by ``make fuzz`` stays fixed)."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "fuzz" / "corpus"


@pytest.mark.parametrize("target", ["query_parser", "validator"])
def test_corpus_replays_clean(target: str) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"fuzz_{target}", CORPUS.parent / f"{target}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    inputs = sorted((CORPUS / target).iterdir())
    assert len(inputs) >= 10
    for path in inputs:
        module.test_one_input(path.read_bytes())
