"""Coverage-guided fuzz target: the collector's per-line event validator.

Any bytes must be accepted as an event or refused with ``Invalid`` (the reason the
agent gets back). Run through ``make fuzz``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from collector.validate import Invalid, Limits, parse_line

LIMITS = Limits(max_event_bytes=256 * 1024, max_depth=12, max_future_skew=300.0,
                max_age=30 * 86400.0)


def test_one_input(data: bytes) -> None:
    try:
        event = parse_line(data, LIMITS)
    except Invalid:
        return
    if not isinstance(event, dict) or not isinstance(event.get("event"), dict):
        raise AssertionError(f"accepted a line that is not an event: {data[:200]!r}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
