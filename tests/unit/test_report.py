"""The annual report (issue 9, items 5 and 6; docs/reports.md): figures from a year of real
history and alerts, every format written and read back, both languages, unit scoping
through the model, the API and the CLI, and one clear message for each bad argument."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import shutil
import subprocess
import tomllib
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docx
import openpyxl
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from canhgac.errors import UserError
from collector.alerts.access import Access, ensure_token
from collector.alerts.store import AlertStore
from collector.coverage.config import CoverageConfig
from collector.coverage.history import HistoryStore, Snapshot
from collector.inventory import Finding as InventoryFinding
from collector.inventory import Hosting, Inventory
from collector.report import cli as report_cli
from collector.report.api import ReportAPI, gather
from collector.report.i18n import LANGS, Texts, keys, resolve_lang, text
from collector.report.model import AnnualReport, layer_means
from collector.report.render import render
from tests.fixtures import report as fx

ROOT = Path(__file__).resolve().parents[2]
CFG = CoverageConfig()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Inventory, HistoryStore, AlertStore]:
    tmp = tmp_path_factory.mktemp("report")
    inv = fx.inventory()
    return inv, fx.history(tmp / "history.db", inv, CFG), fx.alerts(tmp / "alerts.db")


@pytest.fixture(scope="module")
def province(world: tuple[Inventory, HistoryStore, AlertStore]) -> AnnualReport:
    inv, history, alerts = world
    return gather(inv, CFG, fx.YEAR, fx.NOW, history=history, alerts=alerts)


def sys_(r: AnnualReport, sid: str) -> Any:
    return next(s for s in r.systems if s.id == sid)


# -- what is computed ----------------------------------------------------------------------
def test_layers_come_from_the_years_history_not_todays_coverage(province: AnnualReport) -> None:
    """dvc has been fully monitored since July: today's coverage says 100 %, the year ~half."""
    dvc = sys_(province, "dvc")
    assert 0.45 < (dvc.layers["monitoring"] or 0) < 0.52
    assert sys_(province, "cong-ttdt").layers["monitoring"] == 1.0
    # the national link was down for all of March: 31 of ~353 days lost
    availability = sys_(province, "cong-ttdt").full_share["national"]
    assert availability == pytest.approx(1 - 31 / 353, abs=0.01)
    # qlvb went live on 1 May (after the outage): only its days in operation count
    assert sys_(province, "qlvb").observed_days == pytest.approx(233, abs=1)
    assert sys_(province, "qlvb").full_share["national"] == 1.0
    # the province: the mean over the systems that share (his and mail do not)
    assert province.national_availability == pytest.approx((2 * availability + 1) / 3)
    assert sys_(province, "emr").layers["monitoring"] is None  # being built: no obligation
    assert province.history_from == dt.date(2025, 1, 1)


def test_inventory_approvals_and_inspections(province: AnnualReport) -> None:
    assert len(province.systems) == 6 and len(province.in_operation) == 5
    assert province.counts[3] == {"operating": 1, "upgrading": 0, "building": 1, "planned": 0,
                                  "retired": 0}
    assert (province.approved, province.plan_deployed) == (4, 4)
    cong, dvc, qlvb = (sys_(province, x) for x in ("cong-ttdt", "dvc", "qlvb"))
    assert (cong.decision, cong.approved_on, cong.approved_on_time) == (
        "1234/QĐ-UBND", dt.date(2024, 8, 15), True)
    assert dvc.plan_on_time is False  # deployed 01/02/2025, after the December 2024 deadline
    assert qlvb.approved_on_time is True  # new system: approved before it went live
    # a failed inspection is an inspection, not a pass; an old self-assessment is neither
    assert [(i.system_id, i.result) for i in province.inspections] == [
        ("cong-ttdt", "passed_with_findings"), ("dvc", "failed"), ("qlvb", "passed")]
    assert province.assessed == 2 and not dvc.assessed and not sys_(province, "mail").assessed


