"""Vietnamese and English text of the annual report (issue 9, item 6).

The report goes to the provincial People's Committee and the Ministry, so Vietnamese is
the default and is written as officials write it: full diacritics, dates dd/mm/yyyy,
decimal comma. English is for the rest of the team (``--lang en`` or ``CANHGAC_LANG``).
Every string is a template with named fields, so the two languages can order words
differently; a key missing in one language is a test failure, not a blank cell.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping

from canhgac import lang

LANGS, DEFAULT_LANG = lang.LANGS, lang.DEFAULT_LANG

_T: dict[str, tuple[str, str]] = {
    # -- the cover ---------------------------------------------------------------------
    "title": ("BÁO CÁO KẾT QUẢ BẢO ĐẢM AN TOÀN HỆ THỐNG THÔNG TIN THEO CẤP ĐỘ NĂM {year}",
              "Annual report on information system security by level, {year}"),
    "subtitle": ("và triển khai mô hình bảo vệ 4 lớp",
                 "and the 4-layer protection model"),
    "province": ("Địa bàn: {province}", "Province: {province}"),
    "scope_unit": ("Đơn vị báo cáo: {unit}", "Reporting unit: {unit}"),
    "scope_all": ("Phạm vi: toàn bộ các đơn vị", "Scope: every unit"),
    "period": ("Kỳ báo cáo: từ {start} đến {end}", "Period: {start} to {end}"),
    "provisional": ("Số liệu tính đến ngày {end}; năm {year} chưa kết thúc.",
                    "Figures up to {end}; {year} is not over yet."),
    "generated": ("Lập ngày {date} bằng canhgac.", "Generated on {date} by canhgac."),
    "due": ("Hạn gửi báo cáo: trước ngày 25/12/{year} (báo cáo kết quả thực hiện trước ngày "
            "25 tháng 12 hằng năm).",
            "Due before 25 December {year} (results are reported before 25 December each "
            "year)."),
    "history_from": ("Số liệu 4 lớp được tính từ lịch sử ảnh chụp hằng ngày, bắt đầu từ {date}.",
                     "The four layers are computed from the daily history, which starts on {date}."),
    "history_none": ("Chưa có lịch sử ảnh chụp: các chỉ số 4 lớp trong năm không tính được.",
                     "No history yet: the year's layer figures cannot be computed."),
    "summary": ("Tóm tắt", "Summary"),
    "sum_systems": ("Hệ thống thông tin đang vận hành: {n} (tổng số trong danh mục: {total})",
                    "Information systems in operation: {n} (listed in the inventory: {total})"),
    "sum_approved": ("Đã được phê duyệt cấp độ: {n}/{d} ({pct})",
                     "Level approved: {n}/{d} ({pct})"),
    "sum_plan": ("Đã triển khai đầy đủ phương án bảo đảm an toàn thông tin: {n}/{d} ({pct})",
                 "Security plan fully deployed: {n}/{d} ({pct})"),
    "sum_assessed": ("Được kiểm tra, đánh giá độc lập và đạt trong năm: {n}/{d} ({pct})",
                     "Independently inspected and passed during the year: {n}/{d} ({pct})"),
    "sum_alerts": ("Cảnh báo trong năm: {alerts}; sự cố được xác nhận: {incidents}",
                   "Alerts during the year: {alerts}; confirmed incidents: {incidents}"),
    "sum_national": ("Tỷ lệ thời gian kết nối, chia sẻ với hệ thống giám sát quốc gia: {pct}",
                     "Share of time connected to the national monitoring system: {pct}"),
    "sum_obligations": ("Nghĩa vụ còn tồn tại: {n} (quá hạn: {late})",
                        "Open obligations: {n} (overdue: {late})"),
    # -- section headings ----------------------------------------------------------------
    "s_inventory": ("1. Danh mục hệ thống thông tin theo cấp độ và trạng thái",
                    "1. Inventory by level and status"),
    "s_systems": ("Danh sách hệ thống thông tin", "Information systems"),
    "s_approvals": ("2. Phê duyệt cấp độ và triển khai phương án bảo đảm an toàn thông tin",
                    "2. Level approval and security plan deployment"),
    "s_layers": ("3. Mô hình bảo vệ 4 lớp trong năm (tính từ lịch sử)",
                 "3. The four layers over the year (from history)"),
    "layers_note": ("Mỗi ô là tỷ lệ trung bình theo thời gian trong các khoảng hệ thống đang vận "
                    "hành trong năm; “—”: không có số liệu.",
                    "Each cell is the time-weighted mean ratio while the system was in operation "
                    "during the year; “—”: no data."),
    "s_inspections": ("4. Kiểm tra, đánh giá và các phát hiện", "4. Inspections and findings"),
    "s_findings": ("Các phát hiện và việc khắc phục", "Findings and their follow-up"),
    "no_inspections": ("Không có đợt kiểm tra, đánh giá nào trong năm.",
                       "No inspection or assessment during the year."),
    "no_findings": ("Không có phát hiện nào được ghi nhận.", "No finding recorded."),
    "s_alerts": ("5. Sự cố và cảnh báo theo mức độ", "5. Incidents and alerts by severity"),
    "alerts_note": ("Thời gian tiếp nhận: từ khi cảnh báo phát sinh đến khi được xác nhận; "
                    "thời hạn theo cấp độ của hệ thống.",
                    "Time to acknowledge: from the alert to its acknowledgement; the deadline "
                    "depends on the system's level."),
    "s_national": ("6. Kết nối, chia sẻ thông tin với Trung tâm Giám sát an toàn không gian mạng "
                   "quốc gia",
                   "6. Link with the National Cybersecurity Monitoring Center"),
    "national_note": ("Tỷ lệ sẵn sàng: phần thời gian trong năm hệ thống đang vận hành mà liên kết "
                      "hoạt động và báo cáo được gửi trong thời hạn.",
                      "Availability: the share of the system's time in operation during the year "
                      "with the link up and reports delivered within the window."),
    "link_up": ("Liên kết với Trung tâm Giám sát an toàn không gian mạng quốc gia hoạt động "
                "{pct} thời gian được ghi nhận trong năm.",
                "The link with the national center was up {pct} of the recorded time during the "
                "year."),
    "s_obligations": ("7. Nghĩa vụ còn tồn tại và người chịu trách nhiệm",
                      "7. Open obligations and who owns them"),
    "no_obligations": ("Không còn nghĩa vụ nào tồn tại.", "No open obligation."),
    # -- column headings -------------------------------------------------------------------
    "c_level": ("Cấp độ", "Level"),
    "c_total": ("Tổng", "Total"),
    "c_id": ("Mã", "Id"),
    "c_system": ("Hệ thống", "System"),
    "c_unit_name": ("Đơn vị", "Unit"),
    "operated_by": ("(vận hành: {unit})", "(operated by {unit})"),
    "c_unit": ("Đơn vị chủ quản", "Owner unit"),
    "c_status": ("Trạng thái", "Status"),
    "c_hosting": ("Nơi đặt", "Hosted at"),
    "c_decision": ("Quyết định phê duyệt (cơ quan)", "Approval decision (authority)"),
    "c_approved_on": ("Ngày phê duyệt", "Approved on"),
    "c_on_time": ("Phê duyệt đúng hạn", "Approved on time"),
    "c_plan": ("Ngày triển khai phương án", "Plan deployed on"),
    "c_plan_on_time": ("Triển khai đúng hạn", "Deployed on time"),
    "c_days": ("Số ngày có số liệu", "Days with data"),
    "c_date": ("Ngày", "Date"),
    "c_assessor": ("Đơn vị kiểm tra, đánh giá", "Assessor"),
    "c_independent": ("Độc lập", "Independent"),
    "c_result": ("Kết quả", "Result"),
    "c_report": ("Báo cáo", "Report"),
    "c_finding": ("Phát hiện", "Finding"),
    "c_owner": ("Chịu trách nhiệm", "Owner"),
    "c_due": ("Hạn", "Due"),
    "c_state": ("Tình trạng", "State"),
    "c_overdue": ("Quá hạn", "Overdue"),
    "overdue_mark": ("QUÁ HẠN", "OVERDUE"),
    "c_severity": ("Mức độ", "Severity"),
    "c_alerts": ("Cảnh báo", "Alerts"),
    "c_incidents": ("Sự cố", "Incidents"),
    "c_acked": ("Đã tiếp nhận", "Acknowledged"),
    "c_in_sla": ("Trong thời hạn", "Within deadline"),
    "c_median": ("Trung vị thời gian tiếp nhận", "Median time to acknowledge"),
    "c_p90": ("P90 thời gian tiếp nhận", "P90 time to acknowledge"),
    "c_sharing": ("Hệ thống chia sẻ / đang vận hành", "Systems sharing / in operation"),
    "c_availability": ("Tỷ lệ sẵn sàng", "Availability"),
    "c_obligation": ("Nghĩa vụ", "Obligation"),
    # -- values ------------------------------------------------------------------------------
    "yes": ("Có", "Yes"),
    "no": ("Không", "No"),
    "unknown": ("Chưa rõ", "Unknown"),
    "none": ("—", "—"),
    "level_n": ("Cấp độ {n}", "Level {n}"),
    "all_levels": ("Tất cả", "All"),
    "status.planned": ("Kế hoạch", "Planned"),
    "status.building": ("Đang xây dựng", "Being built"),
    "status.operating": ("Đang vận hành", "In operation"),
    "status.upgrading": ("Đang nâng cấp", "Being upgraded"),
    "status.retired": ("Đã dừng hoạt động", "Retired"),
    "hosting.provincial_dc": ("Trung tâm dữ liệu tỉnh", "Provincial data center"),
    "hosting.unit": ("Tại đơn vị", "At the unit"),
    "hosting.cloud": ("Điện toán đám mây", "Cloud"),
    "hosting.other": ("Nơi khác", "Elsewhere"),
    "layer.onsite": ("Lớp 1: Lực lượng tại chỗ", "Layer 1: On-site team"),
    "layer.monitoring": ("Lớp 2: Giám sát, bảo vệ chuyên nghiệp",
                         "Layer 2: Professional monitoring"),
    "layer.assessment": ("Lớp 3: Kiểm tra, đánh giá độc lập", "Layer 3: Independent assessment"),
    "layer.national": ("Lớp 4: Kết nối hệ thống giám sát quốc gia",
                       "Layer 4: National monitoring link"),
    "result.passed": ("Đạt", "Passed"),
    "result.passed_with_findings": ("Đạt, có phát hiện", "Passed with findings"),
    "result.failed": ("Không đạt", "Failed"),
    "finding.open": ("Chưa khắc phục", "Open"),
    "finding.fixed": ("Đã khắc phục", "Fixed"),
    "finding.accepted": ("Chấp nhận rủi ro", "Risk accepted"),
    "severity.low": ("Thấp", "Low"),
    "severity.medium": ("Trung bình", "Medium"),
    "severity.high": ("Cao", "High"),
    "severity.critical": ("Nghiêm trọng", "Critical"),
    "unattributed": ("(không thuộc hệ thống nào)", "(no system)"),
    # -- obligations --------------------------------------------------------------------------
    "ob.approve_level": ("Phê duyệt cấp độ an toàn hệ thống thông tin",
                         "Get the security level approved"),
    "ob.reapprove": ("Phê duyệt lại cấp độ sau khi nâng cấp, mở rộng",
                     "Re-approve the level after the upgrade"),
    "ob.deploy_plan": ("Triển khai đầy đủ phương án bảo đảm an toàn thông tin theo hồ sơ được "
                       "phê duyệt",
                       "Deploy the security plan of the approved level dossier"),
    "department": ("Sở Thông tin và Truyền thông",
                   "Department of Information and Communications (Sở TT&TT)"),
    "ob.assess": ("Kiểm tra, đánh giá độc lập trong năm {year}",
                  "Independent inspection in {year}"),
    "ob.fix_finding": ("Khắc phục phát hiện: {title}", "Fix the finding: {title}"),
    "ob.onsite": ("Phân công lực lượng tại chỗ", "Name the on-site team"),
    "ob.monitoring": ("Bố trí giám sát, bảo vệ chuyên nghiệp 24/7",
                      "Arrange professional 24/7 monitoring"),
    "ob.contract_expired": ("Gia hạn hợp đồng giám sát (đã hết hạn ngày {date})",
                            "Renew the monitoring contract (expired on {date})"),
    "ob.contract_ending": ("Gia hạn hợp đồng giám sát (hết hạn ngày {date})",
                           "Renew the monitoring contract (ends on {date})"),
    "ob.national": ("Kết nối, chia sẻ thông tin với hệ thống giám sát quốc gia",
                    "Connect and share with the national monitoring system"),
    # -- errors (the CLI and the API) ----------------------------------------------------------
    "err.year": ("--year: {year} nằm ngoài khoảng cho phép ({low}–{high})",
                 "--year: {year} is out of range ({low}–{high})"),
    "err.year_nan": ("--year: không phải một năm: {value!r} (ví dụ 2025)",
                     "--year: not a year: {value!r} (e.g. 2025)"),
    "err.unit": ("--unit: không có đơn vị {unit!r}{hint}",
                 "--unit: unknown unit {unit!r}{hint}"),
    "err.format": ("--format: không hỗ trợ {value!r} (chọn một trong: {choices})",
                   "--format: {value!r} is not supported (one of: {choices})"),
    "err.lang": ("--lang: không hỗ trợ {value!r} (vi hoặc en)",
                 "--lang: {value!r} is not supported (vi or en)"),
    "did_you_mean": (" (có phải là {name!r}?)", " (did you mean {name!r}?)"),
    "written": ("Đã ghi báo cáo năm {year} ({format}) vào {path}",
                "Wrote the {year} report ({format}) to {path}"),
}


def resolve_lang(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The reader's language (canhgac.lang: ``--lang``, ``CANHGAC_LANG``, the locale, else
    Vietnamese); a value that is neither vi nor en raises ValueError in the report's words."""
    try:
        return lang.resolve_lang(explicit, env)
    except ValueError:
        given = explicit or (os.environ if env is None else env).get("CANHGAC_LANG")
        raise ValueError(text("err.lang", DEFAULT_LANG, value=given)) from None


