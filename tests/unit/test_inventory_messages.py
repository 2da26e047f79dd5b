"""Issue 9: every inventory and configuration problem reads in Vietnamese or English.

The loaders do not know who reads them; the command that prints does (``--lang``,
``CANHGAC_LANG``, the locale). Each case below is one distinct problem the inventory
loader can find; each must have a Vietnamese text of its own (not the English one
behind a Vietnamese prefix), with the place (file, line, system) said in Vietnamese too.
"""

from __future__ import annotations

import pickle
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from canhgac.cli import error_lang, main
from canhgac.errors import ConfigError, ConfigErrors
from canhgac.message import Message
from collector.inventory import parse_inventory, read_inventory

GOOD = textwrap.dedent("""\
    province: Thừa Thiên Huế
    units: [Sở Thông tin và Truyền thông, Sở Y tế]
    systems:
      - id: cong-ttdt
        name: Cổng thông tin điện tử tỉnh
        unit: Sở Thông tin và Truyền thông
        level: 3
        approval: {approved: true, decision: 1234/QĐ-UBND, date: 2024-08-15}
        hosts: [portal-web-01]
      - id: mot-cua
        name: Hệ thống một cửa điện tử
        unit: Sở Y tế
        level: 2
        hosts: ["dvc-*"]
    """)

# Words of the English texts that a Vietnamese text must not carry (keys and values the
# person typed are quoted, so they are cut out before this check).
ENGLISH = re.compile(r"\b(must|needs?|expected|unknown|got|duplicate|listed|claimed|"
                     r"matched|before|system|line|problems?|not a|is required|empty)\b")


def _sys(d: dict[str, Any], i: int = 0) -> dict[str, Any]:
    s: dict[str, Any] = d["systems"][i]
    return s


CASES: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("date", lambda d: _sys(d)["approval"].update(date="20240815")),
    ("approved without date", lambda d: _sys(d)["approval"].pop("date")),
    ("unknown key", lambda d: _sys(d).update(aproval={})),
    ("required", lambda d: _sys(d).pop("name")),
    ("literal", lambda d: _sys(d).update(status="live")),
    ("level", lambda d: _sys(d).update(level=7)),
    ("level true", lambda d: _sys(d).update(level=True)),
    ("min", lambda d: _sys(d).update(proposed_level=0)),
    ("max", lambda d: _sys(d).update(proposed_level=6)),
    ("bool", lambda d: _sys(d)["approval"].update(approved="yes")),
    ("list", lambda d: _sys(d).update(hosts="portal-web-01")),
    ("mapping", lambda d: _sys(d).update(approval=["x"])),
    ("string", lambda d: _sys(d).update(name=["x"])),
    ("id ascii", lambda d: _sys(d).update(id="cổng")),
    ("empty name", lambda d: _sys(d).update(name=" ")),
    ("empty unit", lambda d: _sys(d).update(unit="")),
    ("retired", lambda d: _sys(d).update(status="retired")),
    ("upgrading", lambda d: _sys(d).update(status="upgrading")),
    ("upgrade start", lambda d: _sys(d).update(upgraded_on="2025-01-01")),
    ("contract provider", lambda d: _sys(d).update(
        monitoring={"kind": "contracted", "contract_until": "2026-01-01"})),
    ("contract end", lambda d: _sys(d).update(
        monitoring={"kind": "contracted", "provider": "VNPT"})),
    ("contract order", lambda d: _sys(d).update(
        monitoring={"kind": "contracted", "provider": "VNPT", "contract_from": "2026-01-01",
                    "contract_until": "2025-01-01"})),
    ("self assessment", lambda d: _sys(d).update(assessments=[
        {"date": "2025-03-01", "organisation": "Sở Thông tin và Truyền thông",
         "independent": True}])),
    ("finding title", lambda d: _sys(d).update(assessments=[
        {"date": "2025-03-01", "organisation": "Công ty X", "findings": [{"title": ""}]}])),
    ("finding fixed", lambda d: _sys(d).update(assessments=[
        {"date": "2025-03-01", "organisation": "Công ty X",
         "findings": [{"title": "Mật khẩu yếu", "state": "fixed"}]}])),
    ("host twice", lambda d: _sys(d)["hosts"].append("PORTAL-web-01")),
    ("duplicate id", lambda d: _sys(d, 1).update(id="cong-ttdt")),
    ("unknown unit", lambda d: _sys(d).update(unit="Sở Y te")),
    ("unknown operating unit", lambda d: _sys(d).update(operating_unit="Sở Tài chính")),
    ("host claimed", lambda d: _sys(d, 1)["hosts"].append("portal-web-01")),
    ("host matched", lambda d: _sys(d)["hosts"].append("dvc-01")),
    ("no systems", lambda d: d.update(systems=[])),
    ("systems not a list", lambda d: d.update(systems={"a": 1})),
]


def _error(mutate: Callable[[dict[str, Any]], None]) -> ConfigError:
    data = yaml.safe_load(GOOD)
    mutate(data)
    with pytest.raises(ConfigError) as exc:
        parse_inventory(data, "danh-muc.yaml")
    return exc.value


def _unquoted(text: str) -> str:
    return re.sub(r"'[^']*'|\"[^\"]*\"", "''", text)


