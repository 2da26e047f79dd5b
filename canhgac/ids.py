"""Event identifiers.

UUIDv7 (RFC 9562) is used for ``event.id`` because it is time-ordered: ids sort
roughly by birth time, which keeps Elasticsearch ``_id`` lookups and SQLite
primary-key inserts local instead of random.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> str:
    """Return a new UUIDv7 string, monotonic within this process."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            # Same millisecond (or clock stepped back): bump a 12-bit counter so
            # ids stay strictly increasing in this process.
            _counter += 1
            if _counter > 0xFFF:
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        else:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand
    return str(uuid.UUID(int=value))


def new_token(kind: str = "cg", nbytes: int = 32) -> str:
    """A URL-safe random secret with a recognisable prefix (``cge_…`` for enrollment).

    The prefix lets secret scanners spot a leaked token, and guarantees the token
    never starts with ``-`` (which a command line would take for an option).
    """
    import secrets

    return f"{kind}_{secrets.token_urlsafe(nbytes)}"