def test_alerts_by_severity_with_time_to_acknowledge(province: AnnualReport) -> None:
    by = {a.severity: a for a in province.alerts}
    assert list(by) == ["critical", "high", "medium", "low", "total"]
    assert (by["total"].alerts, by["total"].incidents, by["total"].acknowledged) == (10, 3, 9)
    assert (by["critical"].within_sla, by["critical"].median_ack) == (2, 3600.0)
    assert by["high"].within_sla == 1  # 5 h on a level-3 system (4 h) is late
    assert by["medium"].alerts == 4  # one with no severity number counts as medium
    assert by["low"].acknowledged == 1


def test_open_obligations_with_owners(province: AnnualReport) -> None:
    got = {(o.system_id, o.kind): o for o in province.obligations}
    assert got[("his", "approve_level")].overdue and got[("his", "approve_level")].owner == fx.YTE
    assert got[("his", "approve_level")].due == dt.date(2024, 9, 30)
    assert got[("his", "contract_expired")].params == {"date": dt.date(2025, 3, 31)}
    assert not got[("dvc", "assess")].overdue  # the year is not over on 20 December
    assert ("mail", "onsite") in got and ("mail", "national") in got
    assert not any(o.system_id == "emr" for o in province.obligations)  # being built
    assert province.obligations[0].overdue  # overdue first
    findings = [o for o in province.obligations if o.kind == "fix_finding"]
    if province.findings:  # the inventory records findings (issue 9 item 1)
        assert [o.params["title"] for o in findings] == [
            "Mật khẩu quản trị mặc định trên máy chủ web-02"]
        assert findings[0].owner == "Phòng Công nghệ thông tin" and findings[0].overdue


def test_the_yearly_inspection_and_the_national_link_are_the_departments(
        world: tuple[Inventory, HistoryStore, AlertStore]) -> None:
    """Issue 9: the report named the owner unit for the inspection obligation; the Hải
    Dương letter (2b, 2c) gives the yearly inspection and the national link to the Sở."""
    _, history, alerts = world
    inv = fx.inventory()
    r = gather(inv, CFG, fx.YEAR, fx.NOW, history=history, alerts=alerts)
    got = {(o.system_id, o.kind): o for o in r.obligations}
    assert got[("dvc", "assess")].owner == "" and got[("mail", "national")].owner == ""
    assert got[("mail", "onsite")].owner == got[("mail", "onsite")].unit  # still the unit's
    table = render(r, "md", "vi").decode()
    assert "| Sở Thông tin và Truyền thông |" in table
    assert "Department of Information and Communications" in render(r, "md", "en").decode()
    inv.department = "Sở Khoa học và Công nghệ"
    r = gather(inv, CFG, fx.YEAR, fx.NOW, history=history, alerts=alerts)
    got = {(o.system_id, o.kind): o for o in r.obligations}
    assert got[("dvc", "assess")].owner == "Sở Khoa học và Công nghệ"
    assert got[("mail", "national")].owner == "Sở Khoa học và Công nghệ"


def test_layer_means_weigh_time_and_skip_what_is_not_known() -> None:
    def snap(at: float, ratio: float, status: str = "operating") -> Snapshot:
        day = dt.date.fromtimestamp(at)
        return Snapshot("s", day, int(at) % 1000, at, "change", "S", "U", 2, status,
                        (ratio, ratio, ratio, ratio), 0)

    t0 = 1_000_000.0
    means, full, seen = layer_means([snap(t0 + 100, 1.0), snap(t0 + 400, 0.0)], t0, t0 + 500)
    assert seen == 400 and means["monitoring"] == pytest.approx(0.75)  # 300 s of 400 full
    assert full["national"] == pytest.approx(0.75)
    means, _, seen = layer_means([snap(t0, 1.0, "building")], t0, t0 + 500)
    assert seen == 0 and means["onsite"] is None


