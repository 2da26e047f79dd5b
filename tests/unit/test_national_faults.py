"""Fault settings of the mock center (parsed from the CLI or the admin endpoint)."""

from __future__ import annotations

import time

import pytest

from national_center.faults import Faults, parse_cli


def test_cli_parsing_and_update():
    f = Faults(seed=3)
    f.update(parse_cli(["latency=200ms", "error_rate=0.25", "windows=10s:30s,2m:1m",
                        "reject-signatures=true", "slow_tls=1s"]))
    assert f.latency == 0.2 and f.error_rate == 0.25 and f.slow_tls == 1.0
    assert f.reject_signatures is True
    assert [round(e - s) for s, e in f.windows] == [30, 60]
    assert f.unavailable() is None  # the first window starts in 10 s


def test_unavailable_for_and_reset():
    f = Faults()
    f.update({"unavailable_for": 5})
    left = f.unavailable()
    assert left is not None and 4 < left <= 5
    assert f.unavailable(time.time() + 6) is None
    f.reset()
    assert f.windows == [] and f.unavailable() is None


@pytest.mark.parametrize("bad", [{"error_rate": 2}, {"nope": 1}, {"latency": "soon"},
                                 {"windows": "x"}])
def test_bad_values_name_the_fault(bad):
    with pytest.raises(ValueError) as exc:
        Faults().update(bad)
    assert next(iter(bad)) in str(exc.value)


def test_cli_needs_name_value():
    with pytest.raises(ValueError):
        parse_cli(["latency"])


def test_rates_are_reproducible_with_a_seed():
    a, b = Faults(seed=7), Faults(seed=7)
    assert [a.chance(0.5) for _ in range(20)] == [b.chance(0.5) for _ in range(20)]
