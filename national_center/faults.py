"""Fault injection: what the mock center does wrong, on purpose, for rehearsal and tests.

Set at start (``--fault name=value``) or at runtime (``PUT /admin/faults``).
Faults apply to the API (``/v1/*``) only; the admin endpoints always work so a
test can switch a fault off again.
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass, field
from typing import Any

from canhgac.timeutil import parse_duration


@dataclass
class Faults:
    latency: float = 0.0  # seconds added before every API answer
    latency_jitter: float = 0.0  # plus up to this many seconds, uniformly
    error_rate: float = 0.0  # fraction of API requests answered 500
    windows: list[tuple[float, float]] = field(default_factory=list)  # 503 (epoch start, end)
    drop_rate: float = 0.0  # fraction of requests whose connection is cut before handling
    drop_after_store_rate: float = 0.0  # fraction cut after the batch is stored (ack lost)
    slow_tls: float = 0.0  # seconds to wait before starting each TLS handshake
    reject_signatures: bool = False  # answer every signed request 401
    retry_after: float = 1.0  # Retry-After sent with 503
    seed: int | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def chance(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def jitter(self) -> float:
        return self._rng.uniform(0, self.latency_jitter) if self.latency_jitter > 0 else 0.0

    def unavailable(self, now: float | None = None) -> float | None:
        """Seconds until the current 503 window ends, or None when available."""
        now = time.time() if now is None else now
        ends = [end for start, end in self.windows if start <= now < end]
        return max(ends) - now if ends else None

    def as_dict(self) -> dict[str, Any]:
        now = time.time()
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["windows"] = [
            {"start_in": round(s - now, 3), "duration": round(e - s, 3)}
            for s, e in self.windows if e > now
        ]
        return d

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial change (admin endpoint / CLI); raises ValueError naming the key."""
        for key, value in changes.items():
            try:
                self._update_one(key, value)
            except (ValueError, TypeError, KeyError) as exc:
                text = str(exc)
                raise ValueError(text if text.startswith(key) else f"{key}: {text}") from None

    def _update_one(self, key: str, value: Any) -> None:
        now = time.time()
        names = {f.name for f in dataclasses.fields(self)}
        if key == "unavailable_for":
            secs = parse_duration(value)
            self.windows = [*self.windows, (now, now + secs)]
        elif key == "windows":
            if not isinstance(value, list):
                raise ValueError("windows: expected a list of {start_in, duration}")
            wins = []
            for w in value:
                if not isinstance(w, dict):
                    raise ValueError("windows: each window is {start_in, duration}")
                s = now + parse_duration(w.get("start_in", 0))
                wins.append((s, s + parse_duration(w["duration"])))
            self.windows = wins
        elif key == "reject_signatures":
            if not isinstance(value, bool):
                value = str(value).lower() in ("1", "true", "yes", "on")
            self.reject_signatures = value
        elif key == "seed":
            self.seed = None if value is None else int(value)
            self._rng = random.Random(self.seed)
        elif key in names:
            num = parse_duration(value) if key in ("latency", "latency_jitter", "slow_tls",
                                                   "retry_after") else float(value)
            if key.endswith("_rate") and not 0 <= num <= 1:
                raise ValueError(f"{key}: must be between 0 and 1")
            setattr(self, key, num)
        else:
            known = ", ".join(sorted(names | {"unavailable_for"}))
            raise ValueError(f"{key}: unknown fault (known: {known})")

    def reset(self) -> None:
        fresh = Faults(seed=self.seed)
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(fresh, f.name))
        self._rng = random.Random(self.seed)


def parse_cli(items: list[str]) -> dict[str, Any]:
    """``["latency=200ms", "windows=10s:30s,2m:30s"]`` -> an update() mapping."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{item!r}: expected name=value")
        key = key.strip().replace("-", "_")
        if key == "windows":
            wins = []
            for part in value.split(","):
                start, _, dur = part.partition(":")
                if not dur:
                    raise ValueError(f"windows: {part!r}: expected START:DURATION")
                wins.append({"start_in": start, "duration": dur})
            out[key] = wins
        else:
            out[key] = value
    return out