# -- every format, read back ---------------------------------------------------------------
def read_docx(data: bytes) -> str:
    doc = docx.Document(io.BytesIO(data))
    parts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        parts += [c.text for row in table.rows for c in row.cells]
    return "\n".join(parts)


def read_xlsx(data: bytes) -> str:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    return "\n".join(str(v) for ws in book.worksheets for row in ws.iter_rows(values_only=True)
                     for v in row if v is not None)


def read_pdf(data: bytes, tmp: Path) -> str:
    assert shutil.which("pdftotext"), "poppler-utils missing: run deploy/test-deps.sh"
    path = tmp / "r.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"],
                          capture_output=True, check=True).stdout.decode("utf-8")


def read_back(fmt: str, data: bytes, tmp: Path) -> str:
    if fmt == "md":
        return data.decode("utf-8")
    if fmt == "docx":
        return read_docx(data)
    if fmt == "xlsx":
        return read_xlsx(data)
    return read_pdf(data, tmp)


VI = ("BÁO CÁO KẾT QUẢ BẢO ĐẢM AN TOÀN HỆ THỐNG THÔNG TIN THEO CẤP ĐỘ NĂM 2025",
      "Thừa Thiên Huế", "Hệ thống quản lý bệnh viện", "Sở Thông tin và Truyền thông",
      "UBND thành phố Huế", "Phê duyệt cấp độ an toàn hệ thống thông tin", "30/09/2024",
      "1234/QĐ-UBND", "Giám sát, bảo vệ", "Nghiêm trọng", "91,2 %",
      "Gia hạn hợp đồng giám sát (đã hết hạn ngày 31/03/2025)", "trước ngày 25/12/2025",
      "30/09/2024 — QUÁ HẠN",
      "Công ty Kiểm định An toàn thông tin Việt Nam", "Đạt, có phát hiện")


@pytest.mark.parametrize("fmt", ["md", "docx", "xlsx", "pdf"])
def test_every_format_in_vietnamese_reads_back_with_diacritics(
        fmt: str, province: AnnualReport, tmp_path: Path) -> None:
    data = render(province, fmt, "vi")
    content = read_back(fmt, data, tmp_path)
    assert "\ufffd" not in content
    flat = " ".join(unicodedata.normalize("NFC", content).split())
    for needle in VI:
        assert needle in flat, (fmt, needle)


@pytest.mark.parametrize("fmt", ["md", "docx", "xlsx", "pdf"])
def test_every_format_in_english(fmt: str, province: AnnualReport, tmp_path: Path) -> None:
    content = " ".join(read_back(fmt, render(province, fmt, "en"), tmp_path).split())
    for needle in ("Annual report on information system security by level, 2025",
                   "Get the security level approved", "2024-09-30", "91.2%", "Critical",
                   "Link with the National Cybersecurity Monitoring Center", "Hệ thống quản lý bệnh viện"):
        assert needle in content, (fmt, needle)
    assert "Nghĩa vụ" not in content


def test_pdf_page_renders_to_an_image(province: AnnualReport, tmp_path: Path) -> None:
    assert shutil.which("pdftoppm"), "poppler-utils missing: run deploy/test-deps.sh"
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(render(province, "pdf", "vi"))
    subprocess.run(["pdftoppm", "-r", "40", "-f", "1", "-l", "1", "-png", str(pdf),
                    str(tmp_path / "page")], check=True)
    [png] = tmp_path.glob("page*.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_markup_in_the_inventory_is_text(world: tuple[Inventory, HistoryStore, AlertStore],
                                        tmp_path: Path) -> None:
    inv, history, alerts = world
    r = gather(inv, CFG, fx.YEAR, fx.NOW, history=history, alerts=alerts)
    r.systems[0].name = "<b>Cổng</b> & <script> của hệ thống có tên rất dài"
    text = " ".join(read_pdf(render(r, "pdf", "vi"), tmp_path).split())
    assert "<b>Cổng</b> & <script> của hệ thống có tên rất dài" in text


