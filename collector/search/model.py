"""Search requests, results and operator scopes, shared by the API, the CLI and both backends."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from canhgac.errors import UserError
from canhgac.text import nfc
from canhgac.timeutil import format_rfc3339, parse_duration, parse_rfc3339
from collector.query import ast
from collector.query.fields import BOOLEAN, DOUBLE, IP, KEYWORD, LONG, kind_of
from collector.query.parser import epoch_ms, parse

SYSTEM_FIELD = "canhgac.system.id"
UNIT_FIELD = "canhgac.unit.name"

DEFAULT_SINCE = 24 * 3600.0
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
MAX_TOP = 100
MAX_BUCKETS = 2_000
MAX_SPAN = 100 * 365 * 86400  # seconds: a since or histogram interval longer is a mistake
TOP_KINDS = (KEYWORD, LONG, DOUBLE, IP, BOOLEAN)


class SearchError(UserError):
    """A request the user can fix (bad time range, bad limit): 400 / exit 2."""


class SearchTimeout(SearchError):
    """The search ran past ``search.timeout`` and was stopped: 503 / exit 2."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the search took longer than {seconds:g} s (search.timeout) and was "
                         "stopped: narrow the time range or the query")


@dataclass(frozen=True, slots=True)
class Scope:
    """What an operator may see: everything, or the union of some units and systems."""

    all: bool = False
    units: tuple[str, ...] = ()
    systems: tuple[str, ...] = ()

    @classmethod
    def everything(cls) -> Scope:
        return cls(all=True)

    @classmethod
    def parse(cls, specs: list[str] | tuple[str, ...] | str) -> Scope:
        """``all`` or ``unit:<name>`` / ``system:<id>`` items, comma-separated or repeated."""
        items: list[str] = []
        for spec in [specs] if isinstance(specs, str) else specs:
            pieces: list[str] = []
            for piece in spec.split(","):
                # a comma inside a unit name ("UBND, xã") continues the previous item
                if pieces and not piece.strip().startswith(("unit:", "system:")) \
                        and piece.strip() != "all":
                    pieces[-1] += "," + piece
                else:
                    pieces.append(piece)
            items.extend(p.strip() for p in pieces if p.strip())
        if not items:
            raise UserError("scope is empty: use all, unit:<name> or system:<id>")
        units: list[str] = []
        systems: list[str] = []
        for item in items:
            if item == "all":
                return cls(all=True)
            kind, sep, value = item.partition(":")
            if not sep or not value.strip():
                raise UserError(f"invalid scope item {item!r}: use all, unit:<name> or system:<id>")
            if kind == "unit":
                units.append(value.strip())
            elif kind == "system":
                systems.append(value.strip())
            else:
                raise UserError(f"invalid scope item {item!r}: use all, unit:<name> or system:<id>")
        return cls(False, tuple(dict.fromkeys(units)), tuple(dict.fromkeys(systems)))

    def to_ast(self) -> ast.Node:
        """The filter AND-ed outside the user's query: it cannot be escaped from inside."""
        if self.all:
            return ast.MatchAll()
        return ast.or_(
            *(ast.Eq(UNIT_FIELD, KEYWORD, u) for u in self.units),
            *(ast.Eq(SYSTEM_FIELD, KEYWORD, s) for s in self.systems),
        )

    def describe(self) -> str:
        if self.all:
            return "all"
        return ",".join([f"unit:{u}" for u in self.units] + [f"system:{s}" for s in self.systems])

    def as_json(self) -> Any:
        return "all" if self.all else {"units": list(self.units), "systems": list(self.systems)}


