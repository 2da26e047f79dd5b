"""Bounded per-key state for stateful rules and the throttle.

An attacker chooses the keys (source addresses, user names), so per-key state
must never grow without limit: each table has a cap, evicts the least recently
touched key when full and counts evictions (exported as a metric), and drops keys
that have been idle longer than the rule's window.

A plain dict is the LRU: insertion order is touch order because a touched key
is popped and re-inserted, so the oldest key is always ``next(iter(d))``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class KeyedState(Generic[K, V]):
    """A capped, idle-expiring table ``key -> (last_touch, value)``."""

    __slots__ = ("cap", "idle", "evicted", "_d", "on_evict")

    def __init__(
        self,
        cap: int,
        idle: float,
        on_evict: Callable[[K, V], None] | None = None,
    ) -> None:
        self.cap = max(1, cap)
        self.idle = idle
        self.evicted = 0
        self.on_evict = on_evict
        self._d: dict[K, list[Any]] = {}  # key -> [last used, value]

    def __len__(self) -> int:
        return len(self._d)

    def get(self, key: K) -> V | None:
        slot = self._d.get(key)
        return None if slot is None else slot[1]

    def touch(self, key: K, now: float, factory: Callable[[], V]) -> V:
        """The value for ``key`` (created if new), marked as used at ``now``."""
        d = self._d
        slot = d.pop(key, None)
        if slot is None:
            if len(d) >= self.cap:
                old_key = next(iter(d))
                old = d.pop(old_key)
                self.evicted += 1
                if self.on_evict is not None:
                    self.on_evict(old_key, old[1])
            slot = [now, factory()]
        else:
            slot[0] = now
        d[key] = slot
        value: V = slot[1]
        return value

    def pop(self, key: K) -> V | None:
        slot = self._d.pop(key, None)
        return None if slot is None else slot[1]

    def expire(self, now: float) -> list[tuple[K, V]]:
        """Remove and return keys idle for longer than ``idle`` seconds."""
        d = self._d
        out: list[tuple[K, V]] = []
        limit = now - self.idle
        while d:
            key = next(iter(d))
            slot = d[key]
            if slot[0] > limit:
                break
            del d[key]
            out.append((key, slot[1]))
        return out

    def items(self) -> Iterator[tuple[K, V]]:
        """Least recently touched first. Do not add or remove keys while iterating."""
        for key, slot in self._d.items():
            yield key, slot[1]