# -- scoping --------------------------------------------------------------------------------------
DEPARTMENT = "Sở Khoa học và Công nghệ"
OTHERS = ("Sở Thông tin và Truyền thông", "Cổng thông tin", "Cổng dịch vụ công", "UBND thành phố Huế",
          "Thư điện tử", "Quản lý văn bản")


def assert_only_yte(r: AnnualReport) -> None:
    assert {s.unit for s in r.systems} == {fx.YTE}
    assert len(r.in_operation) == 1 and r.approved == 0
    assert r.total_alerts.alerts == 2  # his's two alerts of 2025, none of the others'
    assert {o.unit for o in r.obligations} == {fx.YTE}
    assert r.national_availability is None and r.units == [fx.YTE]


def test_unit_report_never_shows_another_unit(world: tuple[Inventory, HistoryStore, AlertStore],
                                              tmp_path: Path) -> None:
    inv, history, alerts = world
    # The department owns the yearly inspection in every unit's report; named apart from
    # the units here so that naming it is not mistaken for showing another unit.
    inv.department = DEPARTMENT
    by_unit = gather(inv, CFG, fx.YEAR, fx.NOW, history=history, alerts=alerts, unit=fx.YTE)
    by_scope = gather(inv, CFG, fx.YEAR, fx.NOW, history=history, alerts=alerts,
                      keep=lambda sid, unit: unit == fx.YTE)
    for r in (by_unit, by_scope):
        assert_only_yte(r)
    for fmt in ("md", "pdf"):
        content = " ".join(read_back(fmt, render(by_unit, fmt, "vi"), tmp_path).split())
        assert "Đơn vị báo cáo: Sở Y tế" in content and DEPARTMENT in content
        for other in OTHERS:
            assert other not in content, (fmt, other)


# -- the API ----------------------------------------------------------------------------------------
class Op:
    def __init__(self, name: str, scope: Any) -> None:
        self.name, self.role, self.scope = name, "viewer", scope


class Operators:
    async def authenticate(self, request: web.Request) -> Op | None:
        return {"t-yte": Op("yte.an", {"units": [fx.YTE]}), "t-soc": Op("soc", None)}.get(
            request.headers.get("Authorization", "")[7:])


@pytest.fixture
async def api(world: tuple[Inventory, HistoryStore, AlertStore], tmp_path: Path
              ) -> AsyncIterator[TestClient]:
    from collector.inventory import InventoryHolder

    inv, history, alerts = world
    ensure_token(tmp_path)
    app = web.Application()
    app.add_routes(ReportAPI(InventoryHolder(inv), CFG, access=Access(Operators(), tmp_path / "admin.token"),
                             history=history, alerts=alerts, clock=lambda: fx.NOW).routes())
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    yield client
    await client.close()


def admin(tmp_path: Path) -> dict[str, str]:
    return {"Authorization": f"Bearer {(tmp_path / 'admin.token').read_text().strip()}"}


