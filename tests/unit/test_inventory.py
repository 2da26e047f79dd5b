"""Inventory: precise errors (file, key path, problem), lookups, reload that keeps the old."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
from pathlib import Path

import pytest
import yaml

from canhgac.errors import ConfigError
from collector.inventory import (
    InventoryHolder,
    InventoryWatcher,
    load_inventory,
    parse_inventory,
    read_inventory,
)

ROOT = Path(__file__).resolve().parents[2]

GOOD = textwrap.dedent("""\
    province: Thừa Thiên Huế
    systems:
      - id: cong-ttdt
        name: Cổng thông tin điện tử tỉnh
        unit: Sở Thông tin và Truyền thông
        level: 3
        approval: {approved: true, decision: 1234/QĐ-UBND, date: 2024-08-15}
        hosts: [portal-web-01, Portal-DB-01]
      - id: mot-cua
        name: Hệ thống một cửa điện tử
        unit: Sở Thông tin và Truyền thông
        level: 2
        hosts: ["dvc-*"]
    """)


def _problem(data: object) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        parse_inventory(data, "inv.yaml")
    return exc.value


def _data() -> dict:
    return yaml.safe_load(GOOD)


def test_example_config_is_valid_and_keeps_diacritics() -> None:
    inv = read_inventory(ROOT / "configs" / "inventory.yaml")
    assert inv.province == "Thừa Thiên Huế"
    names = {s.name for s in inv.systems}
    assert "Cổng thông tin điện tử tỉnh" in names
    assert {s.unit for s in inv.systems} >= {"Sở Thông tin và Truyền thông"}
    assert len(inv.systems) >= 3


def test_unknown_level_names_key_path() -> None:
    d = _data()
    d["systems"][1]["level"] = 7
    err = _problem(d)
    assert err.path == "systems[1].level"
    assert "must be one of 1, 2, 3, 4, 5, got 7" in err.problem
    # Issue 9 finding: errors named a 0-based index but not the system (nor, from a file,
    # the line).
    assert str(err).startswith("inv.yaml: systems[1].level (system mot-cua):")


def test_boolean_level_is_not_level_1() -> None:
    d = _data()
    d["systems"][0]["level"] = True
    err = _problem(d)
    assert err.path == "systems[0].level" and "got true" in err.problem


def test_duplicate_id() -> None:
    d = _data()
    d["systems"][1]["id"] = "cong-ttdt"
    err = _problem(d)
    assert err.path == "systems[1].id"
    assert "duplicate system id 'cong-ttdt' (also systems[0])" in err.problem


def test_host_claimed_by_two_systems_case_insensitive() -> None:
    d = _data()
    d["systems"][1]["hosts"] = ["portal-db-01"]
    err = _problem(d)
    assert err.path == "systems[1].hosts[0]"
    assert "already claimed by system 'cong-ttdt' (systems[0].hosts[1])" in err.problem


def test_host_matched_by_another_systems_selector() -> None:
    d = _data()
    d["systems"][0]["hosts"].append("dvc-web-01")
    err = _problem(d)
    assert err.path == "systems[0].hosts[2]"
    assert "'dvc-*' of system 'mot-cua'" in err.problem


def test_host_listed_twice_in_one_system() -> None:
    d = _data()
    d["systems"][0]["hosts"].append("portal-web-01")
    err = _problem(d)
    assert err.path == "systems[0].hosts[2]"
    assert "listed twice" in err.problem


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        (lambda d: d["systems"][0]["approval"].update(date="20240815"),
         "systems[0].approval.date", "not a date: '20240815'"),
        (lambda d: d["systems"][0]["approval"].update(date="2024-W33-4"),
         "systems[0].approval.date", "not a date: '2024-W33-4'"),
        (lambda d: d["systems"][0]["approval"].update(date="08/15/2024"),
         "systems[0].approval.date", "not a date: '08/15/2024'"),
        (lambda d: d["systems"][0]["approval"].pop("date"),
         "systems[0].approval.date", "approved level needs the decision date"),
        (lambda d: d["systems"][0].update(onsite={"teams": []}),
         "systems[0].onsite.teams", "unknown key"),
        (lambda d: d["systems"][0].update(assessments=[{"date": "2024-01-01"}]),
         "systems[0].assessments[0].organisation", "is required"),
        (lambda d: d["systems"][0].update(assessments=[
            {"date": "2024-01-01", "organisation": "X", "result": "good"}]),
         "systems[0].assessments[0].result", "must be one of"),
        (lambda d: d["systems"][0].update(id="cổng"), "systems[0].id", "ASCII"),
        (lambda d: d["systems"][0].pop("unit"), "systems[0].unit", "is required"),
        (lambda d: d["systems"][0].update(national={"enabled": "yes"}),
         "systems[0].national.enabled", "expected true or false"),
        (lambda d: d.update(units=["Sở Y tế"]), "systems[0].unit", "unknown unit"),
    ],
)
def test_precise_errors(mutate, path: str, fragment: str) -> None:  # type: ignore[no-untyped-def]
    d = _data()
    mutate(d)
    err = _problem(d)
    assert err.path == path
    assert fragment in err.problem


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    f = tmp_path / "inventory.yaml"
    f.write_text("systems:\n  - id: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        read_inventory(f)
    assert str(f) in str(exc.value) and "line" in str(exc.value)


def test_lookups_exact_pattern_and_case() -> None:
    holder = InventoryHolder(parse_inventory(_data(), "x"))
    assert holder.system("cong-ttdt").level == 3
    assert holder.system_for_host("PORTAL-WEB-01").id == "cong-ttdt"
    assert holder.system_for_host("portal-db-01").id == "cong-ttdt"
    assert holder.system_for_host("dvc-app-07").id == "mot-cua"
    assert holder.system_for_host("unknown") is None
    assert [s.id for s in holder.current.systems] == ["cong-ttdt", "mot-cua"]


def test_reload_keeps_old_inventory_when_new_is_invalid(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "inventory.yaml"
    f.write_text(GOOD, encoding="utf-8")
    holder = load_inventory(f)
    seen = []
    holder.on_change(lambda inv: seen.append(len(inv.systems)))
    f.write_text(GOOD.replace("level: 2", "level: 9"), encoding="utf-8")
    assert holder.reload() is False
    assert holder.system("mot-cua").level == 2
    assert holder.reloads_failed == 1 and "systems[1].level" in holder.last_error
    assert "previous inventory stays in force" in caplog.text
    f.write_text(GOOD.replace("level: 2", "level: 4"), encoding="utf-8")
    assert holder.reload() is True
    assert holder.system("mot-cua").level == 4
    assert holder.last_error == "" and seen == [2]


def test_watcher_polls_file_changes(tmp_path: Path) -> None:
    f = tmp_path / "inventory.yaml"
    f.write_text(GOOD, encoding="utf-8")
    holder = load_inventory(f)
    w = InventoryWatcher(holder, sighup=False)
    assert w.check() is False  # unchanged
    # Replace by rename, as editors and config management do.
    new = tmp_path / "new.yaml"
    new.write_text(GOOD.replace("level: 3", "level: 5"), encoding="utf-8")
    os.replace(new, f)
    assert w.check() is True
    assert holder.system("cong-ttdt").level == 5


async def test_sighup_reloads(tmp_path: Path) -> None:
    f = tmp_path / "inventory.yaml"
    f.write_text(GOOD, encoding="utf-8")
    holder = load_inventory(f)
    w = InventoryWatcher(holder, interval=3600)
    await w.start()
    try:
        f.write_text(GOOD.replace("level: 3", "level: 1"), encoding="utf-8")
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(100):
            if holder.system("cong-ttdt").level == 1:
                break
            await asyncio.sleep(0.01)
        assert holder.system("cong-ttdt").level == 1
    finally:
        await w.stop()


def test_cli_validate_and_show(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import argparse

    from collector import inventory_cli

    parser = argparse.ArgumentParser()
    inventory_cli.register(parser.add_subparsers())
    args = parser.parse_args(["inventory", "validate", str(ROOT / "configs" / "inventory.yaml"),
                              "--lang", "en"])
    assert args.func(args) == 0
    assert "OK — 4 systems, 3 units" in capsys.readouterr().out
    args = parser.parse_args(["inventory", "validate", str(ROOT / "configs" / "inventory.yaml"),
                              "--lang", "vi"])
    assert args.func(args) == 0
    assert "hợp lệ — 4 hệ thống, 3 đơn vị" in capsys.readouterr().out
    args = parser.parse_args(["inventory", "show", str(ROOT / "configs" / "inventory.yaml")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "Thừa Thiên Huế" in out
    assert all(len(line) <= 80 for line in out.splitlines())
    args = parser.parse_args(["inventory", "show", "--format", "json",
                              str(ROOT / "configs" / "inventory.yaml")])
    args.func(args)
    assert "Cổng thông tin điện tử tỉnh" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("level: 3", "level: 0"), encoding="utf-8")
    args = parser.parse_args(["inventory", "validate", str(bad)])
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+: systems\[0\].level \(system "):
        args.func(args)


def test_every_problem_at_once_with_line_system_and_suggestions(tmp_path: Path) -> None:
    """Issue 9 findings: only the first error was reported, with a 0-based index but no line
    number or system id, and no "did you mean" for a misspelt key or unit."""
    f = tmp_path / "inventory.yaml"
    f.write_text(textwrap.dedent("""\
        province: Thừa Thiên Huế
        units: [Sở Y tế, Sở Thông tin và Truyền thông]
        systems:
          - id: his
            name: Bệnh viện
            unit: Sở Y te
            level: 2
          - id: cong-ttdt
            name: Cổng
            unit: Sở Thông tin và Truyền thông
            level: 9
          - id: mot-cua
            name: Một cửa
            unit: Sở Y tế
            level: 2
            aproval: {approved: false}
        """), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        read_inventory(f)
    text = str(exc.value)
    assert text.splitlines()[0] == f"3 problems in {f}:"
    assert f"{f}: line 6: systems[0].unit (system his): unknown unit 'Sở Y te'" in text
    assert f"{f}: line 11: systems[1].level (system cong-ttdt): must be one of" in text
    assert (f"{f}: line 16: systems[2].aproval (system mot-cua): unknown key "
            "(did you mean 'approval'?)") in text
    f.write_text(f.read_text(encoding="utf-8").replace("level: 9", "level: 3")
                 .replace("    aproval: {approved: false}\n", ""), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        read_inventory(f)
    assert str(exc.value) == (f"{f}: line 6: systems[0].unit (system his): unknown unit "
                              "'Sở Y te' (did you mean 'Sở Y tế'?) (not in units)")


def test_day_first_dates_are_read_as_vietnamese_documents_write_them() -> None:
    """Issue 9 finding: "15/08/2024" was refused while "20240815" and week dates passed."""
    from collector.inventory import parse_date

    assert parse_date("15/08/2024") == parse_date("2024-08-15")
    assert parse_date("1/8/2024").isoformat() == "2024-08-01"


def test_decomposed_vietnamese_is_the_same_unit() -> None:
    """Issue 9 finding: "Sở Y tế" typed in NFD was refused as an unknown unit."""
    import unicodedata

    nfd = unicodedata.normalize("NFD", "Sở Y tế")
    assert nfd != "Sở Y tế"
    inv = parse_inventory({"units": ["Sở Y tế"], "systems": [
        {"id": "his", "name": unicodedata.normalize("NFD", "Bệnh viện"), "unit": nfd, "level": 2}]},
        "inventory.yaml")
    assert inv.systems[0].unit == "Sở Y tế" and inv.unit_names() == ["Sở Y tế"]
    assert inv.systems[0].name == "Bệnh viện"


def test_an_empty_inventory_is_refused() -> None:
    """Issue 9 finding: an empty inventory validated ("OK — 0 systems")."""
    with pytest.raises(ConfigError, match="systems: the inventory lists no system"):
        parse_inventory({"province": "Huế"}, "inventory.yaml")


def test_inventory_show_never_cuts_a_letter() -> None:
    """Issue 9 finding: `inventory show` cut decomposed names mid-letter."""
    import unicodedata

    from collector.inventory_cli import render_table

    name = unicodedata.normalize("NFD", "Cổng thông tin điện tử tỉnh Thừa Thiên Huế")
    inv = parse_inventory({"systems": [{"id": "c", "name": name, "unit": "Sở Y tế", "level": 3}]},
                          "inventory.yaml")
    out = render_table(inv)
    assert "Cổng thông tin đ…" in out  # cut between letters, at the column width
    assert not any(unicodedata.combining(ch) for ch in out)
