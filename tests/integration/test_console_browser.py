"""The web console in a real browser (Debian chromium, headless, 1366×768) against a real
collector process on loopback: sign in, the overview of the example inventory, a live alert
queue, ack, search and a bad query, the language switch, and a unit viewer who cannot reach
another unit's system by URL. Any browser console error fails the test. Screenshots of each
page go to docs/img/console-*.png (the ones docs/console.md shows)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from docx import Document
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from canhgac.tls import make_ca
from collector.alerts.store import AlertStore
from national_center.local import prepare as prepare_center
from tests.fixtures.browser import console_errors, start_browser
from tests.fixtures.common import free_port
from tests.fixtures.console import (
    INVENTORY,
    OTHER_UNITS_SYSTEMS,
    ROOT,
    TTTT,
    YTE,
    Seeded,
    alert_doc,
    seed,
    trend_day,
)
from tests.fixtures.procs import AgentProc, CollectorProc, _spawn, diagnose

pytestmark = pytest.mark.integration

SHOTS = ROOT / "docs" / "img"
DEADLINE = 30.0


class Stack:
    """The seeded collector, the mock national center it reports to, one enrolled agent."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.seeded: Seeded = seed(base / "collector")
        center = prepare_center(base / "national", make_ca(base / "collector" / "tls"),
                                port=free_port())
        self.national = _spawn(center.argv, base / "national.log")
        sections = center.collector_sections
        self.collector = CollectorProc(base, free_port(), {
            "inventory": str(INVENTORY), "heartbeat_interval": "2s",
            "national": sections["national"],
            "outputs": {"store": {}, **sections["outputs"]}}).start()
        self.agent = AgentProc(base)
        self.agent.enroll(self.collector, system="cong-ttdt")
        self.agent.start(only={"host_metrics": {"interval": "2s"}})

    @property
    def url(self) -> str:
        return self.collector.url

    def stop(self) -> None:
        self.agent.stop()
        self.collector.stop()
        self.national.terminate()
        self.national.wait(15)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("console"))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[webdriver.Chrome]:
    driver = start_browser(tmp_path_factory.mktemp("browser"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def driver(browser: webdriver.Chrome, stack: Stack) -> Iterator[webdriver.Chrome]:
    """A signed-out browser at each test's start; any console error fails the test."""
    browser.get(stack.url + "/ui/login")
    browser.delete_all_cookies()
    console_errors(browser)  # drop what earlier tests left
    yield browser


def wait(driver: webdriver.Chrome, condition, what: str, stack: Stack | None = None):  # type: ignore[no-untyped-def]
    # The alert queue is swapped every poll: an element found a moment ago may be gone.
    ignored = (NoSuchElementException, StaleElementReferenceException)
    try:
        return WebDriverWait(driver, DEADLINE, poll_frequency=0.1,
                             ignored_exceptions=ignored).until(condition)
    except Exception as exc:
        logs = diagnose(stack.base) if stack else ""
        raise AssertionError(f"waited {DEADLINE:g} s for {what} ({type(exc).__name__}); "
                             f"page {driver.current_url}\n"
                             f"{driver.find_element(By.TAG_NAME, 'body').text[:2000]}\n{logs}") from None


def sign_in(driver: webdriver.Chrome, stack: Stack, token: str, path: str = "/ui/") -> None:
    driver.get(stack.url + path)
    wait(driver, ec.presence_of_element_located((By.ID, "token")), "the sign-in form")
    box = driver.find_element(By.ID, "token")
    box.send_keys(token)
    box.submit()
    wait(driver, lambda d: "/ui/login" not in d.current_url, "the page after sign-in")


def shot(driver: webdriver.Chrome, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"console-{name}.png"))


def no_errors(driver: webdriver.Chrome, allowed: tuple[str, ...] = ()) -> None:
    errors = console_errors(driver, allowed)
    assert not errors, "browser console errors:\n" + "\n".join(errors)


def test_sign_in_and_overview_of_the_example_inventory(driver, stack: Stack) -> None:
    sign_in(driver, stack, stack.seeded.analyst)
    assert driver.current_url.endswith("/ui/overview")
    heading = driver.find_element(By.TAG_NAME, "h1").text
    assert heading == "Tổng quan — Thừa Thiên Huế"
    table = driver.find_element(By.ID, "coverage").text
    for text in ("Cổng thông tin điện tử tỉnh", "Hệ thống quản lý bệnh viện", TTTT, YTE,
                 "chưa có đội ứng cứu tại chỗ"):
        assert text in table, text
    assert "Nguyễn Văn An" in driver.find_element(By.CLASS_NAME, "who").text
    # the trend from the coverage history (seeded 40 days back: no on-site team anywhere then)
    note = driver.find_element(By.ID, "trend-note").text
    assert trend_day().strftime("%d/%m/%Y") in note
    first = driver.find_element(By.CSS_SELECTOR, "tr.rollup.province td.layer .trend")
    assert "trend up" in (first.get_attribute("class") or "") and first.text.startswith("▲ +")
    shot(driver, "overview")
    no_errors(driver)


def test_live_queue_ack_and_evidence(driver, stack: Stack) -> None:
    sign_in(driver, stack, stack.seeded.analyst, "/ui/alerts")
    alert = stack.seeded.alerts["mot-cua"]
    row = f"alert-{alert}"
    wait(driver, ec.presence_of_element_located((By.ID, row)), "the seeded alert in the queue")
    # a new alert reaches the open page without a reload (htmx polling)
    new = alert_doc("his-bv-trung-uong", "Tiến trình lạ trên máy chủ HIS", severity=90)
    store = AlertStore(stack.collector.state / "alerts.db")
    try:
        store.register([new])
    finally:
        store.close()
    wait(driver, ec.presence_of_element_located((By.ID, f"alert-{new['event']['id']}")),
         "the new alert to appear without reload", stack)
    shot(driver, "alerts")
    wait(driver, lambda d: d.find_element(By.ID, f"ack-{alert}").click() or True, "the ack click")
    wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, f"#{row} td.state")
         .get_attribute("data-state") == "acknowledged", "the alert to show acknowledged", stack)
    wait(driver, lambda d: "Nguyễn Văn An" in d.find_element(By.ID, row).text, "who acknowledged")
    # the alert's page, then its evidence events one click away
    wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, f"#{row} a[href='/ui/alerts/{alert}']")
         .click() or True, "the click on the alert")
    wait(driver, ec.presence_of_element_located((By.ID, "resolve-form")), "the alert page")
    assert driver.find_element(By.ID, "alert-state").get_attribute("data-state") == "acknowledged"
    shot(driver, "alert")
    driver.find_element(By.ID, "evidence-link").click()
    wait(driver, ec.presence_of_element_located((By.ID, "search-total")), "the evidence events")
    assert driver.find_element(By.ID, "search-total").text.startswith("3 sự kiện")
    no_errors(driver)