async def test_api_scoped_operator_gets_its_unit_only(
        api: TestClient, tmp_path: Path, world: tuple[Inventory, HistoryStore, AlertStore]) -> None:
    world[0].department = DEPARTMENT  # as in test_unit_report_never_shows_another_unit
    yte = {"Authorization": "Bearer t-yte"}
    r = await api.get("/v1/reports/annual", params={"year": "2025"}, headers=yte)
    body = await r.json()
    assert r.status == 200 and {s["unit"] for s in body["systems"]} == {fx.YTE}
    assert body["alerts"][-1]["alerts"] == 2 and body["unit"] == ""
    # another unit answers exactly as an unknown one, and suggests nothing it may not see
    r = await api.get("/v1/reports/annual", params={"year": "2025", "unit": fx.STTTT}, headers=yte)
    assert r.status == 400
    assert (await r.json())["error"] == f"--unit: không có đơn vị {fx.STTTT!r}"
    r = await api.get("/v1/reports/annual", params={"year": "2025", "format": "md"}, headers=yte)
    content = (await r.read()).decode()
    assert r.status == 200 and r.content_type == "text/markdown"
    for other in OTHERS:
        assert other not in content
    r = await api.get("/v1/reports/annual", params={"year": "2025"})
    assert r.status == 401
    # the whole province for the local admin; NFD-typed unit names are the same unit
    nfd = unicodedata.normalize("NFD", fx.YTE)
    r = await api.get("/v1/reports/annual", params={"year": "2025", "unit": nfd, "format": "pdf"},
                      headers=admin(tmp_path))
    assert r.status == 200 and r.content_type == "application/pdf"
    assert (await r.read())[:5] == b"%PDF-"
    # a unit's report is named for it: ASCII for every client, UTF-8 (NFC) for the rest
    assert r.headers["Content-Disposition"] == (
        'attachment; filename="bao-cao-2025 - So Y te.pdf"; '
        "filename*=UTF-8''bao-cao-2025%20-%20S%E1%BB%9F%20Y%20t%E1%BA%BF.pdf")
    r = await api.get("/v1/reports/annual", params={"year": "2025", "format": "md"},
                      headers=admin(tmp_path))
    assert r.headers["Content-Disposition"] == 'attachment; filename="bao-cao-2025.md"'


@pytest.mark.parametrize("params, error", [
    ({"year": "1999"}, "--year: 1999 nằm ngoài khoảng cho phép (2000–2025)"),
    ({"year": "2026"}, "--year: 2026 nằm ngoài khoảng cho phép (2000–2025)"),
    ({"year": "hai"}, "--year: không phải một năm: 'hai' (ví dụ 2025)"),
    ({"year": "2025", "unit": "Sở Y Tế"}, "--unit: không có đơn vị 'Sở Y Tế' (có phải là 'Sở Y tế'?)"),
    ({"year": "2025", "unit": "Sở Y Tế", "lang": "en"},
     "--unit: unknown unit 'Sở Y Tế' (did you mean 'Sở Y tế'?)"),
    ({"year": "2025", "format": "odt"},
     "--format: không hỗ trợ 'odt' (chọn một trong: docx, xlsx, pdf, md, json)"),
    ({"year": "2025", "lang": "fr"}, "--lang: không hỗ trợ 'fr' (vi hoặc en)"),
])
async def test_api_bad_arguments_one_clear_line(api: TestClient, tmp_path: Path,
                                                params: dict[str, str], error: str) -> None:
    r = await api.get("/v1/reports/annual", params=params, headers=admin(tmp_path))
    assert r.status == 400 and (await r.json())["error"] == error


# -- the CLI ---------------------------------------------------------------------------------------
def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="canhgac")
    report_cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["report", "annual", *argv])


