"""Opening SQLite databases the one way this project needs them.

Every state file (queues, stores, credentials, baselines) is a WAL database
shared between a serving process and CLI commands. ``busy_timeout`` must be set
before anything else: switching to WAL takes a lock, and a second opener that
arrives meanwhile would otherwise fail at once with "database is locked".
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Literal

Sync = Literal["OFF", "NORMAL", "FULL"]


def connect(
    path: str | Path,
    *,
    synchronous: Sync = "FULL",
    private: bool = True,
    busy_timeout_ms: int = 5000,
) -> sqlite3.Connection:
    """Autocommit connection usable from any thread (callers serialise access).

    ``synchronous="FULL"`` for anything that acknowledges data to someone else;
    ``NORMAL`` only where losing the last commit on power loss is harmless.
    ``private`` (the default: every state file holds events, secrets or personal
    data) makes the file mode 0600, wherever it is; SQLite gives its -wal and -shm
    files the same mode. A directory it has to create is made 0700.
    """
    p = Path(path)
    if not p.parent.exists():
        p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if private and not p.exists():
        os.close(os.open(p, os.O_WRONLY | os.O_CREAT, 0o600))
    db = sqlite3.connect(p, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    if private:
        with contextlib.suppress(OSError):
            os.chmod(p, 0o600)
    return db