def test_resolve_with_note_and_outcome(driver, stack: Stack) -> None:
    alert = stack.seeded.alerts["cong-ttdt"]
    sign_in(driver, stack, stack.seeded.analyst, f"/ui/alerts/{alert}")
    driver.find_element(By.ID, "resolve-note").send_keys("Đã chặn 10.1.2.3 trên tường lửa")
    Select(driver.find_element(By.ID, "resolve-outcome")).select_by_value("true_positive")
    driver.find_element(By.ID, "resolve-submit").click()
    wait(driver, lambda d: d.find_element(By.ID, "alert-state").get_attribute("data-state")
         == "resolved", "the alert to show resolved", stack)
    assert "Đã chặn 10.1.2.3 trên tường lửa" in driver.find_element(By.CLASS_NAME, "facts").text
    no_errors(driver)


def test_search_and_a_bad_query(driver, stack: Stack) -> None:
    sign_in(driver, stack, stack.seeded.analyst, "/ui/search")
    box = driver.find_element(By.ID, "q")
    box.send_keys("event.dataset:auth AND event.outcome:failure")
    driver.find_element(By.ID, "top").send_keys("canhgac.system.id")
    box.submit()
    wait(driver, ec.presence_of_element_located((By.ID, "search-total")), "the search results")
    assert driver.find_element(By.ID, "search-total").text.startswith("9 sự kiện")
    assert driver.find_element(By.ID, "histogram").is_displayed()
    assert "cong-ttdt" in driver.find_element(By.ID, "top-values").text
    shot(driver, "search")
    box = driver.find_element(By.ID, "q")
    box.clear()
    box.send_keys("source.port:[1 TO x]")
    box.submit()
    wait(driver, ec.presence_of_element_located((By.ID, "search-caret")), "the caret error")
    caret = driver.find_element(By.ID, "search-caret").get_attribute("textContent") or ""
    assert caret.split("\n")[1].index("^") == 18
    assert "position 19" in driver.find_element(By.ID, "search-error").text
    shot(driver, "search-error")
    # the 400 of the bad query is the page's own status, reported by the browser; nothing else
    no_errors(driver, allowed=("status of 400",))


