"""The `canhgac coverage` table: systems x layers in 80 columns, grouped by unit.

Works on the JSON the API returns (not the dataclasses) so what a terminal
shows is exactly what any other API client gets. Colour only when asked (the
CLI asks when stdout is a TTY and NO_COLOR is unset).
"""

from __future__ import annotations

import datetime as dt
import textwrap
import unicodedata
from typing import Any

from collector.coverage.reasons import say

LAYERS = ("onsite", "monitoring", "assessment", "national")
WIDTH = 80

GREEN, YELLOW, RED, DIM, BOLD, RESET = ("\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[2m", "\x1b[1m",
                                        "\x1b[0m")


def _width(text: str) -> int:
    """Display width: combining marks take no column (NFD-typed Vietnamese)."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF"
               else 1 for c in text)


def _fit(text: str, width: int) -> str:
    text = unicodedata.normalize("NFC", text)
    if _width(text) <= width:
        return text + " " * (width - _width(text))
    out = ""
    for c in text:
        if _width(out + c) > width - 1:
            break
        out += c
    return out + "…" + " " * (width - 1 - _width(out))


class Painter:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, text: str, code: str) -> str:
        return f"{code}{text}{RESET}" if self.colour and code else text

    def ratio(self, value: float) -> str:
        cell = f"{round(value * 100):>4d}%"
        return self(cell, GREEN if value >= 1 else YELLOW if value >= 0.5 else RED)


def approval_cell(s: dict[str, Any]) -> tuple[str, str]:
    if s["approved"]:
        return ("OK", GREEN) if s["approved_on_time"] else ("LATE", YELLOW)
    if s["approval_overdue"]:
        return ("OVERDUE", RED)
    return ("no", DIM if s["status"] != "operating" else YELLOW)


def plan_cell(s: dict[str, Any]) -> tuple[str, str]:
    if s["plan_deployed"]:
        return ("OK", GREEN)
    if s["plan_overdue"]:
        return ("OVERDUE", RED)
    return ("no", DIM if s["status"] != "operating" else YELLOW)


HEADER = f"{'system':<14} {'tên / name':<20} {'cấp':>3} {'L1':>5} {'L2':>5} {'L3':>5} {'L4':>5}" \
         f" {'duyệt':<8} {'p.án':<8}"


# Flags a person must act on (SystemCoverage.flags): (Vietnamese, English).
FLAG_TEXT = {
    "contract_expired": ("hợp đồng giám sát đã hết hạn", "monitoring contract expired"),
    "contract_expiring": ("hợp đồng giám sát sắp hết hạn", "monitoring contract ends soon"),
    "findings_overdue": ("tồn tại quá hạn khắc phục", "assessment findings overdue"),
    "needs_reapproval": ("cần phê duyệt lại cấp độ", "level needs re-approval"),
    "no_approved_level": ("đang vận hành chưa được phê duyệt cấp độ",
                          "in operation without an approved level"),
}
LAYER_TEXT = {"onsite": ("L1 tại chỗ", "L1 on-site"), "monitoring": ("L2 giám sát", "L2 SOC"),
              "assessment": ("L3 đánh giá", "L3 assessment"),
              "national": ("L4 quốc gia", "L4 national")}


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[0] if lang == "vi" else pair[1]


def flags_line(flags: list[str], lang: str = "vi") -> str:
    return "  ! " + "; ".join(_pick(FLAG_TEXT[f], lang) if f in FLAG_TEXT else f for f in flags)


def gap_lines(s: dict[str, Any], lang: str) -> list[str]:
    """Why each layer below 100 % is there, in the reader's language (reasons.py)."""
    out = []
    for layer in LAYERS:
        result = s["layers"][layer]
        if result["ratio"] >= 1:
            continue
        why = say(result["reasons"], lang) if result.get("reasons") else result["reason"]
        text = unicodedata.normalize("NFC", f"{_pick(LAYER_TEXT[layer], lang)}: {why}")
        out.extend(textwrap.wrap(text, WIDTH, initial_indent="    ", subsequent_indent="      "))
    return out