@dataclass(slots=True)
class SearchRequest:
    query: str = ""
    start_ms: int = 0
    end_ms: int = 0
    system: str | None = None
    limit: int = DEFAULT_LIMIT
    top: str | None = None
    top_size: int = 10
    histogram_ms: int | None = None
    histogram: str | None = None  # as given, for display

    @classmethod
    def build(
        cls,
        query: str = "",
        *,
        since: str | float | None = None,
        start: str | None = None,
        end: str | None = None,
        system: str | None = None,
        limit: int | None = None,
        top: str | None = None,
        top_size: int | None = None,
        histogram: str | None = None,
        now: float | None = None,
    ) -> SearchRequest:
        """Validate the user's options (not the query: that is parsed by the service)."""
        now_ms = int((now if now is not None else time.time()) * 1000)
        if since is not None and (start is not None or end is not None):
            raise SearchError("use either since or from/to, not both")
        if since is not None:
            try:
                seconds = parse_duration(since)
            except ValueError as exc:
                raise SearchError(f"since: {exc}") from None
            if not math.isfinite(seconds) or seconds > MAX_SPAN:
                raise SearchError(f"since: at most {MAX_SPAN // (365 * 86400)} years")
            start_ms, end_ms = now_ms - int(seconds * 1000), now_ms + 1
        else:
            start_ms = _time(start, "from") if start is not None else now_ms - int(DEFAULT_SINCE * 1000)
            end_ms = _time(end, "to") if end is not None else now_ms + 1
        if end_ms <= start_ms:
            raise SearchError("the time range is empty: 'to' must be after 'from'")
        if limit is None:
            limit = DEFAULT_LIMIT
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_LIMIT:
            raise SearchError(f"limit must be an integer from 0 to {MAX_LIMIT}")
        if top_size is None:
            top_size = 10
        if isinstance(top_size, bool) or not isinstance(top_size, int) or not 1 <= top_size <= MAX_TOP:
            raise SearchError(f"top_size must be an integer from 1 to {MAX_TOP}")
        if top is not None:
            if not isinstance(top, str) or not top:
                raise SearchError("top must be a field name")
            if kind_of(top) not in TOP_KINDS:
                raise SearchError(f"top works on keyword, numeric, ip and boolean fields; "
                                  f"{top} is {kind_of(top)}")
        hist_ms = None
        if histogram is not None:
            try:
                hist_seconds = parse_duration(histogram)
            except ValueError as exc:
                raise SearchError(f"histogram: {exc}") from None
            if not math.isfinite(hist_seconds) or hist_seconds > MAX_SPAN:
                raise SearchError(f"histogram: at most {MAX_SPAN // (365 * 86400)} years")
            hist_ms = int(hist_seconds * 1000)
            if hist_ms < 1000:
                raise SearchError("histogram interval must be at least 1s")
            if (end_ms - start_ms) // hist_ms > MAX_BUCKETS:
                raise SearchError(f"histogram interval {histogram} gives more than {MAX_BUCKETS} "
                                  "buckets for this time range; use a larger interval")
        if system is not None and (not isinstance(system, str) or not system):
            raise SearchError("system must be a system id")
        if not isinstance(query, str):
            raise SearchError("query must be a string")
        query = nfc(query)  # 'unit:"Sở Y tế"' matches however its diacritics were typed
        if system is not None:
            system = nfc(system)
        return cls(query, start_ms, end_ms, system, limit, top, top_size, hist_ms, histogram)

    def filter_ast(self, scope: Scope, now_ms: int | None = None) -> ast.Node:
        """Scope AND time range AND system AND the user's query, in that order."""
        user = parse(self.query, now_ms=now_ms)
        time_range = ast.Range("@timestamp", "date", self.start_ms, self.end_ms, True, False)
        system = ast.Eq(SYSTEM_FIELD, KEYWORD, self.system) if self.system else ast.MatchAll()
        return ast.and_(scope.to_ast(), time_range, system, user)


def _time(value: Any, name: str) -> int:
    if not isinstance(value, str):
        raise SearchError(f"{name} must be an RFC 3339 time like 2026-11-23T08:00:00Z")
    try:
        return epoch_ms(parse_rfc3339(value))
    except ValueError:
        raise SearchError(f"{name}: {value!r} is not an RFC 3339 time "
                          "(like 2026-11-23T08:00:00Z)") from None


@dataclass(slots=True)
class Bucket:
    key: Any
    count: int

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "count": self.count}


@dataclass(slots=True)
class SearchResult:
    total: int = 0
    hits: list[dict[str, Any]] = field(default_factory=list)
    top: list[Bucket] | None = None
    histogram: list[Bucket] | None = None
    took_ms: float = 0.0
    backend: str = ""

    def as_json(self, request: SearchRequest) -> dict[str, Any]:
        out: dict[str, Any] = {
            "total": self.total,
            "took_ms": round(self.took_ms, 1),
            "backend": self.backend,
            "from": format_rfc3339(_dt(request.start_ms)),
            "to": format_rfc3339(_dt(request.end_ms)),
            "hits": self.hits,
        }
        if self.top is not None:
            out["top"] = {"field": request.top, "buckets": [b.as_json() for b in self.top]}
        if self.histogram is not None:
            out["histogram"] = {
                "interval": request.histogram,
                "buckets": [
                    {"key": b.key, "key_as_string": format_rfc3339(_dt(b.key)), "count": b.count}
                    for b in self.histogram
                ],
            }
        return out


def _dt(ms: int) -> datetime:
    from datetime import UTC

    return datetime.fromtimestamp(ms / 1000, UTC)


def fill_histogram(counts: dict[int, int], request: SearchRequest) -> list[Bucket]:
    """Every bucket from the start of the range to its end, zeros included."""
    assert request.histogram_ms
    step = request.histogram_ms
    first = (request.start_ms // step) * step
    last = ((request.end_ms - 1) // step) * step
    return [Bucket(k, counts.get(k, 0)) for k in range(first, last + 1, step)]
