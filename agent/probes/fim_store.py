"""The file integrity baseline: what each watched path looked like when last reported.

SQLite in the probe's state dir, so changes made while the agent was stopped
are found at the next start. The whole baseline is also kept in memory (a
dict) because every check compares against it; SQLite is the durable copy,
written only after the events describing a change were emitted.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from pathlib import Path

from canhgac.sqlite import connect as sqlite_connect


@dataclass(frozen=True, slots=True)
class FileRecord:
    path: str
    type: str  # "file", "dir", "symlink", "other"
    size: int
    mode: int  # permission bits incl. setuid/setgid/sticky
    uid: int
    gid: int
    mtime_ns: int
    inode: int
    sha256: str | None  # None: not a regular file, too large, or unreadable
    target: str | None = None  # symlink target

    def same_content(self, other: FileRecord) -> bool:
        return (self.type, self.sha256, self.target) == (other.type, other.sha256, other.target)

    def same_attributes(self, other: FileRecord) -> bool:
        return (self.mode, self.uid, self.gid) == (other.mode, other.uid, other.gid)


_COLUMNS = "path, type, size, mode, uid, gid, mtime_ns, inode, sha256, target"


class BaselineStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite_connect(path, synchronous="NORMAL", private=True)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, type TEXT, size INTEGER,"
            " mode INTEGER, uid INTEGER, gid INTEGER, mtime_ns INTEGER, inode INTEGER,"
            " sha256 TEXT, target TEXT)"
        )
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")

    def load(self) -> dict[str, FileRecord]:
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM files").fetchall()
        return {r[0]: FileRecord(*r) for r in rows}

    def apply(self, upserts: list[FileRecord], deletes: list[str]) -> None:
        if not upserts and not deletes:
            return
        self.db.execute("BEGIN")
        try:
            if upserts:
                self.db.executemany(
                    f"INSERT OR REPLACE INTO files ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [astuple(r) for r in upserts],
                )
            if deletes:
                self.db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in deletes])
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        self.db.close()
