"""The national link (``national.link``): where the center is and how this province signs.

One section, read by every side that talks to the center: the collector's
``national`` output, its indicator pull and ``canhgac check national``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from canhgac.config import Duration, Secret, load_section
from canhgac.errors import ConfigError
from canhgac.message import Message
from canhgac.signing import load_secret

_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


_SHORT_SECRET = Message("secret must be at least 16 bytes", "khóa bí mật phải dài ít nhất 16 byte")


def _undecodable(exc: Exception) -> Message:
    return Message("cannot decode: {why}", "không giải mã được: {why}", why=str(exc))


@dataclass
class LinkConfig:
    """Where the national center is and how this province authenticates to it."""

    url: str = ""  # https://host:port of the center; empty = link not configured
    key_id: str = ""  # the province key id issued by the center
    secret: Secret = Secret("")  # HMAC secret (hex:/base64:/plain, or ${ENV})
    secret_file: Path | None = None  # alternative to ``secret``: a 0600 file holding it
    ca: Path | None = None  # CA bundle that signs the center's certificate (None: system store)
    timeout: Duration = Duration(15)
    connect_timeout: Duration = Duration(5)

    @property
    def configured(self) -> bool:
        return bool(self.url)

    def validate(self) -> tuple[str, str] | None:
        if not self.url:
            return None
        parts = urlsplit(self.url)
        if parts.scheme != "https" or not parts.hostname:
            return ("url", Message("must be an https:// URL, got {url!r}",
                                   "phải là địa chỉ https://, đang là {url!r}", url=self.url))
        if parts.path not in ("", "/"):
            return ("url", Message(
                "give the center's base URL only (the API paths start with /v1/)",
                "chỉ ghi địa chỉ gốc của trung tâm (các đường dẫn API bắt đầu bằng /v1/)"))
        if not _KEY_ID.match(self.key_id):
            return ("key_id", Message("is required: 1-64 characters of A-Z a-z 0-9 . _ -",
                                      "bắt buộc: 1-64 ký tự trong A-Z a-z 0-9 . _ -"))
        if bool(self.secret) == (self.secret_file is not None):
            return ("secret", Message("give exactly one of secret and secret_file",
                                      "ghi đúng một trong hai: secret hoặc secret_file"))
        if self.secret:
            try:
                if len(load_secret(self.secret)) < 16:
                    return ("secret", _SHORT_SECRET)
            except ValueError as exc:
                return ("secret", _undecodable(exc))
        return None

    @property
    def base(self) -> str:
        return self.url.rstrip("/")

    def secret_bytes(self, source: str, path: str = "national.link") -> bytes:
        """The HMAC key; a missing or unreadable secret file is a ConfigError."""
        if self.secret_file is not None:
            try:
                text = self.secret_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(source, f"{path}.secret_file",
                                  f"{self.secret_file}: {exc.strerror or exc}") from None
            try:
                key = load_secret(text)
            except ValueError as exc:
                raise ConfigError(source, f"{path}.secret_file", _undecodable(exc)) from None
            if len(key) < 16:
                raise ConfigError(source, f"{path}.secret_file", _SHORT_SECRET)
            return key
        return load_secret(self.secret)


def load_link(raw_national: Any, source: str) -> LinkConfig:
    """``national.link`` from the raw ``national:`` mapping (other keys belong to the component)."""
    if raw_national is None:
        raw_national = {}
    if not isinstance(raw_national, dict):
        raise ConfigError(source, "national", Message("expected a mapping",
                                                      "cần một ánh xạ khóa: giá trị"))
    return load_section(raw_national.get("link"), LinkConfig, source, "national.link")
