"""Which language a person reads: Vietnamese first, English on request.

``--lang``, else ``CANHGAC_LANG``, else the locale (an English locale gives English),
else Vietnamese — the officials and SOC teams canhgac serves read Vietnamese; servers
often run with a C/POSIX locale, which must not turn their reports English.
"""

from __future__ import annotations

import locale
import os
from collections.abc import Mapping

LANGS = ("vi", "en")
DEFAULT_LANG = "vi"


def resolve_lang(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The language code; a value that is neither vi nor en raises ValueError."""
    env = os.environ if env is None else env
    for value in (explicit, env.get("CANHGAC_LANG")):
        if value:
            code = value.strip().lower()[:2]
            if code not in LANGS:
                raise ValueError(f"unknown language {value!r}: use vi or en "
                                 f"(ngôn ngữ không hợp lệ: dùng vi hoặc en)")
            return code
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return "en" if value.lower().startswith("en") else DEFAULT_LANG
    try:
        found = locale.getlocale()[0] or ""
    except ValueError:
        found = ""
    return "en" if found.lower().startswith("en") else DEFAULT_LANG