def text(key: str, lang: str, **fields: object) -> str:
    vi, en = _T[key]
    return (en if lang == "en" else vi).format(**fields)


def keys() -> list[str]:
    return list(_T)


class Texts:
    """The report's words in one language: ``t("title", year=2025)``, dates, percentages."""

    def __init__(self, lang: str) -> None:
        if lang not in LANGS:
            raise ValueError(text("err.lang", DEFAULT_LANG, value=lang))
        self.lang = lang

    def __call__(self, key: str, **fields: object) -> str:
        return text(key, self.lang, **fields)

    def date(self, day: dt.date | str | None) -> str:
        """dd/mm/yyyy in Vietnamese (as official documents write it), ISO in English."""
        if day is None or day == "":
            return "—"
        if isinstance(day, str):
            from collector.inventory import parse_date

            try:
                day = parse_date(day)
            except ValueError:
                return str(day)
        return day.strftime("%d/%m/%Y") if self.lang == "vi" else day.isoformat()

    def pct(self, value: float | None) -> str:
        """95,5 % in Vietnamese, 95.5% in English; None (no data) is a dash."""
        if value is None:
            return "—"
        number = f"{value * 100:.1f}"
        if number.endswith(".0"):
            number = number[:-2]
        return f"{number.replace('.', ',')} %" if self.lang == "vi" else f"{number}%"

    def duration(self, seconds: float | None) -> str:
        """Time to acknowledge: minutes under two hours, else hours, else days."""
        if seconds is None:
            return "—"
        minutes = seconds / 60
        if minutes < 120:
            value, unit = minutes, ("phút" if self.lang == "vi" else "min")
        elif minutes < 48 * 60:
            value, unit = minutes / 60, ("giờ" if self.lang == "vi" else "h")
        else:
            value, unit = minutes / 1440, ("ngày" if self.lang == "vi" else "d")
        number = f"{value:.1f}".removesuffix(".0")
        if self.lang == "vi":
            number = number.replace(".", ",")
        return f"{number} {unit}"

    def yes_no(self, value: bool | None) -> str:
        return self("unknown") if value is None else self("yes") if value else self("no")

    def label(self, prefix: str, value: str) -> str:
        """A coded value (status, result, severity ...) in words; unknown codes as they are."""
        key = f"{prefix}.{value}"
        return self(key) if key in _T else value
