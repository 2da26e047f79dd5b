"""Numbers and times as each language writes them: 1.234,5 in Vietnamese, 1,234.5 in English.

Times are shown in the province's zone (UTC+7 unless configured), the zone the
deadlines and the officials live in.
"""

from __future__ import annotations

import datetime as dt
import math

_VI = str.maketrans({",": ".", ".": ","})


class Formatter:
    def __init__(self, lang: str, utc_offset_hours: int = 7) -> None:
        self.lang = lang
        self.tz = dt.timezone(dt.timedelta(hours=utc_offset_hours))
        self.offset = utc_offset_hours

    def num(self, value: float | int | None, decimals: int = 0) -> str:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "–"
        text = f"{value:,.{decimals}f}"
        return text.translate(_VI) if self.lang == "vi" else text

    def pct(self, ratio: float | None) -> str:
        """A ratio 0..1 as a percentage: whole numbers, one decimal where it matters."""
        if ratio is None:
            return "–"
        value = ratio * 100
        decimals = 0 if abs(value - round(value)) < 0.05 else 1
        return self.num(value, decimals) + "%"

    def when(self, epoch: float | None, seconds: bool = False) -> str:
        if not epoch:
            return "–"
        t = dt.datetime.fromtimestamp(epoch, self.tz)
        if self.lang == "vi":
            return t.strftime("%d/%m/%Y %H:%M:%S" if seconds else "%d/%m/%Y %H:%M")
        return t.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")

    def stamp(self, text: object) -> str:
        """An event's RFC 3339 ``@timestamp`` in the province's zone, as ``when`` shows it."""
        if not isinstance(text, str):
            return "–"
        try:
            return self.when(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp(),
                             seconds=True)
        except ValueError:
            return text

    def day(self, iso: str | dt.date | None) -> str:
        if not iso:
            return "–"
        d = iso if isinstance(iso, dt.date) else dt.date.fromisoformat(str(iso)[:10])
        return d.strftime("%d/%m/%Y") if self.lang == "vi" else d.isoformat()

    def ago(self, seconds: float | None) -> str:
        """A duration the way one says it: 45 s, 12 min, 3 h, 2 days (vi: giây, phút, giờ, ngày)."""
        if seconds is None:
            return "–"
        s = max(0.0, seconds)
        units = (("ngày", "days", 86400), ("giờ", "h", 3600), ("phút", "min", 60))
        for vi, en, size in units:
            if s >= size:
                return f"{self.num(s // size)} {vi if self.lang == 'vi' else en}"
        return f"{self.num(s)} {'giây' if self.lang == 'vi' else 's'}"

    @property
    def zone(self) -> str:
        return f"UTC{self.offset:+d}"
