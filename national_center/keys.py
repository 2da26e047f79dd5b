"""The province keys the center accepts (``--keys FILE``).

One entry per province collector: a key id sent in every request and the
shared HMAC secret. Secrets may be written ``hex:...``, ``base64:...``, plain,
or ``${ENV_VAR}`` so they need not sit in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from canhgac.config import Secret, load_file
from canhgac.signing import load_secret


@dataclass
class ProvinceKey:
    id: str
    secret: Secret
    province: str = ""
    # System ids (glob patterns) this province may report on; empty: any. A line for
    # another system is refused, so one province cannot speak for another's systems.
    systems: list[str] = field(default_factory=list)

    def validate(self) -> tuple[str, str] | None:
        if len(self.secret) < 16:
            return ("secret", "must be at least 16 characters")
        try:
            load_secret(self.secret)
        except ValueError as exc:
            return ("secret", f"cannot decode: {exc}")
        return None


@dataclass
class KeysFile:
    keys: list[ProvinceKey] = field(default_factory=list)

    def validate(self) -> tuple[str, str] | None:
        seen: set[str] = set()
        for i, k in enumerate(self.keys):
            if k.id in seen:
                return (f"keys[{i}].id", f"duplicate key id {k.id!r}")
            seen.add(k.id)
        return None


def load_keys(path: str | Path) -> dict[str, bytes]:
    """key id -> secret bytes."""
    doc = load_file(path, KeysFile)
    return {k.id: load_secret(k.secret) for k in doc.keys}


def load_key_systems(path: str | Path) -> dict[str, list[str]]:
    """key id -> the system id patterns it may report on (keys with a list only)."""
    doc = load_file(path, KeysFile)
    return {k.id: list(k.systems) for k in doc.keys if k.systems}
