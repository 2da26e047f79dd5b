"""Console text in Vietnamese (the default) and English, with diacritics as written.

``MESSAGES`` holds every label a template shows, by key; ``reason`` says why a
coverage layer scores what it does with the coverage model's own reason texts
(``collector.coverage.reasons``), so the console and the CLI use the same words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from collector.coverage.reasons import say

LANGS = ("vi", "en")
DEFAULT = "vi"
COOKIE = "cg_lang"

MESSAGES: dict[str, tuple[str, str]] = {
    "app": ("Canh gác — bảng điều khiển", "Canh gác — console"),
    "skip": ("Bỏ qua đến nội dung", "Skip to content"),
    "nav.overview": ("Tổng quan", "Overview"),
    "nav.alerts": ("Cảnh báo", "Alerts"),
    "nav.search": ("Tìm kiếm", "Search"),
    "nav.national": ("Kết nối quốc gia", "National link"),
    "nav.reports": ("Báo cáo", "Reports"),
    "nav.system": ("Hệ thống", "System"),
    "lang.switch": ("English", "Tiếng Việt"),
    "signed_in_as": ("Đăng nhập:", "Signed in as"),
    "role": ("vai trò", "role"),
    "scope": ("phạm vi", "scope"),
    "scope.all": ("toàn tỉnh", "whole province"),
    "logout": ("Đăng xuất", "Sign out"),
    "login.title": ("Đăng nhập", "Sign in"),
    "login.token": ("Mã truy cập của cán bộ vận hành", "Operator token"),
    "login.help": ("Mã do quản trị cấp bằng lệnh canhgac collector operator-token.",
                   "Issued by an administrator with canhgac collector operator-token."),
    "login.submit": ("Đăng nhập", "Sign in"),
    "login.bad": ("Mã truy cập không hợp lệ hoặc đã bị thu hồi.", "Invalid or revoked token."),
    "login.expired": ("Phiên làm việc đã hết hạn, vui lòng đăng nhập lại.",
                      "Your session has ended; please sign in again."),
    "login.stale": ("Biểu mẫu đã cũ, vui lòng thử lại.", "The form was stale; please try again."),
    "province": ("Tỉnh", "Province"),
    "unit": ("Đơn vị", "Unit"),
    "units": ("Đơn vị", "Units"),
    "system": ("Hệ thống", "System"),
    "systems": ("Hệ thống", "Systems"),
    "level": ("Cấp độ", "Level"),
    "status": ("Trạng thái", "Status"),
    "layer.onsite": ("L1 Tại chỗ", "L1 On-site"),
    "layer.monitoring": ("L2 Giám sát", "L2 Monitoring"),
    "layer.assessment": ("L3 Đánh giá", "L3 Assessment"),
    "layer.national": ("L4 Quốc gia", "L4 National"),
    "layer.onsite.long": ("Lực lượng tại chỗ", "On-site team"),
    "layer.monitoring.long": ("Giám sát, bảo vệ chuyên nghiệp", "Professional monitoring"),
    "layer.assessment.long": ("Kiểm tra, đánh giá độc lập", "Independent assessment"),
    "layer.national.long": ("Kết nối hệ thống giám sát quốc gia", "National center link"),
    "approval": ("Phê duyệt cấp độ", "Level approval"),
    "plan": ("Phương án bảo đảm ATTT", "Security plan"),
    "ok": ("Đạt", "OK"),
    "late": ("Trễ hạn", "Late"),
    "overdue": ("Quá hạn", "Overdue"),
    "not_yet": ("Chưa", "Not yet"),
    "in_operation": ("đang vận hành", "in operation"),
    "not_operating": ("chưa vận hành (không tính)", "not in operation (not counted)"),
    "approved": ("đã phê duyệt", "approved"),
    "plan_deployed": ("đã triển khai phương án", "plan deployed"),
    "fully_covered": ("đủ 4 lớp", "all 4 layers"),
    "generated": ("Cập nhật", "As of"),
    "no_systems": ("Không có hệ thống nào trong phạm vi của bạn.", "No system in your scope."),
    "national_not_configured": ("Chưa cấu hình kết nối quốc gia trên máy thu thập này.",
                                "The national link is not configured on this collector."),
    "alerts.title": ("Hàng đợi cảnh báo", "Alert queue"),
    "alerts.live": ("Tự cập nhật", "Live"),
    "alerts.none": ("Không có cảnh báo nào khớp bộ lọc.", "No alert matches the filters."),
    "severity": ("Mức độ", "Severity"),
    "severity.any": ("Mọi mức", "Any"),
    "severity.low": ("Thấp", "Low"),
    "severity.medium": ("Trung bình", "Medium"),
    "severity.high": ("Cao", "High"),
    "severity.critical": ("Nghiêm trọng", "Critical"),
    "state": ("Tình trạng", "State"),
    "state.any": ("Mọi tình trạng", "Any"),
    "state.open": ("Mới", "Open"),
    "state.acknowledged": ("Đã tiếp nhận", "Acknowledged"),
    "state.resolved": ("Đã xử lý", "Resolved"),
    "any": ("Tất cả", "All"),
    "filter": ("Lọc", "Filter"),
    "time": ("Thời gian", "Time"),
    "alert": ("Cảnh báo", "Alert"),
    "rule": ("Luật", "Rule"),
    "ack": ("Tiếp nhận", "Acknowledge"),
    "resolve": ("Xử lý xong", "Resolve"),
    "note": ("Ghi chú", "Note"),
    "note.resolve": ("Đã làm gì (bắt buộc)", "What was done (required)"),
    "outcome": ("Kết luận", "Outcome"),
    "outcome.true_positive": ("Tấn công thật", "True positive"),
    "outcome.false_positive": ("Báo nhầm", "False positive"),
    "outcome.benign": ("Thật nhưng được phép", "Benign"),
    "acked_by": ("Tiếp nhận bởi", "Acknowledged by"),
    "resolved_by": ("Xử lý bởi", "Resolved by"),
    "evidence": ("Bằng chứng", "Evidence"),
    "evidence.events": ("Xem {n} sự kiện bằng chứng", "Show the {n} evidence events"),
    "alert.event": ("Sự kiện cảnh báo", "Alert event"),
    "updates": ("lần cập nhật", "updates"),
    "read_only": ("Vai trò của bạn chỉ được xem.", "Your role is read-only."),
    "search.title": ("Tìm kiếm sự kiện", "Search events"),
    "search.query": ("Truy vấn", "Query"),
    "search.since": ("Trong khoảng", "Last"),
    "search.top": ("Giá trị nhiều nhất của trường", "Top values of field"),
    "search.run": ("Tìm", "Search"),
    "search.total": ("{n} sự kiện", "{n} events"),
    "search.took": ("trong {ms} ms", "in {ms} ms"),
    "search.histogram": ("Phân bố theo thời gian", "Over time"),
    "search.top_values": ("Giá trị nhiều nhất", "Top values"),
    "search.none": ("Không có sự kiện nào.", "No events."),
    "search.bad": ("Truy vấn không hợp lệ", "Invalid query"),
    "search.help": ("Cú pháp như lệnh canhgac query, ví dụ event.dataset:auth AND "
                    "event.outcome:failure", "Same syntax as canhgac query, e.g. "
                    "event.dataset:auth AND event.outcome:failure"),
    "search.unavailable": ("Kho sự kiện đang không truy cập được.", "The event store is unavailable."),
    "dataset": ("Loại dữ liệu", "Dataset"),
    "host": ("Máy", "Host"),
    "message": ("Nội dung", "Message"),
    "count": ("Số lượng", "Count"),
    "value": ("Giá trị", "Value"),
    "agents": ("Tác tử (agent)", "Agents"),
    "agent.online": ("trực tuyến", "online"),
    "agent.offline": ("mất kết nối", "offline"),
    "agent.revoked": ("đã thu hồi", "revoked"),
    "agent.none": ("Chưa có tác tử nào đăng ký cho hệ thống này.",
                   "No agent is enrolled for this system."),
    "version": ("Phiên bản", "Version"),
    "last_seen": ("Lần cuối", "Last seen"),
    "probes": ("Bộ thu thập (probe)", "Probes"),
    "recent_alerts": ("Cảnh báo gần đây", "Recent alerts"),
    "recent_events": ("Sự kiện gần đây (24 giờ)", "Recent events (24 h)"),
    "obligations": ("Nghĩa vụ theo cấp độ", "Level obligations"),
    "decision": ("Quyết định", "Decision"),
    "last_assessment": ("Lần đánh giá gần nhất", "Last assessment"),
    "team": ("Đội tại chỗ", "On-site team"),
    "provider": ("Đơn vị giám sát", "Monitoring provider"),
    "missing_probes": ("Thiếu probe", "Missing probes"),
    "hosts_without_agent": ("Máy chưa có tác tử trực tuyến", "Hosts without an online agent"),
    "reason": ("Lý do", "Reason"),
    "not_found": ("Không tìm thấy", "Not found"),
    "not_found.text": ("Không có trang hoặc hệ thống này trong phạm vi của bạn.",
                       "No such page or system in your scope."),
    "forbidden": ("Không được phép", "Not allowed"),
    "national.title": ("Kết nối Trung tâm Giám sát an toàn không gian mạng quốc gia",
                       "Link to the National Cybersecurity Monitoring Center"),
    "national.link_up": ("Kết nối hoạt động", "Link up"),
    "national.link_down": ("Mất kết nối", "Link down"),
    "national.checks": ("Kiểm tra kết nối (như canhgac check national)",
                        "Connectivity checks (as canhgac check national)"),
    "national.no_check": ("Chưa có lần kiểm tra nào.", "No check has run yet."),
    "national.check": ("Bước", "Check"),
    "national.result": ("Kết quả", "Result"),
    "national.detail": ("Chi tiết", "Detail"),
    "national.pass": ("đạt", "pass"),
    "national.fail": ("LỖI", "FAIL"),
    "national.backlog": ("Tồn đọng chờ gửi", "Backlog"),
    "national.backlog_events": ("{n} sự kiện, cũ nhất {age}", "{n} events, oldest {age}"),
    "national.last_check": ("Lần kiểm tra cuối", "Last check"),
    "national.last_delivery": ("Lần gửi thành công cuối theo hệ thống",
                               "Last accepted delivery per system"),
    "national.never": ("chưa gửi", "never"),
    "national.summaries": ("Báo cáo tổng hợp đã tạo", "Summaries made"),
    "error": ("Lỗi", "Error"),
    "layer": ("Lớp", "Layer"),
    "status.operating": ("đang vận hành", "in operation"),
    "status.building": ("đang xây dựng", "being built"),
    "result.passed": ("đạt", "passed"),
    "result.passed_with_findings": ("đạt, có phát hiện", "passed with findings"),
    "result.failed": ("không đạt", "failed"),
    "n_systems": ("{n} hệ thống", "{n} systems"),
    "history": ("Lịch sử bao phủ (12 tháng, các lần thay đổi)", "Coverage history (12 months, changes)"),
    "reports.title": ("Báo cáo", "Reports"),
    "reports.off": ("Máy thu thập này chưa bật thành phần bao phủ (coverage) nên chưa có báo cáo.",
                    "Reports need the coverage component, which is not enabled on this collector."),
    "reports.annual": ("Báo cáo năm", "Annual report"),
    "reports.annual.help": ("Báo cáo kết quả thực hiện gửi Sở Thông tin và Truyền thông (hạn trước "
                            "ngày 25 tháng 12 hằng năm): hệ thống, phê duyệt cấp độ, 4 lớp bảo vệ "
                            "theo lịch sử, kiểm tra đánh giá, cảnh báo, kết nối quốc gia, nghĩa "
                            "vụ còn mở.",
                            "The yearly results report to the Department of Information and "
                            "Communications (due before 25 December): systems, level approval, "
                            "the four layers from history, inspections, alerts, the national "
                            "link, open obligations."),
    "reports.year": ("Năm", "Year"),
    "reports.format": ("Định dạng", "Format"),
    "reports.format.docx": ("Word (.docx)", "Word (.docx)"),
    "reports.format.xlsx": ("Excel (.xlsx)", "Excel (.xlsx)"),
    "reports.format.pdf": ("PDF (.pdf)", "PDF (.pdf)"),
    "reports.format.md": ("Văn bản (.md)", "Text (.md)"),
    "reports.lang": ("Ngôn ngữ báo cáo", "Report language"),
    "reports.all_units": ("Toàn tỉnh (mọi đơn vị)", "Whole province (every unit)"),
    "reports.my_scope": ("Mọi hệ thống trong phạm vi của bạn", "Every system in your scope"),
    "reports.download": ("Tải về", "Download"),
    "reports.scope_note": ("Báo cáo chỉ gồm các hệ thống trong phạm vi của bạn, số tổng cũng vậy.",
                           "The report covers the systems in your scope only, totals included."),
    "reports.cli": ("Cùng báo cáo từ dòng lệnh:", "The same report from the command line:"),
    "trend.note": ("▲▼: thay đổi (điểm phần trăm) của tỉnh và từng đơn vị so với ngày {day}, "
                   "theo lịch sử bao phủ.",
                   "▲▼: change (percentage points) of the province and each unit since {day}, "
                   "from the coverage history."),
    "trend.points": ("{n} điểm", "{n} pts"),
    "trend.was": ("ngày {day}: {pct}", "on {day}: {pct}"),
    "day": ("Ngày", "Day"),
    "changed": ("Thay đổi", "Changed"),
}

def pick(lang: str | None) -> str:
    return lang if lang in LANGS else DEFAULT


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **values)``: the label in ``lang``; an unknown key shows itself (a bug to see)."""
    index = LANGS.index(pick(lang))

    def t(key: str, **values: object) -> str:
        pair = MESSAGES.get(key)
        text = pair[index] if pair else key
        return text.format(**values) if values else text

    return t


def reason(layer: Any, lang: str) -> str:
    """Why a layer scores what it does, in ``lang``: the coverage model's reason codes said
    by ``collector.coverage.reasons.say`` (the CLI's words); the English text where a
    result carries no codes."""
    codes = getattr(layer, "reasons", None)
    return say(codes, pick(lang)) if codes else str(getattr(layer, "reason", ""))
