"""`canhgac inventory validate FILE` and `canhgac inventory show`.

Both read the file directly (no collector needed): validating before copying a
file into place is the point, and `show` is how a unit checks what it declared.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_PATH = Path("configs/inventory.yaml")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("inventory", help="validate or show the inventory of information systems")
    isub = p.add_subparsers(dest="inventory_command", metavar="ACTION", required=True)
    v = isub.add_parser("validate", help="check an inventory file; exit 2 with file, key and problem")
    v.add_argument("file", type=Path)
    v.set_defaults(func=run_validate)
    s = isub.add_parser("show", help="list systems, levels, approval, plan and layer facts")
    s.add_argument("file", type=Path, nargs="?", default=None,
                   help=f"inventory file (default: collector.yaml's inventory, else {DEFAULT_PATH})")
    s.add_argument("--config", type=Path, default=None, help="collector.yaml to take the path from")
    s.add_argument("--format", choices=["table", "json"], default="table")
    s.set_defaults(func=run_show)


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
    from collector.inventory import read_inventory

    inv = read_inventory(args.file)  # ConfigError -> one line, exit 2 (canhgac.cli)
    hosts = sum(len(s.hosts) for s in inv.systems)
    units = len({s.unit for s in inv.systems})
    print(f"{args.file}: OK — {len(inv.systems)} systems, {units} units, {hosts} host entries")
    return 0


def run_show(args: argparse.Namespace) -> int:
    import orjson

    from canhgac.config import to_plain
    from collector.inventory import read_inventory

    path = _resolve(args)
    inv = read_inventory(path)
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
