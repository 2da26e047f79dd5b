"""Typed answers of the bulk API: one per request, one per item.

The service turns whatever the client returns or raises into a :class:`BulkReply`
(never an exception), and :func:`shipper.outputs.elasticsearch.retry.classify`
decides from its fields what happens next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# What the output asks Elasticsearch to send back: the per-item status, and the error
# only where there is one (a bulk of 2,000 created items answers ~40 KB, not ~400 KB).
FILTER_PATH = "errors,items.*.status,items.*.error.type,items.*.error.reason"


@dataclass(frozen=True, slots=True)
class ItemStatus:
    """The outcome of one bulk item."""

    status: int  # HTTP status of the item; 0 when the answer had none
    error_type: str | None = None
    reason: str | None = None

    def describe(self) -> str:
        return f"HTTP {self.status} {self.error_type or 'error'}: {self.reason}"


CREATED = ItemStatus(201)


@dataclass(frozen=True, slots=True)
class BulkReply:
    """The answer to one bulk request.

    ``status`` is the HTTP status, or None when nothing answered (connection
    refused or reset, timeout); ``items`` holds one :class:`ItemStatus` per item
    sent when the request itself succeeded.
    """

    status: int | None
    items: list[ItemStatus] = field(default_factory=list)
    error: str = ""  # one line, for logs and dead-letter reasons, when the request failed
    error_type: str | None = None
    retry_after: float | None = None


def items_of(body: Any) -> list[ItemStatus]:
    """Per-item statuses of a bulk response body (filtered with :data:`FILTER_PATH`)."""
    if not isinstance(body, dict):
        return []
    raw = body.get("items")
    if not isinstance(raw, list):
        return []
    if body.get("errors") is False:
        # every item was written: no need to look at each one
        return [CREATED] * len(raw)
    out: list[ItemStatus] = []
    for entry in raw:
        result = next(iter(entry.values()), None) if isinstance(entry, dict) else None
        if not isinstance(result, dict):
            out.append(ItemStatus(0, None, "no result for this item"))
            continue
        status = result.get("status")
        status = status if isinstance(status, int) else 0
        err = result.get("error")
        if err is None:
            out.append(CREATED if status == 201 else ItemStatus(status))
        elif isinstance(err, dict):
            out.append(ItemStatus(status, err.get("type"), err.get("reason")))
        else:
            out.append(ItemStatus(status, None, str(err)))
    return out