@pytest.mark.parametrize("name, mutate", CASES, ids=[c[0] for c in CASES])
def test_every_inventory_problem_has_its_vietnamese_text(
        name: str, mutate: Callable[[dict[str, Any]], None]) -> None:
    err = _error(mutate)
    en, vi = str(err), err.render("vi")
    assert err.render("en") == en
    assert vi != en
    assert not ENGLISH.search(_unquoted(vi).split("danh-muc.yaml", 1)[-1]), vi
    assert "\\u" not in vi and "\\x" not in vi  # diacritics as letters, never escaped


def test_every_case_is_a_different_problem() -> None:
    """The list above stays exhaustive: a case that only repeats another proves nothing."""
    texts = {re.sub(r"\d+", "N", str(_error(m).problem).split("(")[0]) for _, m in CASES}
    assert len(texts) >= len(CASES) - 8  # a few share a template with other values


def test_place_and_system_are_said_in_the_chosen_language(tmp_path: Path) -> None:
    f = tmp_path / "danh-muc.yaml"
    f.write_text(GOOD.replace("level: 2", "level: 9").replace(
        "    unit: Sở Thông tin và Truyền thông\n", "    unit: Sở Y te\n"), encoding="utf-8")
    with pytest.raises(ConfigErrors) as exc:
        read_inventory(f)
    vi = exc.value.render("vi").splitlines()
    assert vi[0] == f"2 lỗi trong {f}:"
    assert vi[1] == (f"  {f}: dòng 6: systems[0].unit (hệ thống cong-ttdt): đơn vị 'Sở Y te' "
                     "không có trong danh sách units (có phải 'Sở Y tế'?)")
    assert vi[2] == (f"  {f}: dòng 13: systems[1].level (hệ thống mot-cua): phải là một trong "
                     "1, 2, 3, 4, 5, đang là 9")
    en = str(exc.value).splitlines()
    assert en[0] == f"2 problems in {f}:"
    assert en[2].startswith(f"  {f}: line 13: systems[1].level (system mot-cua): must be one of")


def test_did_you_mean_follows_the_language() -> None:
    err = _error(lambda d: _sys(d).update(unit="Sở Y te"))
    assert "(did you mean 'Sở Y tế'?)" in str(err)
    assert err.render("vi").endswith(
        "đơn vị 'Sở Y te' không có trong danh sách units (có phải 'Sở Y tế'?)")


def test_cli_language_flag_beats_the_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "danh-muc.yaml"
    f.write_text(GOOD.replace("level: 2", "level: 9"), encoding="utf-8")
    monkeypatch.setenv("CANHGAC_LANG", "en")
    assert main(["inventory", "validate", str(f)]) == 2
    assert capsys.readouterr().err.startswith(f"canhgac: error: {f}: line 13: ")
    assert main(["inventory", "validate", str(f), "--lang", "vi"]) == 2
    assert capsys.readouterr().err.startswith(f"canhgac: lỗi: {f}: dòng 13: ")
    monkeypatch.setenv("CANHGAC_LANG", "vi")
    assert main(["inventory", "validate", "--lang=en", str(f)]) == 2
    assert "must be one of" in capsys.readouterr().err
    assert main(["inventory", "validate", str(tmp_path / "none.yaml")]) == 2
    assert capsys.readouterr().err == f"canhgac: lỗi: {tmp_path / 'none.yaml'}: không tìm thấy tệp\n"


def test_error_language_never_fails() -> None:
    """A bad --lang or CANHGAC_LANG must not hide the error being reported."""
    env = {"CANHGAC_LANG": "fr"}
    with pytest.MonkeyPatch.context() as mp:
        for k in ("CANHGAC_LANG", "LC_ALL", "LC_MESSAGES"):
            mp.delenv(k, raising=False)
        mp.setenv("LANG", "C.UTF-8")
        assert error_lang(["x", "--lang", "de"]) == "vi"
        assert error_lang(["x", "--lang", "en"]) == "en"
        mp.setenv("CANHGAC_LANG", env["CANHGAC_LANG"])
        assert error_lang(["x"]) == "vi"


def test_a_message_is_its_english_text_and_pickles_with_both() -> None:
    inner = Message("line {n}", "dòng {n}", n=3)
    m = Message("at {where}: {value!r}", "tại {where}: {value!r}", where=inner, value="Sở Y tế")
    assert m == "at line 3: 'Sở Y tế'" and isinstance(m, str)
    assert m.render("vi") == "tại dòng 3: 'Sở Y tế'"
    back = pickle.loads(pickle.dumps(m))
    assert back == m and back.render("vi") == m.render("vi")


def test_coverage_command_errors_follow_the_language(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANHGAC_LANG", "vi")
    assert main(["coverage", "--since", "1y"]) == 2
    assert capsys.readouterr().err == ("canhgac: lỗi: --since cho xu hướng của một hệ thống: "
                                       "thêm --system ID\n")
    assert main(["coverage", "--at", "20250630", "--lang", "en"]) == 2
    assert capsys.readouterr().err.startswith("canhgac: error: --at: not a date: '20250630'")
    assert main(["coverage", "--at", "20250630"]) == 2
    assert capsys.readouterr().err.startswith("canhgac: lỗi: --at: không phải ngày: '20250630'")
