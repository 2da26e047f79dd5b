"""Search results for people: a terminal table that keeps Vietnamese intact and aligned.

Column widths are measured in terminal cells, not code points: combining marks
(a decomposed "ệ") take none, East Asian wide characters take two. Text is
normalised to NFC first so precomposed and decomposed input look the same.
"""

from __future__ import annotations

import shutil
import unicodedata
from typing import Any

from canhgac.schema import get_path


def cell_width(text: str) -> int:
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def fit(text: str, width: int) -> str:
    """Cut to ``width`` cells (with an ellipsis) and pad to exactly ``width``."""
    text = unicodedata.normalize("NFC", " ".join(str(text).split()))
    if cell_width(text) > width:
        out, used = [], 0
        for ch in text:
            w = cell_width(ch)
            if used + w > width - 1:
                break
            out.append(ch)
            used += w
        text = "".join(out) + "…"
    return text + " " * (width - cell_width(text))


def _s(doc: dict[str, Any], path: str) -> str:
    v = get_path(doc, path)
    if v is None:
        return ""
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    return str(v)


def _endpoint(doc: dict[str, Any], side: str) -> str:
    ip, port = _s(doc, f"{side}.ip"), _s(doc, f"{side}.port")
    return f"{ip}:{port}" if ip and port else ip


_SHOWN = {"@timestamp", "ecs", "event", "canhgac", "agent", "host", "message"}


def _leaves(value: Any, prefix: str, out: list[str], limit: int) -> None:
    if len(out) >= limit:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _leaves(v, f"{prefix}.{k}" if prefix else k, out, limit)
    elif value not in (None, "", [], {}):
        out.append(f"{prefix}={value if not isinstance(value, list) else ','.join(map(str, value))}")


def _pct(doc: dict[str, Any], path: str) -> str:
    v = get_path(doc, path)
    return f"{v * 100:.0f}%" if isinstance(v, int | float) and not isinstance(v, bool) else ""


def _metrics_summary(doc: dict[str, Any]) -> str:
    parts: list[str] = []
    for label, path in (("cpu", "system.cpu.total.norm.pct"), ("cpu", "host.cpu.usage"),
                        ("mem", "system.memory.actual.used.pct")):
        v = _pct(doc, path)
        if v and not any(p.startswith(label + " ") for p in parts):
            parts.append(f"{label} {v}")
    load = get_path(doc, "system.load.1")
    if isinstance(load, int | float):
        parts.append(f"load {load:g}")
    fs = _s(doc, "system.filesystem.mount_point")
    if fs:
        parts.append(f"fs {fs} {_pct(doc, 'system.filesystem.used.pct')}".strip())
    if parts:
        return " ".join(parts)
    out: list[str] = []
    for key, value in doc.items():
        if key not in _SHOWN:
            _leaves(value, key, out, 6)
    return " ".join(out)


def summary(doc: dict[str, Any]) -> str:
    """One line that says what happened, by dataset; the message when there is one."""
    ds = _s(doc, "event.dataset")
    msg = _s(doc, "message")
    if ds == "alert":
        return " ".join(x for x in (_s(doc, "rule.name"), msg) if x)
    if msg:
        return msg
    if ds in ("auth", "session", "iam"):
        user, src = _s(doc, "user.name"), _endpoint(doc, "source")
        return " ".join(x for x in (f"user {user}" if user else "", f"from {src}" if src else "") if x)
    if ds == "process":
        return " ".join(x for x in (_s(doc, "process.name"),
                                    f"[{_s(doc, 'process.pid')}]" if _s(doc, "process.pid") else "",
                                    _s(doc, "process.command_line")) if x)
    if ds in ("socket", "network"):
        src, dst = _endpoint(doc, "source"), _endpoint(doc, "destination")
        return f"{src} → {dst} {_s(doc, 'network.transport')}".strip()
    if ds == "file":
        return _s(doc, "file.path")
    if ds == "dns":
        return _s(doc, "dns.question.name")
    if ds == "host.metrics":
        return _metrics_summary(doc)
    parts: list[str] = []
    for key, value in doc.items():
        if key not in _SHOWN:
            _leaves(value, key, parts, 6)
    return " ".join(parts)


def _time(doc: dict[str, Any]) -> str:
    ts = _s(doc, "@timestamp")
    return ts.replace("T", " ")[:19] if ts else ""


def table(result: dict[str, Any], width: int | None = None) -> str:
    """The terminal rendering of an API-shaped search result."""
    width = width or shutil.get_terminal_size((140, 24)).columns
    lines: list[str] = []
    hits = result.get("hits") or []
    cols = [("TIME (UTC)", 19), ("SYSTEM", 14), ("HOST", 14), ("DATASET", 12),
             ("ACTION/OUTCOME", 22)]
    fixed = sum(w for _, w in cols) + 2 * len(cols)
    summ = max(20, width - fixed)
    if hits:
        lines.append("  ".join(fit(name, w) for name, w in cols) + "  " + fit("SUMMARY", summ))
        for doc in hits:
            action, outcome = _s(doc, "event.action"), _s(doc, "event.outcome")
            row = [_time(doc), _s(doc, "canhgac.system.id"), _s(doc, "host.name"),
                   _s(doc, "event.dataset"), "/".join(x for x in (action, outcome) if x)]
            lines.append("  ".join(fit(v, w) for v, (_, w) in zip(row, cols, strict=True))
                         + "  " + fit(summary(doc), summ).rstrip())
    total = result.get("total", 0)
    lines.append(f"{total} sự kiện / events, showing {len(hits)} "
                 f"({result.get('from', '')} → {result.get('to', '')}, "
                 f"{result.get('backend', '')}, {result.get('took_ms', 0)} ms)")
    top = result.get("top")
    if top is not None:
        lines.append("")
        lines.append(f"TOP {top['field']}")
        buckets = top.get("buckets") or []
        peak = max((b["count"] for b in buckets), default=0)
        keyw = min(40, max((cell_width(str(b["key"])) for b in buckets), default=5))
        for b in buckets:
            bar = "█" * (round(30 * b["count"] / peak) if peak else 0)
            lines.append(f"  {fit(str(b['key']), keyw)}  {b['count']:>8}  {bar}")
    hist = result.get("histogram")
    if hist is not None:
        lines.append("")
        lines.append(f"HISTOGRAM every {hist['interval']}")
        buckets = hist.get("buckets") or []
        peak = max((b["count"] for b in buckets), default=0)
        for b in buckets:
            bar = "█" * (round(40 * b["count"] / peak) if peak else 0)
            lines.append(f"  {b['key_as_string'].replace('T', ' ')[:19]}  {b['count']:>8}  {bar}")
    return "\n".join(lines)
