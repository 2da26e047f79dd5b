"""Layer 4 availability over a period, from minute samples (collector/national/availability.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.national.availability import RETENTION, AvailabilityLog

T0 = 1_750_000_020.0  # a minute boundary


def test_share_of_observed_minutes_up(tmp_path: Path) -> None:
    log = AvailabilityLog(tmp_path / "a.db")
    for m in range(10):
        log.record(m not in (3, 4), T0 + 60 * m)
    got = log.over(T0, T0 + 60 * 9)
    assert (got.up_minutes, got.observed_minutes, got.period_minutes) == (8, 10, 10)
    assert got.ratio == pytest.approx(0.8) and got.observed == 1.0
    # minutes the collector was not running are unknown, not down
    wider = log.over(T0 - 60 * 10, T0 + 60 * 9)
    assert wider.ratio == pytest.approx(0.8) and wider.observed == pytest.approx(0.5)
    assert log.over(T0 + 3600, T0 + 7200).ratio is None


def test_a_down_sample_wins_its_minute_and_survives_reopen(tmp_path: Path) -> None:
    log = AvailabilityLog(tmp_path / "a.db")
    log.record(True, T0 + 1)
    log.record(False, T0 + 30)
    log.record(True, T0 + 59)
    log.close()
    again = AvailabilityLog(tmp_path / "a.db")
    assert again.over(T0, T0 + 59).ratio == 0.0


def test_old_minutes_are_pruned(tmp_path: Path) -> None:
    log = AvailabilityLog(tmp_path / "a.db")
    log.record(True, T0)
    log.record(True, T0 + RETENTION + 7200)  # prunes what is older than the retention
    assert log.over(T0 - 60, T0 + 60).observed_minutes == 0
