"""What to do with an Elasticsearch answer: one pure rule table for requests and bulk items.

Every status the output sees — the HTTP status of a whole bulk request, or the
status of one item inside a bulk response — goes through :func:`classify`, and
nothing else in the output decides on a status (Vector's ``retry.rs`` is the
model). The service carries the action out:

========================  =======================================  ===========================
answer                    bulk item                                whole request
========================  =======================================  ===========================
2xx                       ``DELIVERED``                            ``DELIVERED`` (read items)
409                       ``DUPLICATE`` (the ``_id`` exists)       ``DEAD_LETTER``
429, 5xx, 0/missing       ``RETRY`` (that item alone)              ``RETRY`` (whole batch)
401, 403, 404, 408        ``DEAD_LETTER``                          ``RETRY`` (credentials or
                                                                   proxy: keep the backlog)
413                       ``DEAD_LETTER`` (too large on its own)   ``SPLIT`` (halves, again)
other 4xx                 ``DEAD_LETTER`` (with the reason)        ``DEAD_LETTER`` (every line)
no answer                 —                                        ``RETRY`` (connection
(connection, timeout)                                              refused, timeout, reset)
========================  =======================================  ===========================

One error type overrides the status: ``cluster_block_exception`` (an index or
cluster write block, e.g. disk flood stage or maintenance) is ``RETRY`` at any
status — the block is lifted by an operator, and dead-lettering every event
meanwhile would empty the data streams into the dead-letter stream.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from elasticsearch import ApiError


class Action(enum.Enum):
    DELIVERED = "delivered"  # written
    DUPLICATE = "duplicate"  # already there (a retry of a write that succeeded): delivered
    RETRY = "retry"  # transient: send again later, with backoff
    DEAD_LETTER = "dead_letter"  # permanent: never deliverable as is, keep it with the reason
    SPLIT = "split"  # the request is too large: send its halves


# Error types that make any status transient.
RETRY_ERROR_TYPES = frozenset({"cluster_block_exception"})
# Whole-request statuses that say nothing about the batch itself: auth (a key being
# rotated), not found (a proxy route), request timeout (a proxy): keep the backlog.
_WHOLE_RETRY = frozenset({401, 403, 404, 408})


def classify(status: int | None, error_type: str | None = None, *,
             whole_request: bool = False) -> Action:
    """The action for ``status`` (None: no HTTP answer at all) of a bulk item or request."""
    if error_type in RETRY_ERROR_TYPES:
        return Action.RETRY
    if status is None or status == 0:
        # no answer (connection refused/reset, timeout), or an item without a status
        return Action.RETRY
    if 200 <= status < 300:
        return Action.DELIVERED
    if status == 429 or status >= 500:
        return Action.RETRY
    if whole_request:
        if status == 413:
            return Action.SPLIT
        if status in _WHOLE_RETRY:
            return Action.RETRY
        return Action.DEAD_LETTER
    if status == 409:
        return Action.DUPLICATE
    return Action.DEAD_LETTER


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """A server's ``Retry-After`` in seconds (the date form is not used by Elasticsearch)."""
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def describe(exc: Exception) -> str:
    """One line for a failed request: ``HTTP 429: <reason>`` or ``ConnectionTimeout: ...``."""
    if isinstance(exc, ApiError):
        err = exc.body.get("error") if isinstance(exc.body, dict) else None
        reason = err.get("reason") if isinstance(err, dict) else exc.message
        return f"HTTP {exc.meta.status}: {reason}"
    return f"{type(exc).__name__}: {exc}"