def neutral_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's locale must not choose the language of these tests."""
    for name in ("CANHGAC_LANG", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


def test_the_command_is_declared_for_the_cli() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    commands = data["project"]["entry-points"]["canhgac.commands"]
    assert commands["report"] == "collector.report.cli:register"


@pytest.mark.parametrize("argv, env, message", [
    (["--year", "1999"], {}, "--year: 1999 nằm ngoài khoảng cho phép (2000–2025)"),
    (["--year", "2031"], {"CANHGAC_LANG": "en"}, "--year: 2031 is out of range (2000–2025)"),
    (["--year", "năm ngoái"], {}, "--year: không phải một năm: 'năm ngoái' (ví dụ 2025)"),
    (["--year", "2025", "--format", "odt"], {"CANHGAC_LANG": "en"},
     "--format: 'odt' is not supported (one of: docx, xlsx, pdf, md)"),
    (["--year", "2025", "--lang", "fr"], {}, "--lang: không hỗ trợ 'fr' (vi hoặc en)"),
])
def test_cli_bad_arguments_exit_2_with_one_line(monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                               env: dict[str, str], message: str) -> None:
    neutral_locale(monkeypatch)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    args = parse(*argv, "--output", "x.docx")
    with pytest.raises(UserError) as exc:
        report_cli.check_args(args, now=fx.NOW)
    assert str(exc.value) == message and exc.value.exit_code == 2


def test_cli_format_from_the_output_name(monkeypatch: pytest.MonkeyPatch) -> None:
    neutral_locale(monkeypatch)
    assert report_cli.check_args(parse("--year", "2025", "-o", "r.XLSX"), now=fx.NOW) == (
        2025, "xlsx", "vi")
    assert report_cli.check_args(parse("--year", "2025", "-o", "-", "--lang", "en"),
                                 now=fx.NOW) == (2025, "md", "en")


async def test_cli_writes_the_file_and_passes_the_servers_message(
        api: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    neutral_locale(monkeypatch)
    monkeypatch.delenv("CANHGAC_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no collector.yaml here: the flags say where the API is
    url = str(api.make_url("")).rstrip("/")
    conn = ["--url", url, "--token-file", str(tmp_path / "admin.token")]
    out = tmp_path / "bao-cao.docx"
    args = parse("--year", "2025", "--unit", fx.YTE, "--output", str(out), *conn)
    assert await asyncio.to_thread(args.func, args) == 0
    content = read_docx(out.read_bytes())
    assert "Đơn vị báo cáo: Sở Y tế" in content and "Hệ thống quản lý bệnh viện" in content
    assert "Cổng thông tin điện tử tỉnh" not in content
    assert not await asyncio.to_thread(lambda: list(tmp_path.glob(".bao-cao*tmp")))
    args = parse("--year", "2025", "--unit", "Sở Y Tế", "--output", str(out), *conn)
    with pytest.raises(UserError) as exc:
        await asyncio.to_thread(args.func, args)
    assert str(exc.value) == "--unit: không có đơn vị 'Sở Y Tế' (có phải là 'Sở Y tế'?)"


# -- the words ---------------------------------------------------------------------------------------
def test_every_text_in_both_languages_nfc() -> None:
    for key in keys():
        for lang in LANGS:
            value = text.__globals__["_T"][key][LANGS.index(lang)]
            assert value.strip(), (key, lang)
            assert unicodedata.is_normalized("NFC", value), (key, lang)


def test_language_choice() -> None:
    assert resolve_lang("en", {}) == "en" and resolve_lang(None, {"CANHGAC_LANG": "en"}) == "en"
    assert resolve_lang(None, {"LANG": "en_US.UTF-8"}) == "en"
    assert resolve_lang(None, {"LANG": "vi_VN.UTF-8"}) == "vi"
    assert resolve_lang(None, {"LANG": "C.UTF-8"}) == "vi"
    assert resolve_lang("vi", {"CANHGAC_LANG": "en"}) == "vi"  # the flag wins
    with pytest.raises(ValueError, match="--lang: không hỗ trợ 'fr'"):
        resolve_lang(None, {"CANHGAC_LANG": "fr"})
    t = Texts("vi")
    assert (t.date(dt.date(2024, 9, 30)), t.pct(0.955), t.duration(5400)) == (
        "30/09/2024", "95,5 %", "90 phút")
    e = Texts("en")
    assert (e.date("30/09/2024"), e.pct(1.0), e.duration(3 * 86400)) == ("2024-09-30", "100%",
                                                                        "3 d")


# -- the inventory's fields of issue 9 item 1 ----------------------------------------------------
def test_new_inventory_fields_when_the_model_has_them(
        world: tuple[Inventory, HistoryStore, AlertStore]) -> None:
    """Status retired/upgrading, hosting, authority, contracted SOC, independent flag and
    findings, set on the loaded objects with the inventory's own types."""
    _, history, alerts = world
    inv = fx.inventory()
    cong, dvc, his, _emr, mail, qlvb = inv.systems
    cong.approval.authority = "UBND tỉnh Thừa Thiên Huế"
    cong.operating_unit = "Trung tâm Công nghệ thông tin"
    cong.hosting = Hosting(location="provincial_dc", name="TTDL tỉnh")
    cong.assessments[0].findings = [
        InventoryFinding(title="Mật khẩu mặc định trên web-02", owner="Phòng CNTT",
                         due="2025-06-30", state="open"),
        InventoryFinding(title="Thiếu nhật ký", owner="", due="2025-04-30",
                         state="fixed", fixed_on="2025-04-20")]
    qlvb.assessments[0].independent = False  # a self-assessment
    dvc.status = "upgrading"
    his.monitoring.kind = "contracted"
    his.monitoring.contract_until = "2026-01-31"
    mail.status = "retired"
    mail.retired_on = "2025-09-01"
    r = gather(inv, CFG, fx.YEAR, fx.NOW, history=history, alerts=alerts)
    got = {(o.system_id, o.kind): o for o in r.obligations}
    c = sys_(r, "cong-ttdt")
    assert (c.authority, c.hosting, c.hosting_name) == ("UBND tỉnh Thừa Thiên Huế",
                                                        "provincial_dc", "TTDL tỉnh")
    assert [(f.title, f.owner, f.overdue) for f in r.findings] == [
        ("Mật khẩu mặc định trên web-02", "Phòng CNTT", True),
        ("Thiếu nhật ký", fx.STTTT, False)]
    assert got[("cong-ttdt", "fix_finding")].owner == "Phòng CNTT"
    assert not sys_(r, "qlvb").assessed and ("qlvb", "assess") in got
    assert sys_(r, "dvc").in_operation and ("dvc", "reapprove") in got
    assert got[("his", "contract_ending")].params == {"date": dt.date(2026, 1, 31)}
    m = sys_(r, "mail")  # retired in September: in the year's list, not in the denominators
    assert m.status == "retired" and not m.in_operation and r.counts[1]["retired"] == 1
    assert not any(o.system_id == "mail" for o in r.obligations)
    vi = render(r, "md", "vi").decode()
    for needle in ("Trung tâm dữ liệu tỉnh — TTDL tỉnh", "Đã dừng hoạt động", "Đang nâng cấp",
                   "1234/QĐ-UBND (UBND tỉnh Thừa Thiên Huế)",
                   f"{fx.STTTT} (vận hành: Trung tâm Công nghệ thông tin)",
                   "Khắc phục phát hiện: Mật khẩu mặc định trên web-02",
                   "Phê duyệt lại cấp độ sau khi nâng cấp, mở rộng", "Đã khắc phục (20/04/2025)"):
        assert needle in vi, needle
    # retired before the year began: not part of it
    mail.retired_on = "2024-12-31"
    r = gather(inv, CFG, fx.YEAR, fx.NOW, history=history, alerts=alerts)
    assert "mail" not in {s.id for s in r.systems}


def test_the_links_own_availability_record(world: tuple[Inventory, HistoryStore, AlertStore]) -> None:
    """collector.national keeps the link's up/down record: the report quotes it for the year."""
    inv, history, alerts = world
    seen: list[tuple[float, float]] = []

    class Recorded(fx.Link):
        def availability(self, since: float, until: float) -> float | None:
            seen.append((since, until))
            return 0.975

    r = gather(inv, CFG, fx.YEAR, fx.NOW, history=history, alerts=alerts, link=Recorded())
    assert r.link_availability == 0.975
    assert seen == [(fx.ts(1, 1, 0), fx.NOW)]
    assert ("Liên kết với Trung tâm Giám sát an toàn không gian mạng quốc gia hoạt động 97,5 % "
            "thời gian được ghi nhận trong năm.") in render(r, "md", "vi").decode()
