"""Message text, in Vietnamese, English or both (per route).

Every message says which system (its Vietnamese name as the inventory writes it,
diacritics intact), what happened, the key evidence, and the exact command that
acknowledges it. Rendered once when the alert is routed and stored with the
message, so a retry after a restart sends the very same text.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from canhgac.schema import get_path
from canhgac.timeutil import parse_rfc3339

LOCAL = dt.timezone(dt.timedelta(hours=7))  # the province's time, labelled where shown
SEVERITY_VI = {"low": "thấp", "medium": "trung bình", "high": "cao", "critical": "nghiêm trọng"}
EVIDENCE_FIELDS = ("process.command_line", "process.executable", "user.name", "group.name",
                   "file.path", "source.ip", "destination.ip", "destination.port",
                   "dns.question.name", "url.original")
MAX_DIGEST_LINES = 50


def summarize(doc: dict[str, Any], *, system_name: str, level: int | None, severity: str,
              console_url: str = "") -> dict[str, Any]:
    """What a message needs of one alert (kept for digests and escalations too)."""
    alert_id = str(get_path(doc, "event.id"))
    evidence = {}
    for name in EVIDENCE_FIELDS:
        value = get_path(doc, name)
        if value not in (None, "", [], {}):
            evidence[name] = str(value)[:300]
    return {
        "id": alert_id,
        "system_id": str(get_path(doc, "canhgac.system.id") or ""),
        "system_name": system_name,
        "unit": str(get_path(doc, "canhgac.unit.name") or ""),
        "level": level,
        "severity": severity,
        "rule_id": str(get_path(doc, "rule.id") or ""),
        "rule_name": str(get_path(doc, "rule.name") or get_path(doc, "message") or "alert")[:300],
        "message": str(get_path(doc, "message") or "")[:1000],
        "host": str(get_path(doc, "host.name") or ""),
        "timestamp": str(doc.get("@timestamp") or ""),
        "evidence": evidence,
        "ack_command": f"canhgac alerts ack {alert_id}",
        "link": f"{console_url.rstrip('/')}/alerts/{alert_id}" if console_url else "",
    }


def _local(ts: str) -> str:
    try:
        return parse_rfc3339(ts).astimezone(LOCAL).strftime("%d/%m/%Y %H:%M:%S") + " (UTC+7)"
    except (ValueError, TypeError):
        return ts or "?"


def _who(recipients: list[dict[str, Any]]) -> str:
    return ", ".join(r.get("name", "") for r in recipients if r.get("name"))


# The alert message's words, one table per language: both texts come from one layout,
# so a line added to one language cannot be missing from the other.
_ALERT_WORDS: dict[str, dict[str, Any]] = {
    "vi": {"escalation": "CHUYỂN CẤP (bước {step}): cảnh báo chưa được xác nhận sau {deadline}.",
           "level": ", cấp độ {level}", "system": "Hệ thống: ", "unknown": "không rõ",
           "unit": ", đơn vị {unit}", "what": "Sự việc: ", "severity": "Mức độ: ",
           "severities": SEVERITY_VI, "rule": " — quy tắc {rule}", "when": "Thời điểm: ",
           "host": ", máy {host}", "evidence": "Bằng chứng:", "to": "Người nhận: ",
           "ack": "Xác nhận đã tiếp nhận (dừng đồng hồ SLA lớp 1):", "open": "Xem: "},
    "en": {"escalation": "ESCALATION (step {step}): not acknowledged within {deadline}.",
           "level": ", level {level}", "system": "System: ", "unknown": "unknown",
           "unit": ", unit {unit}", "what": "What happened: ", "severity": "Severity: ",
           "severities": {}, "rule": " — rule {rule}", "when": "When: ",
           "host": ", host {host}", "evidence": "Evidence:", "to": "To: ",
           "ack": "Acknowledge (stops the layer-1 SLA clock):", "open": "Open: "},
}


def _alert_lines(a: dict[str, Any], recipients: list[dict[str, Any]], step: int, deadline: str,
                 lang: str) -> list[str]:
    w = _ALERT_WORDS[lang]
    lines = []
    if step:
        lines.append(w["escalation"].format(step=step, deadline=deadline))
    level = w["level"].format(level=a["level"]) if a.get("level") else ""
    lines += [
        w["system"] + (a["system_name"] or a["system_id"] or w["unknown"])
        + (f" ({a['system_id']})" if a["system_id"] else "") + level
        + (w["unit"].format(unit=a["unit"]) if a["unit"] else ""),
        w["what"] + (a["message"] or a["rule_name"]),
        w["severity"] + w["severities"].get(a["severity"], a["severity"])
        + (w["rule"].format(rule=a["rule_id"]) if a["rule_id"] else ""),
        w["when"] + _local(a["timestamp"]) + (w["host"].format(host=a["host"]) if a["host"] else ""),
    ]
    if a["evidence"]:
        lines.append(w["evidence"])
        lines += [f"  {k}: {v}" for k, v in a["evidence"].items()]
    if recipients:
        lines.append(w["to"] + _who(recipients))
    lines += [w["ack"], f"  {a['ack_command']}"]
    if a.get("link"):
        lines.append(w["open"] + a["link"])
    return lines


def _join(language: str, vi: list[str], en: list[str]) -> str:
    if language == "vi":
        return "\n".join(vi)
    if language == "en":
        return "\n".join(en)
    return "\n".join(vi) + "\n\n— English —\n" + "\n".join(en)


def _subject(language: str, vi: str, en: str) -> str:
    return {"vi": vi, "en": en}.get(language, f"{vi} / {en}")


def render_alert(a: dict[str, Any], language: str, recipients: list[dict[str, Any]],
                 step: int = 0, deadline: str = "") -> tuple[str, str]:
    """(subject, text) of an alert, or of its escalation step ``step``."""
    name = a["system_name"] or a["system_id"] or "?"
    sev_vi = SEVERITY_VI.get(a["severity"], a["severity"]).upper()
    tag = "[canhgac] " + ("CHUYỂN CẤP " if step and language != "en" else "")
    what = f"{name}: {a['rule_name']}"
    en_tag = "[canhgac] " + ("ESCALATION " if step else "")
    if language == "vi":
        subject = f"{tag}Cảnh báo {sev_vi} — {what}"
    elif language == "en":
        subject = f"{en_tag}{a['severity'].upper()} alert — {what}"
    else:
        subject = f"{tag}Cảnh báo {sev_vi} / {a['severity'].upper()} — {what}"
    return subject, _join(language, _alert_lines(a, recipients, step, deadline, "vi"),
                          _alert_lines(a, recipients, step, deadline, "en"))


def render_digest(route: str, alerts: list[dict[str, Any]], language: str,
                  window_start: float) -> tuple[str, str]:
    """(subject, text) for the alerts one route held back in one minute (storm control)."""
    n = len(alerts)
    when = dt.datetime.fromtimestamp(window_start, LOCAL).strftime("%d/%m/%Y %H:%M") + " (UTC+7)"
    systems = sorted({a["system_name"] or a["system_id"] for a in alerts})
    shown = alerts[:MAX_DIGEST_LINES]
    items = [f"  - {a['system_name'] or a['system_id']}: {a['rule_name']} "
             f"[{a['severity']}] — {a['ack_command']}" for a in shown]
    more_vi = [f"  … và {n - len(shown)} cảnh báo khác"] if n > len(shown) else []
    more_en = [f"  … and {n - len(shown)} more"] if n > len(shown) else []
    vi = [f"Bão cảnh báo trên tuyến {route}: thêm {n} cảnh báo trong phút {when}, gộp thành "
          "một bản tổng hợp.", f"Hệ thống: {', '.join(systems)}", *items, *more_vi,
          "Xem tất cả: canhgac alerts list --state open --since 1h"]
    en = [f"Alert storm on route {route}: {n} more alerts in the minute of {when}, sent as one "
          "digest.", f"Systems: {', '.join(systems)}", *items, *more_en,
          "See them all: canhgac alerts list --state open --since 1h"]
    subject = _subject(language, f"[canhgac] Tổng hợp {n} cảnh báo — tuyến {route}",
                       f"[canhgac] Digest of {n} alerts — route {route}"
                       if language == "en" else f"digest of {n} alerts")
    return subject, _join(language, vi, en)


def render_test(channel: str, language: str = "vi+en") -> tuple[str, str]:
    now = dt.datetime.now(LOCAL).strftime("%d/%m/%Y %H:%M:%S") + " (UTC+7)"
    vi = [f"Tin thử từ canhgac qua kênh {channel} lúc {now}. Không cần làm gì."]
    en = [f"Test message from canhgac through channel {channel} at {now}. No action needed."]
    return _subject(language, "[canhgac] Tin thử", "[canhgac] Test message"
                    if language == "en" else "test message"), _join(language, vi, en)
