"""The web console over real HTTPS on loopback, with a plain aiohttp client: cookies, CSRF,
security headers, scope (a unit viewer never sees another unit's data, totals included)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fixtures.collector import RunningCollector, start_collector
from tests.fixtures.console import (
    INVENTORY,
    OTHER_UNITS_SYSTEMS,
    TTTT,
    YTE,
    Seeded,
    console_session,
    hidden,
    seed,
    sign_in,
    trend_day,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def console(tmp_path) -> AsyncIterator[tuple[RunningCollector, Seeded]]:
    seeded = seed(tmp_path / "collector")
    running, runner = await start_collector(
        tmp_path, {"inventory": str(INVENTORY), "outputs": {"store": {}}}, components=None)
    yield running, seeded
    await runner.cleanup()


async def _get(http: aiohttp.ClientSession, url: str, **kw: Any) -> tuple[int, str, Any]:
    async with http.get(url, allow_redirects=False, **kw) as r:
        return r.status, await r.text(), r.headers


async def test_sign_in_sets_a_strict_session_cookie_and_sign_out_ends_it(console) -> None:
    running, seeded = console
    async with console_session(running.ca) as http:
        status, _, headers = await _get(http, f"{running.url}/ui/overview")
        assert status == 303 and headers["Location"].startswith("/ui/login")
        r = await sign_in(http, running.url, seeded.analyst)
        assert r.status == 303 and r.headers["Location"] == "/ui/overview"
        cookie = next(v for v in r.headers.getall("Set-Cookie") if v.startswith("cg_session="))
        attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
        assert {"httponly", "secure", "samesite"} <= attrs and "SameSite=Strict" in cookie
        assert "Path=/ui/" in cookie
        status, html, _ = await _get(http, f"{running.url}/ui/overview")
        assert status == 200 and "Nguyễn Văn An" in html
        csrf = hidden(html, "csrf")
        async with http.post(f"{running.url}/ui/logout", data={"csrf": csrf},
                             allow_redirects=False) as out:
            assert out.status == 303
        status, _, headers = await _get(http, f"{running.url}/ui/overview")
        assert status == 303 and "/ui/login" in headers["Location"]


async def test_a_bad_or_revoked_token_is_refused_and_revocation_ends_the_session(console) -> None:
    running, seeded = console
    async with console_session(running.ca) as http:
        r = await sign_in(http, running.url, "cgo_0000.nope")
        assert r.status == 401
        r = await sign_in(http, running.url, seeded.viewer_yte)
        assert r.status == 303
        assert running.ctx.ports.operators.revoke("Trần Thị Bình")  # type: ignore[union-attr]
        status, _, headers = await _get(http, f"{running.url}/ui/overview")
        assert status == 303 and "expired=1" in headers["Location"]


async def test_login_without_its_form_value_is_refused(console) -> None:
    """Login CSRF: a sign-in posted from elsewhere lacks the double-submit value."""
    running, seeded = console
    async with console_session(running.ca) as http:
        async with http.post(f"{running.url}/ui/login", data={"token": seeded.analyst},
                             allow_redirects=False) as r:
            assert r.status == 403
            assert not any(c.startswith("cg_session=") for c in r.headers.getall("Set-Cookie", []))


async def test_every_write_needs_the_csrf_token_and_our_origin(console) -> None:
    running, seeded = console
    alert = seeded.alerts["cong-ttdt"]
    async with console_session(running.ca) as http:
        await sign_in(http, running.url, seeded.analyst)
        _, html, _ = await _get(http, f"{running.url}/ui/alerts")
        csrf = hidden(html, "csrf")
        url = f"{running.url}/ui/alerts/{alert}/ack"
        async with http.post(url, data={}, allow_redirects=False) as r:
            assert r.status == 403
        wrong = ("y" if csrf[0] == "x" else "x") + csrf[1:]  # one in 64 tokens starts with x
        async with http.post(url, data={"csrf": wrong}, allow_redirects=False) as r:
            assert r.status == 403
        async with http.post(url, data={"csrf": csrf}, headers={"Origin": "https://evil.example"},
                             allow_redirects=False) as r:
            assert r.status == 403
        async with http.post(url, data={"csrf": csrf}, headers={"Sec-Fetch-Site": "cross-site"},
                             allow_redirects=False) as r:
            assert r.status == 403
        assert running.ctx.ports.alert_desk.store.get(alert).status == "open"  # type: ignore[union-attr]
        async with http.post(url, data={"csrf": csrf, "next": "/ui/alerts"},
                             allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/ui/alerts"
        rec = running.ctx.ports.alert_desk.store.get(alert)  # type: ignore[union-attr]
        assert rec.status == "acknowledged" and rec.acked_by == "Nguyễn Văn An"
        # htmx sends the token as a header instead of a field
        async with http.post(f"{running.url}/ui/alerts/{alert}/resolve",
                             data={"note": "Đã chặn IP 10.1.2.3", "outcome": "true_positive"},
                             headers={"X-CSRF-Token": csrf}, allow_redirects=False) as r:
            assert r.status == 303
        assert running.ctx.ports.alert_desk.store.get(alert).outcome == "true_positive"  # type: ignore[union-attr]


async def test_security_headers_on_pages_errors_and_the_login(console) -> None:
    running, seeded = console
    async with console_session(running.ca) as http:
        for path in ("/ui/login", "/ui/overview"):
            _, _, h = await _get(http, running.url + path)
            csp = h["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "style-src 'self'" in csp
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert "frame-ancestors 'none'" in csp and h["X-Frame-Options"] == "DENY"
            assert h["X-Content-Type-Options"] == "nosniff" and h["Cache-Control"] == "no-store"
            assert h["Server"] == "canhgac" and not re.search(r"\d", h["Server"])
        await sign_in(http, running.url, seeded.analyst)
        status, html, h = await _get(http, f"{running.url}/ui/systems/no-such-system")
        assert status == 404 and "frame-ancestors 'none'" in h["Content-Security-Policy"]
        _, html, _ = await _get(http, f"{running.url}/ui/overview")
        # nothing the CSP would have to allow: no inline script, style or event handler
        assert "<script>" not in html and "<style" not in html and " style=" not in html
        assert not re.search(r"<[^>]+\son[a-z]+=", html)
        status, js, h = await _get(http, f"{running.url}/ui/static/htmx-2.0.11.min.js")
        assert status == 200 and h["Content-Type"].startswith("text/javascript")


async def test_a_unit_viewer_sees_only_its_unit_totals_included(console) -> None:
    running, seeded = console
    async with console_session(running.ca) as http:
        await sign_in(http, running.url, seeded.viewer_yte)
        _, html, _ = await _get(http, f"{running.url}/ui/overview")
        assert YTE in html and TTTT not in html and "cong-ttdt" not in html
        # the province card counts this unit's systems in operation only (1 of the 5)
        assert re.search(r'id="total-systems">1<', html)
        for path in ("/ui/systems/cong-ttdt", "/ui/systems/cong-ttdt/events"):
            status, _, _ = await _get(http, running.url + path)
            assert status == 404, path
        status, html, _ = await _get(http, f"{running.url}/ui/systems/his-bv-trung-uong")
        assert status == 200 and "Hệ thống quản lý bệnh viện" in html
        _, html, _ = await _get(http, f"{running.url}/ui/alerts")
        assert seeded.alerts["his-bv-trung-uong"] in html and seeded.alerts["cong-ttdt"] not in html
        assert TTTT not in html  # not even as a filter choice
        status, _, _ = await _get(http, f"{running.url}/ui/alerts/{seeded.alerts['cong-ttdt']}")
        assert status == 404
        # search: a query naming the other unit finds nothing; totals over the viewer's scope
        _, html, _ = await _get(http, f"{running.url}/ui/search",
                                params={"q": f'canhgac.unit.name:"{TTTT}" OR *', "since": "1h"})
        assert "cong-ttdt" not in html and "his-bv-trung-uong" in html
        # a viewer may not ack, even with a valid CSRF token
        csrf = hidden(html, "csrf")
        async with http.post(f"{running.url}/ui/alerts/{seeded.alerts['his-bv-trung-uong']}/ack",
                             data={"csrf": csrf, "next": "/ui/alerts"}, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/ui/alerts"
        _, html, _ = await _get(http, f"{running.url}/ui/alerts")  # the refusal, shown once
        assert "role &#39;viewer&#39; may not change alerts" in html
        _, html, _ = await _get(http, f"{running.url}/ui/alerts?error=Call+0123")
        assert "may not change alerts" not in html and "Call 0123" not in html
        assert running.ctx.ports.alert_desk.store.get(  # type: ignore[union-attr]
            seeded.alerts["his-bv-trung-uong"]).status == "open"


async def test_search_page_shows_the_caret_for_a_bad_query(console) -> None:
    running, seeded = console
    async with console_session(running.ca) as http:
        await sign_in(http, running.url, seeded.analyst)
        status, html, _ = await _get(http, f"{running.url}/ui/search",
                                     params={"q": "source.port:[1 TO x]", "since": "1h"})
        assert status == 400 and "position 19" in html
        caret = re.search(r'<pre class="caret" id="search-caret">(.*?)</pre>', html, re.S)
        assert caret and caret.group(1).split("\n")[1].index("^") == 18
        status, html, _ = await _get(http, f"{running.url}/ui/search",
                                     params={"q": "event.dataset:auth", "since": "1h",
                                             "top": "canhgac.system.id"})
        assert status == 200 and "9 sự kiện" in html and 'id="histogram"' in html
        assert 'id="top-values"' in html


async def test_language_switch_and_number_formats(console) -> None:
    running, seeded = console
    async with console_session(running.ca) as http:
        await sign_in(http, running.url, seeded.analyst)
        _, html, _ = await _get(http, f"{running.url}/ui/overview")
        assert "Tổng quan" in html and 'lang="vi"' in html
        async with http.get(f"{running.url}/ui/lang/en", params={"next": "/ui/alerts"},
                            allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/ui/alerts"
        _, html, _ = await _get(http, f"{running.url}/ui/overview")
        assert "Overview" in html and 'lang="en"' in html
        # never an open redirect
        async with http.get(f"{running.url}/ui/lang/vi", params={"next": "https://evil.example/"},
                            allow_redirects=False) as r:
            assert r.headers["Location"] == "/ui/overview"


async def test_reports_page_downloads_the_annual_report_within_the_viewers_scope(console) -> None:
    """The Báo cáo page's download is the API's report: a unit viewer's file holds its unit
    only, and another unit is refused exactly as an unknown one (no file, the report's words)."""
    running, seeded = console
    year = str(running.ctx.ports.annual_reports.years()[1])  # type: ignore[union-attr]
    async with console_session(running.ca) as http:
        await sign_in(http, running.url, seeded.viewer_yte)
        status, html, h = await _get(http, f"{running.url}/ui/reports")
        assert status == 200 and 'href="/ui/reports" aria-current="page"' in html
        units = re.findall(r'<option value="([^"]*)"', html.split('id="report-unit"')[1]
                           .split("</select>")[0])
        assert units == ["", YTE]  # its scope, then its unit: never another unit's name
        assert "<script>" not in html and " style=" not in html
        async with http.get(f"{running.url}/ui/reports/annual",
                            params={"year": year, "format": "md", "lang": "vi", "unit": ""}) as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "text/markdown; charset=utf-8"
            assert r.headers["Content-Disposition"] == f'attachment; filename="bao-cao-{year}.md"'
            assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
            text = await r.text()
        assert "Hệ thống quản lý bệnh viện" in text and YTE in text
        # no other unit's system or unit (the department, Sở Thông tin và Truyền thông, is
        # named as the owner of the inspection and the national link in every unit's report)
        for other in OTHER_UNITS_SYSTEMS:
            assert other not in text, other
        # another unit by URL: the same refusal as a unit that does not exist
        refused = {}
        for unit in (TTTT, "Sở Không Có"):
            status, html, h = await _get(http, f"{running.url}/ui/reports/annual",
                                         params={"year": year, "format": "docx", "unit": unit})
            assert status == 400 and "Content-Disposition" not in h
            assert h["Content-Type"].startswith("text/html")
            refused[unit] = re.search(r'id="report-error">(.*?)</div>', html, re.S).group(1)  # type: ignore[union-attr]
        assert refused[TTTT].replace(TTTT, "?") == refused["Sở Không Có"].replace("Sở Không Có", "?")
        status, html, _ = await _get(http, f"{running.url}/ui/reports/annual",
                                     params={"year": "1999", "format": "pdf"})
        assert status == 400 and "1999" in html
    async with console_session(running.ca) as http:
        await sign_in(http, running.url, seeded.analyst)
        async with http.get(f"{running.url}/ui/reports/annual",
                            params={"year": year, "format": "xlsx", "lang": "en", "unit": TTTT}) as r:
            assert r.status == 200 and r.headers["Content-Type"].endswith("spreadsheetml.sheet")
            # a Vietnamese unit name: ASCII for old clients, UTF-8 for the rest (RFC 6266/8187)
            assert r.headers["Content-Disposition"] == (
                f'attachment; filename="annual-report-{year} - So Thong tin va Truyen thong.xlsx"; '
                f"filename*=UTF-8''annual-report-{year}%20-%20S%E1%BB%9F%20Th%C3%B4ng%20tin%20"
                "v%C3%A0%20Truy%E1%BB%81n%20th%C3%B4ng.xlsx")
            body = await r.read()
        assert body[:2] == b"PK"  # a zip: the workbook (the browser test reads one back)


def _trend_cells(html: str, row_class: str) -> list[str]:
    """The trend texts of the first rollup row of ``row_class`` (province or unit)."""
    row = html.split(f'<tr class="rollup {row_class}">', 1)[1].split("</tr>", 1)[0]
    return [re.sub(r"<[^>]+>", "", m).strip() for m in
            re.findall(r'<span class="trend [a-z]+"[^>]*>(.*?)</span></span>', row, re.S)]


async def test_overview_trend_from_history_within_the_viewers_scope(console) -> None:
    """Each layer's province and unit figure beside its change since 30 days ago, from the
    coverage history (its first snapshot: no unit had an on-site team; now some have)."""
    running, seeded = console
    day = trend_day().strftime("%d/%m/%Y")
    async with console_session(running.ca) as http:
        await sign_in(http, running.url, seeded.analyst)
        _, html, _ = await _get(http, f"{running.url}/ui/overview")
        assert f"so với ngày {day}" in html
        now = running.ctx.ports.coverage.report_for(None)  # type: ignore[union-attr]
        onsite = round(now.province_rollup.layers["onsite"] * 100)
        assert onsite > 0
        cells = _trend_cells(html, "province")
        assert len(cells) == 4 and cells[0].startswith(f"▲ +{onsite} điểm")
        assert f"ngày {day}: 0%" in cells[0]
        province_then = [c.rsplit(": ", 1)[1] for c in cells]
    async with console_session(running.ca) as http:
        await sign_in(http, running.url, seeded.viewer_yte)
        _, html, _ = await _get(http, f"{running.url}/ui/overview")
        # the viewer's province row is its unit's systems then and now, never the province's:
        # the history's figures restricted to Sở Y tế (monitoring then: 0 %, the province's 33 %)
        cells = _trend_cells(html, "province")
        then = [c.rsplit(": ", 1)[1] for c in cells]
        assert then == ["0%", "0%", "0%", "0%"], cells
        assert province_then[1] == "33,3%"
        assert TTTT not in html
