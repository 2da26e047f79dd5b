"""Why a layer scores what it does, in Vietnamese and English.

The model (model.py) records each reason as a code with its figures; the text is made
here, so the CLI, the API and the reports can say it in the reader's language
(``canhgac coverage --lang vi|en``, ``CANHGAC_LANG``). ``reason`` in the JSON stays
English for the API's existing readers; ``reasons`` carries the codes.
"""

from __future__ import annotations

from typing import Any

# code: (Vietnamese, English) — str.format templates over the reason's params
REASONS: dict[str, tuple[str, str]] = {
    "onsite.no_team": ("chưa có đội ứng cứu tại chỗ", "no on-site team named"),
    "onsite.roster_only": (
        "đã có đội tại chỗ; không có cảnh báo đến hạn trong kỳ (mới có danh sách)",
        "team named; no alerts due in the window (roster only)"),
    "onsite.acked": ("{in_time}/{total} cảnh báo được xác nhận trong thời hạn",
                     "{in_time} of {total} alerts acknowledged within SLA"),
    "monitoring.contract": ("giám sát chuyên nghiệp theo hợp đồng với {provider}, còn hiệu lực "
                            "đến {until}",
                            "contracted monitoring by {provider} in force until {until}"),
    "monitoring.contract_ending": ("hợp đồng còn {days} ngày", "ends in {days} days"),
    "monitoring.contract_expired": ("hợp đồng giám sát với {provider} đã hết hạn {until}",
                                    "contract with {provider} expired {until}"),
    "monitoring.no_hosts": ("chưa khai báo máy chủ và chưa có agent nào đăng ký",
                            "no hosts listed and no agent enrolled"),
    "monitoring.hosts": ("{covered}/{hosts} máy chủ có agent trực tuyến chạy đủ các probe "
                         "bắt buộc",
                         "{covered} of {hosts} hosts have an online agent running every "
                         "required probe"),
    "assessment.failed": ("kiểm tra, đánh giá độc lập ngày {date} không đạt: khắc phục tồn tại "
                          "và đánh giá lại",
                          "independent assessment {date} failed: fix the findings and assess "
                          "again"),
    "assessment.done": ("đã kiểm tra, đánh giá độc lập ngày {date} ({result})",
                        "assessed independently {date} ({result})"),
    "assessment.due": ("hạn đánh giá năm {year}: 31/12/{year}",
                       "{year}'s assessment due by 31/12/{year}"),
    "assessment.self_only": ("mới có tự đánh giá, chưa có đánh giá độc lập",
                             "only self-assessments recorded"),
    "assessment.none": ("chưa có kết quả kiểm tra, đánh giá độc lập",
                        "no independent assessment recorded"),
    "assessment.stale": ("không có đánh giá độc lập trong năm {previous} và {year} (lần gần "
                         "nhất {last})",
                         "no independent assessment in {previous} or {year} (last {last})"),
    "assessment.findings_overdue": ("{n} tồn tại quá hạn khắc phục", "{n} finding(s) overdue"),
    "national.disabled": ("hệ thống chưa bật chia sẻ với hệ thống giám sát quốc gia",
                          "national sharing not enabled for this system"),
    "national.not_configured": ("chưa cấu hình kết nối quốc gia",
                                "national link not configured"),
    "national.down": ("mất kết nối với hệ thống giám sát quốc gia", "national link down"),
    "national.no_delivery": ("chưa gửi được báo cáo nào của hệ thống",
                             "no report of this system delivered yet"),
    "national.stale": ("lần gửi gần nhất cách đây {age} giây, quá thời hạn {window} giây",
                       "last delivery {age} s ago, window {window} s"),
    "national.up": ("kết nối tốt, báo cáo được gửi trong thời hạn",
                    "link up, reports delivered within the window"),
    "national.available": ("kết nối sẵn sàng {pct} thời gian trong {days} ngày",
                           "link available {pct} over {days} days"),
    "result.passed": ("đạt", "passed"),
    "result.passed_with_findings": ("đạt, có tồn tại", "passed_with_findings"),
    "result.failed": ("không đạt", "failed"),
}


def reason(code: str, **params: Any) -> dict[str, Any]:
    """One reason as the model records it (code + figures)."""
    if code not in REASONS:
        raise KeyError(f"no text for coverage reason {code!r}")
    return {"code": code, "params": params}


def _vi_date(value: Any) -> Any:
    text = str(value)
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        return f"{text[8:10]}/{text[5:7]}/{text[:4]}"
    return value


def say(reasons: list[dict[str, Any]], lang: str = "en") -> str:
    """The reasons as one sentence in ``lang`` (vi: dates dd/mm/yyyy, decimal comma)."""
    parts = []
    for r in reasons:
        vi, en = REASONS[r["code"]]
        params = dict(r.get("params") or {})
        if lang == "vi":
            for key in ("date", "until", "last"):
                if key in params:
                    params[key] = _vi_date(params[key])
            if "result" in params:
                params["result"] = REASONS.get(f"result.{params['result']}", (params["result"],))[0]
            if "pct" in params:
                params["pct"] = str(params["pct"]).replace(".", ",")
        parts.append((vi if lang == "vi" else en).format(**params))
    return "; ".join(parts)
