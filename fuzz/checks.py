"""What each fuzz target asserts, free of atheris so the unit suite can replay the corpus."""

from __future__ import annotations

from collector.query.errors import QueryError
from collector.query.parser import parse
from collector.query.to_es import to_es
from collector.query.to_sql import to_sql
from collector.validate import Invalid, Limits, parse_line

LIMITS = Limits(max_event_bytes=256 * 1024, max_depth=12, max_future_skew=300.0,
                max_age=30 * 86400.0)


def check_query(text: str) -> None:
    """Any text parses or raises QueryError with a 1-based position; parsed, it translates."""
    try:
        node = parse(text)
    except QueryError as exc:
        if exc.position < 1:
            raise AssertionError(f"position {exc.position} for {text!r}") from None
        return
    to_sql(node)
    to_es(node)


def check_line(data: bytes) -> None:
    """Any bytes are an event or an ``Invalid`` (the reason the agent gets back)."""
    try:
        event = parse_line(data, LIMITS)
    except Invalid:
        return
    if not isinstance(event, dict) or not isinstance(event.get("event"), dict):
        raise AssertionError(f"accepted a line that is not an event: {data[:200]!r}")
