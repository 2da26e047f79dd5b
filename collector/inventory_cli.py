"""`canhgac inventory validate|show|export|import`.

All read the file directly (no collector needed): validating before copying a
file into place is the point, and `show` is how a unit checks what it declared.
A file ending in ``.xlsx`` is read as the spreadsheet form (collector/inventory_xlsx.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path("configs/inventory.yaml")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("inventory", help="validate or show the inventory of information systems")
    isub = p.add_subparsers(dest="inventory_command", metavar="ACTION", required=True)
    v = isub.add_parser("validate", help="check an inventory file; exit 2 with file, key and problem")
    v.add_argument("file", type=Path)
    _lang_option(v)
    v.set_defaults(func=run_validate)
    s = isub.add_parser("show", help="list systems, levels, approval, plan and layer facts")
    s.add_argument("file", type=Path, nargs="?", default=None,
                   help=f"inventory file (default: collector.yaml's inventory, else {DEFAULT_PATH})")
    s.add_argument("--config", type=Path, default=None, help="collector.yaml to take the path from")
    s.add_argument("--format", choices=["table", "json"], default="table")
    _lang_option(s)
    s.set_defaults(func=run_show)
    e = isub.add_parser("export", help="write the inventory as a spreadsheet (.xlsx) for the units")
    e.add_argument("file", type=Path, nargs="?", default=None,
                   help=f"inventory file (default: collector.yaml's inventory, else {DEFAULT_PATH})")
    e.add_argument("--config", type=Path, default=None, help="collector.yaml to take the path from")
    e.add_argument("--output", "-o", type=Path, required=True, help="the .xlsx file to write")
    e.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    _lang_option(e)
    e.set_defaults(func=run_export)
    i = isub.add_parser("import", help="read a spreadsheet (.xlsx), validate it, write the YAML")
    i.add_argument("file", type=Path, help="the .xlsx workbook (as `export` writes it)")
    i.add_argument("--output", "-o", type=Path, default=None,
                   help="the YAML file to write (default: print it)")
    i.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    _lang_option(i)
    i.set_defaults(func=run_import)


def _lang_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lang", default=None, metavar="vi|en",
                   help="language of messages and errors (default: CANHGAC_LANG, the locale, vi)")


def _say(args: argparse.Namespace, en: str, vi: str, **fields: object) -> str:
    """One line of the command's output in the language chosen for it."""
    from canhgac.lang import resolve_lang
    from canhgac.message import Message

    try:
        lang = resolve_lang(args.lang)
    except ValueError as exc:
        from canhgac.errors import UserError

        raise UserError(f"--lang: {exc}") from None
    return Message(en, vi, **fields).render(lang)


def read_any(path: Path) -> Any:
    """An inventory from YAML, or from a workbook when the name ends in .xlsx."""
    if path.suffix.lower() == ".xlsx":
        from collector.inventory_xlsx import read_xlsx

        return read_xlsx(path)
    from collector.inventory import read_inventory

    return read_inventory(path)


def _refuse_overwrite(path: Path, force: bool) -> None:
    from canhgac.errors import UserError

    if path.exists() and not force:
        from canhgac.message import Message

        raise UserError(Message("{path} exists: add --force to overwrite it",
                                "{path} đã có: thêm --force để ghi đè", path=str(path)))


def run_export(args: argparse.Namespace) -> int:
    from collector.inventory_xlsx import export_xlsx

    if args.output.suffix.lower() != ".xlsx":
        from canhgac.errors import UserError
        from canhgac.message import Message

        raise UserError(Message("--output {path}: the file name must end in .xlsx",
                                "--output {path}: tên tệp phải kết thúc bằng .xlsx",
                                path=str(args.output)))
    _refuse_overwrite(args.output, args.force)
    inv = read_any(_resolve(args))
    tmp = args.output.with_name(args.output.name + ".tmp.xlsx")
    export_xlsx(inv, tmp)
    tmp.replace(args.output)
    print(_say(args, "{out}: {n} systems written (sheets: {sheets})",
               "{out}: đã ghi {n} hệ thống (các trang: {sheets})", out=args.output,
               n=len(inv.systems), sheets="Thông tin, Hệ thống, Đội tại chỗ, Đánh giá, Tồn tại"))
    return 0


def run_import(args: argparse.Namespace) -> int:
    import yaml

    from collector.inventory_xlsx import read_xlsx, to_document

    inv = read_xlsx(args.file)  # every problem at once, by sheet and row; exit 2
    text = (f"# Danh mục hệ thống thông tin — imported from {args.file.name}\n"
            "# Reference: docs/inventory.md. Check: canhgac inventory validate FILE\n"
            + yaml.safe_dump(to_document(inv), allow_unicode=True, sort_keys=False, width=100))
    if args.output is None:
        sys.stdout.write(text)
        return 0
    _refuse_overwrite(args.output, args.force)
    tmp = args.output.with_name(args.output.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(args.output)
    print(_say(args, "{out}: {n} systems written from {src}", "{out}: đã ghi {n} hệ thống từ {src}",
               out=args.output, n=len(inv.systems), src=args.file), file=sys.stderr)
    return 0


def _resolve(args: argparse.Namespace) -> Path:
    if args.file is not None:
        return Path(args.file)
    from collector.config import load, locate

    if locate(args.config) is not None:
        cfg, _ = load(args.config)
        if cfg.inventory is not None:
            return cfg.inventory
    return DEFAULT_PATH


def run_validate(args: argparse.Namespace) -> int:
    inv = read_any(args.file)  # ConfigError -> one line, exit 2 (canhgac.cli)
    hosts = sum(len(s.hosts) for s in inv.systems)
    units = len({s.unit for s in inv.systems})
    print(_say(args, "{file}: OK — {n} systems, {units} units, {hosts} host entries",
               "{file}: hợp lệ — {n} hệ thống, {units} đơn vị, {hosts} mục máy chủ",
               file=args.file, n=len(inv.systems), units=units, hosts=hosts))
    return 0


def run_show(args: argparse.Namespace) -> int:
    import orjson

    from canhgac.config import to_plain

    path = _resolve(args)
    inv = read_any(path)
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(to_plain(inv), option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    print(render_table(inv))
    return 0


def render_table(inv) -> str:  # type: ignore[no-untyped-def]
    """80 columns: one block per unit; widths in terminal cells, so Vietnamese names are
    cut between letters, never inside one (details via --format json)."""
    from canhgac.table import render

    lines = []
    title = f"Danh mục HTTT / inventory{(' — ' + inv.province) if inv.province else ''}"
    lines.append(title)
    for unit in inv.unit_names():
        systems = [s for s in inv.systems if s.unit == unit]
        lines.append("")
        lines.append(f"[{unit}] {len(systems)} system(s)")
        rows: list[tuple[object, ...]] = [
            ("id", "tên / name", "cấp", "trạng thái", "phê duyệt", "phương án", "hosts")]
        for s in systems:
            approved = (s.approval.date or "yes") if s.approval.approved else "chưa/no"
            rows.append((s.id, s.name, s.level, s.status, approved, s.plan.deployed or "chưa/no",
                         len(s.hosts)))
        lines.append(render(rows, max_widths=(12, 17, 3, 10, 10, 10, 5)))
    lines.append("")
    lines.append(f"{len(inv.systems)} systems")
    return "\n".join(lines)
