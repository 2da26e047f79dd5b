"""Bearer tokens kept in a private file: made once, never overwritten, checked in constant time.

The collector's admin token and its /metrics token are both of this kind: whoever can
read the file (its owner, mode 0600) may use the token; rotating is deleting the file
and restarting (or writing a new one: it is re-read on every check).
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path


def ensure(path: Path) -> Path:
    """Create ``path`` holding a random token (0600) unless it exists; return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32) + "\n")
    return path


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()


def bearer(authorization: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header value, or ""."""
    return authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""


def matches(given: str, path: Path) -> bool:
    """``given`` is the token in ``path``: constant time, and False on any doubt."""
    try:
        expected = read(path)
    except OSError:
        return False
    return bool(given and expected) and hmac.compare_digest(given.encode(), expected.encode())