def agent_online(driver: webdriver.Chrome) -> bool:
    driver.refresh()
    table = driver.find_elements(By.ID, "agents")
    return bool(table) and "trực tuyến" in table[0].text


def test_system_and_national_pages_and_the_language_switch(driver, stack: Stack) -> None:
    sign_in(driver, stack, stack.seeded.analyst, "/ui/systems/cong-ttdt")
    wait(driver, agent_online, "the enrolled agent online", stack)
    assert "Cổng thông tin điện tử tỉnh" in driver.find_element(By.TAG_NAME, "h1").text
    # the coverage history keeps a snapshot from the collector's start
    wait(driver, lambda d: (d.refresh() or True) and bool(d.find_elements(By.ID, "system-history")),
         "the coverage history", stack)
    # recent events come after the page, by htmx
    wait(driver, lambda d: "Đăng nhập thất bại" in d.find_element(By.ID, "system-events").text,
         "the system's recent events", stack)
    shot(driver, "system")
    driver.find_element(By.LINK_TEXT, "Kết nối quốc gia").click()
    wait(driver, lambda d: (d.refresh() or True) and "Kết nối hoạt động" in d.find_element(
        By.ID, "link-state").text, "the national link up after its first check", stack)
    checks = driver.find_element(By.ID, "national-checks").text
    for step in ("dns", "tcp", "tls", "ping", "clock", "signed"):
        assert step in checks
    assert "LỖI" not in checks and "Cổng thông tin điện tử tỉnh" in driver.find_element(
        By.ID, "national-deliveries").text
    shot(driver, "national")
    driver.find_element(By.LINK_TEXT, "English").click()
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en",
         "the English page")
    assert driver.current_url.endswith("/ui/national")
    driver.find_element(By.LINK_TEXT, "Overview").click()
    wait(driver, ec.presence_of_element_located((By.ID, "coverage")), "the English overview")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Overview — Thừa Thiên Huế"
    assert "no on-site team named" in driver.find_element(By.ID, "coverage").text
    shot(driver, "overview-en")
    driver.find_element(By.LINK_TEXT, "Tiếng Việt").click()
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "vi",
         "the Vietnamese page")
    no_errors(driver)


def test_a_unit_viewer_cannot_reach_another_units_system(driver, stack: Stack) -> None:
    sign_in(driver, stack, stack.seeded.viewer_yte)
    table = driver.find_element(By.ID, "coverage").text
    assert YTE in table and TTTT not in table
    assert driver.find_element(By.ID, "total-systems").text == "1"
    driver.get(stack.url + "/ui/systems/cong-ttdt")
    wait(driver, ec.presence_of_element_located((By.ID, "error-text")), "the not-found page")
    assert driver.find_element(By.TAG_NAME, "h1").text.startswith("404")
    assert "Cổng thông tin" not in driver.find_element(By.TAG_NAME, "body").text
    driver.get(stack.url + "/ui/systems/his-bv-trung-uong")
    wait(driver, ec.presence_of_element_located((By.ID, "system-layers")), "its own system")
    # the national page: no other unit's deliveries, no province-wide backlog
    driver.get(stack.url + "/ui/national")
    wait(driver, ec.presence_of_element_located((By.ID, "link-state")), "the national page")
    assert TTTT not in driver.find_element(By.ID, "national-deliveries").text
    assert not driver.find_elements(By.ID, "national-backlog")
    # the refused URL's 404 is the one console message expected
    no_errors(driver, allowed=("/ui/systems/cong-ttdt - Failed to load resource: the server "
                               "responded with a status of 404",))