def render(data: dict[str, Any], colour: bool = False, tz_hours: int = 7,
           lang: str = "vi") -> str:
    paint = Painter(colour)
    lines = []
    when = dt.datetime.fromtimestamp(data["generated_at"], dt.timezone(dt.timedelta(hours=tz_hours)))
    title = "Bao phủ 4 lớp / 4-layer coverage"
    if data.get("at"):
        title = f"Bao phủ 4 lớp ngày / coverage on {data['at']}"
    if data.get("province"):
        title += f" — {data['province']}"
    stamp = when.strftime("%Y-%m-%d %H:%M") + f" UTC{tz_hours:+d}"
    lines.append(paint(_fit(title, WIDTH - len(stamp) - 1), BOLD) + " " + stamp)
    systems = data["systems"]
    for unit in data["units"]:
        mine = [s for s in systems if s["unit"] == unit["name"]]
        if not mine:
            continue
        lines.append("")
        lines.append(paint(_fit(unit["name"], WIDTH).rstrip(), BOLD))
        lines.append(paint(HEADER.rstrip(), DIM))
        for s in mine:
            ap, ap_c = approval_cell(s)
            pl, pl_c = plan_cell(s)
            cells = " ".join(paint.ratio(s["layers"][layer]["ratio"]) for layer in LAYERS)
            lines.append(f"{_fit(s['id'], 14)} {_fit(s['name'], 20)} {s['level']:>3} {cells} "
                         f"{paint(f'{ap:<8}', ap_c)} {paint(f'{pl:<8}', pl_c)}".rstrip())
            if s.get("flags"):
                lines.append(paint(_fit(flags_line(s["flags"], lang), WIDTH).rstrip(), YELLOW))
            lines.extend(paint(line, DIM) for line in gap_lines(s, lang))
        lines.append(_rollup_line("  = unit", unit, paint))
    p = data["province_rollup"]
    lines.append("")
    lines.append(_rollup_line("Tổng / total", p, paint))
    building = p.get("not_operating", 0)
    lines.append(f"  {p['systems']} in operation: {p['approved']} approved, "
                 f"{p['plan_deployed']} plan deployed, {p['overdue']} overdue, "
                 f"{p['fully_covered']} fully covered")
    if building:
        lines.append(f"  {building} not in operation: planned, building or retired (not counted)")
    stray = data.get("flagged_agents") or []
    if stray:
        lines.append(paint(f"  ! {len(stray)} agent(s) of systems not in the inventory or retired "
                           "(canhgac collector agents)", YELLOW))
    if not data.get("national_configured", True):
        lines.append(paint("  L4: national link not configured on this collector", YELLOW))
    lines.append(paint("L1 tại chỗ/on-site  L2 giám sát/SOC  L3 đánh giá/assessment  "
                       "L4 quốc gia/NCSC", DIM))
    lines.append(paint("duyệt: level approval  p.án: security plan  (OK, LATE, OVERDUE, no)",
                       DIM))
    return "\n".join(lines)


def _rollup_line(label: str, r: dict[str, Any], paint: Painter) -> str:
    cells = " ".join(paint.ratio(r["layers"][layer]) for layer in LAYERS)
    tail = f"{r['approved']}/{r['systems']} appr."
    count = f"{r['systems']} systems"
    return f"{_fit(label, 14)} {_fit(count, 20)} {'':>3} {cells} {tail}"


REASON_TEXT = {"daily": "hằng ngày/daily", "start": "khởi động/start", "change": "thay đổi/change",
               "new": "mới/new"}


def render_trend(data: dict[str, Any], colour: bool = False) -> str:
    """``canhgac coverage --system S --since 1y``: one line per change (or per day)."""
    paint = Painter(colour)
    s = data["system"]
    title = f"Lịch sử bao phủ / coverage history — {s['id']} {s.get('name') or ''}".rstrip()
    lines = [paint(_fit(title, WIDTH).rstrip(), BOLD),
             f"{s.get('unit') or ''}  cấp/level {s.get('level') or '?'}  "
             f"{data['since']} → {data['until']}"]
    entries = data["entries"]
    if not entries:
        lines.append("")
        lines.append("(chưa có ảnh chụp trong khoảng này / no snapshot in this period)")
        return "\n".join(lines)
    rows: list[list[object]] = [["ngày/date", "L1", "L2", "L3", "L4", "duyệt", "p.án",
                                 "trạng thái/status", "thay đổi/changed"]]
    colours: list[list[str]] = []
    for e in entries:
        ap, ap_c = approval_cell(e) if e["status"] != "removed" else ("-", DIM)
        pl, pl_c = plan_cell(e) if e["status"] != "removed" else ("-", DIM)
        cells: list[object] = [e["day"] + (f"#{e['seq']}" if e["seq"] else "")]
        cells += [f"{round(e['layers'][layer] * 100)}%" for layer in LAYERS]
        cells += [ap, pl, e["status"], ", ".join(e.get("changed") or []) or
                  REASON_TEXT.get(e["reason"], e["reason"])]
        rows.append(cells)
        colours.append([""] + [_ratio_colour(e["layers"][layer]) for layer in LAYERS]
                       + [ap_c, pl_c, "", DIM])
    from canhgac.table import render as table

    text = table(rows, max_widths=[13, 5, 5, 5, 5, 8, 8, 18, 30]).split("\n")
    lines.append("")
    lines.append(paint(text[0], DIM))
    for line, row, cols in zip(text[1:], rows[1:], colours, strict=True):
        lines.append(_paint_cells(line, [str(c) for c in row], cols, paint))
    lines.append(paint("L1 tại chỗ/on-site  L2 giám sát/SOC  L3 đánh giá/assessment  "
                       "L4 quốc gia/NCSC", DIM))
    return "\n".join(lines)


def _ratio_colour(value: float) -> str:
    return GREEN if value >= 1 else YELLOW if value >= 0.5 else RED


def _paint_cells(line: str, cells: list[str], colours: list[str], paint: Painter) -> str:
    """Colour each cell of an already aligned line (alignment is computed without escapes)."""
    if not paint.colour:
        return line
    out, pos = "", 0
    for cell, code in zip(cells, colours, strict=False):
        i = line.find(cell, pos) if cell else -1
        if i < 0:
            continue
        out += line[pos:i] + paint(cell, code)
        pos = i + len(cell)
    return out + line[pos:]
