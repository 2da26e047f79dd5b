"""Plain terminal tables that keep Vietnamese text aligned.

Width is measured in terminal cells (combining marks take none, wide CJK
characters two), so "Sở Thông tin và Truyền thông" lines up whether it arrives
precomposed (NFC) or decomposed (NFD).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence


def cell_width(text: str) -> int:
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def truncate(text: str, width: int) -> str:
    text = unicodedata.normalize("NFC", text)
    if cell_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = 0 if unicodedata.combining(ch) else (2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def render(rows: Sequence[Sequence[object]], max_widths: Sequence[int] | None = None) -> str:
    """Left-aligned columns separated by two spaces; the first row is the header."""
    if not rows:
        return ""
    text_rows = [[unicodedata.normalize("NFC", "" if c is None else str(c)) for c in r] for r in rows]
    if max_widths:
        text_rows = [[truncate(c, max_widths[i]) if i < len(max_widths) and max_widths[i] else c
                      for i, c in enumerate(r)] for r in text_rows]
    ncols = max(len(r) for r in text_rows)
    widths = [max(cell_width(r[i]) if i < len(r) else 0 for r in text_rows) for i in range(ncols)]
    lines = []
    for r in text_rows:
        cells = [c + " " * (widths[i] - cell_width(c)) for i, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
