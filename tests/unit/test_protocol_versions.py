"""Protocol and release versions (canhgac/protocol.py, collector/fleet.py)."""

from __future__ import annotations

from canhgac.protocol import minor_of, parse
from collector.fleet import behind


def test_protocol_header() -> None:
    assert parse(None) == 1  # agents before 0.2.0 send none
    assert parse(" 1 ") == 1 and parse("2") == 2
    assert parse("one") is None and parse("99999999") is None and parse("-1") is None


def test_release_skew() -> None:
    assert minor_of("0.2.0") == (0, 2) and minor_of("1.10.3rc1") == (1, 10)
    assert minor_of("") is None and minor_of("dev") is None
    assert behind("0.1.0", "0.2.0") and behind("0.9.9", "1.0.0")
    assert not behind("0.2.5", "0.2.0") and not behind("0.3.0", "0.2.0")
    assert not behind("", "0.2.0") and not behind("garbage", "0.2.0")