def downloads_to(driver: webdriver.Chrome, folder: Path) -> None:
    """Let the headless browser save downloads, into ``folder`` (Chrome DevTools Protocol)."""
    folder.mkdir(parents=True, exist_ok=True)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(folder)})


def downloaded(driver: webdriver.Chrome, folder: Path, suffix: str, stack: Stack) -> Path:
    """The one finished file with ``suffix`` the browser saved (not its .crdownload)."""
    def done(_: object) -> Path | bool:
        found = [p for p in folder.iterdir() if p.name.endswith(suffix)]
        return found[0] if len(found) == 1 else False
    found = wait(driver, done, f"the downloaded {suffix} file in {folder}", stack)
    assert isinstance(found, Path)
    return found


def test_reports_page_downloads_the_annual_report_in_scope(driver, stack: Stack,
                                                           tmp_path: Path) -> None:
    year = str(time.gmtime(time.time() + 7 * 3600).tm_year)  # the province's year (UTC+7)
    # a unit viewer: the page offers its unit only; the Word file holds its unit only
    sign_in(driver, stack, stack.seeded.viewer_yte)
    driver.find_element(By.LINK_TEXT, "Báo cáo").click()
    wait(driver, ec.presence_of_element_located((By.ID, "report-form")), "the reports page")
    units = [o.get_attribute("value") for o in
             Select(driver.find_element(By.ID, "report-unit")).options]
    assert units == ["", YTE]
    assert driver.find_element(By.ID, "report-year").get_attribute("value") == year
    Select(driver.find_element(By.ID, "report-format")).select_by_value("docx")
    mine = tmp_path / "viewer"
    downloads_to(driver, mine)
    driver.find_element(By.ID, "report-submit").click()
    word = downloaded(driver, mine, ".docx", stack)
    assert word.name == f"bao-cao-{year}.docx"
    doc = Document(str(word))
    text = "\n".join([p.text for p in doc.paragraphs] +
                     [c.text for t in doc.tables for row in t.rows for c in row.cells])
    assert "Hệ thống quản lý bệnh viện" in text and YTE in text
    for other in OTHER_UNITS_SYSTEMS:  # the department is named as an owner: not a leak
        assert other not in text, other
    # another unit by URL: refused as an unknown unit would be, and nothing downloaded
    driver.get(f"{stack.url}/ui/reports/annual?year={year}&format=md&unit={TTTT}")
    wait(driver, ec.presence_of_element_located((By.ID, "report-error")), "the refusal")
    assert TTTT in driver.find_element(By.ID, "report-error").text  # its own words, echoed
    assert [p.name for p in mine.iterdir()] == [word.name]
    no_errors(driver, allowed=("/ui/reports/annual?year=", "status of 400"))
    # the province's analyst: one unit's workbook, in English, named in Vietnamese
    driver.delete_all_cookies()
    sign_in(driver, stack, stack.seeded.analyst, "/ui/reports")
    units = [o.get_attribute("value") for o in
             Select(driver.find_element(By.ID, "report-unit")).options]
    assert {TTTT, YTE} <= set(units)
    shot(driver, "reports")
    Select(driver.find_element(By.ID, "report-unit")).select_by_value(TTTT)
    Select(driver.find_element(By.ID, "report-format")).select_by_value("xlsx")
    Select(driver.find_element(By.ID, "report-lang")).select_by_value("en")
    theirs = tmp_path / "analyst"
    downloads_to(driver, theirs)
    driver.find_element(By.ID, "report-submit").click()
    book = downloaded(driver, theirs, ".xlsx", stack)
    assert book.name == f"annual-report-{year} - {TTTT}.xlsx"  # the UTF-8 filename* was read
    cells = [str(v) for ws in openpyxl.load_workbook(book, read_only=True).worksheets
             for row in ws.iter_rows(values_only=True) for v in row if v is not None]
    assert "Cổng thông tin điện tử tỉnh" in cells and "Hệ thống quản lý bệnh viện" not in cells
    no_errors(driver)
