"""`canhgac collector policy show|set|diff|history` (docs/policy.md).

Run where the collector's state is (``--config`` / ``--state-dir`` as every collector
command); ``set`` validates against the inventory named in collector.yaml and stores a new
version, which the running collector serves to its agents within a second.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

import yaml

from canhgac.errors import UserError


def register_collector(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from collector.cli import _state_args

    p = sub.add_parser(
        "policy", help="central agent policy: show, set, diff, history",
        description="What each agent's probes do, decided here and fetched by the agents with "
        "their heartbeat / Chính sách tập trung cho agent: bật tắt probe, chu kỳ, đường dẫn.",
        epilog="examples:\n"
        "  canhgac collector policy set policy.yaml --note 'FIM on level 3'\n"
        "  canhgac collector policy show --system cong-ttdt\n"
        "  canhgac collector policy diff            # the previous version against the latest\n"
        "  canhgac collector policy diff policy.yaml  # a file against the latest, before set",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    psub = p.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    show = psub.add_parser("show", help="the policy document, or what one system's agents get")
    _state_args(show)
    show.add_argument("--version", type=int, default=None, help="a version (default: latest)")
    show.add_argument("--system", default=None, help="the effective probes for this system")
    show.add_argument("--format", choices=["yaml", "json"], default="yaml")
    show.set_defaults(func=cmd_show)
    put = psub.add_parser("set", help="validate a policy file and store it as a new version")
    _state_args(put)
    put.add_argument("file", type=Path)
    put.add_argument("--note", default="", help="why (kept with the version)")
    put.set_defaults(func=cmd_set)
    diff = psub.add_parser("diff", help="differences between two versions, or a file and the latest")
    _state_args(diff)
    diff.add_argument("file", type=Path, nargs="?", default=None)
    diff.add_argument("--from", dest="from_version", type=int, default=None)
    diff.add_argument("--to", dest="to_version", type=int, default=None)
    diff.set_defaults(func=cmd_diff)
    hist = psub.add_parser("history", help="every version with its date and note")
    _state_args(hist)
    hist.set_defaults(func=cmd_history)


def _store(args: argparse.Namespace) -> Any:
    from collector.cli import state_dir_of
    from collector.policy.store import PolicyStore

    return PolicyStore(state_dir_of(args) / "policy.db")


def _inventory(args: argparse.Namespace) -> Any:
    from collector.config import load
    from collector.inventory import load_inventory

    config, _ = load(getattr(args, "config", None))
    return config, load_inventory(config.inventory)


def _read_file(path: Path, inventory: Any) -> dict[str, Any]:
    from canhgac.config import read_yaml
    from collector.policy.model import parse_policy

    doc = parse_policy(read_yaml(path), str(path),
                       inventory.current if inventory.current.systems else None)
    return doc.to_plain()


def _dump(data: Any, fmt: str = "yaml") -> str:
    if fmt == "json":
        import orjson

        return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False) if data else "{}\n"


def _version(store: Any, number: int | None) -> Any:
    found = store.get(number)
    if found is None:
        latest = store.latest_version()
        raise UserError(f"no policy version {number} (versions 0 to {latest})")
    return found


def cmd_show(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        version = _version(store, args.version)
    finally:
        store.close()
    if args.system is None:
        print(f"# policy version {version.version}" + (f" — {version.note}" if version.note else ""))
        sys.stdout.write(_dump(version.document, args.format))
        return 0
    from collector.policy import level_probes
    from collector.policy.model import effective, parse_policy

    config, inventory = _inventory(args)
    system = inventory.system(args.system)
    if system is None:
        from canhgac.config import did_you_mean

        known = [s.id for s in inventory.current.systems]
        raise UserError(f"--system {args.system!r} is not in the inventory"
                        f"{did_you_mean(args.system, known)}")
    body = effective(parse_policy(version.document, "policy"), system,
                     level_probes(config.coverage, "collector.yaml"))
    print(f"# what agents of {system.id} (level {system.level}, {system.unit}) get from "
          f"policy version {version.version}, before their local overrides")
    sys.stdout.write(_dump(body, args.format))
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    _, inventory = _inventory(args)
    document = _read_file(args.file, inventory)  # every problem at once, exit 2
    store = _store(args)
    try:
        previous = store.get()
        if previous is not None and previous.document == document:
            print(f"policy unchanged: version {previous.version} is the same document")
            return 0
        added = store.add(document, args.note)
    finally:
        store.close()
    print(f"policy version {added.version} stored; agents apply it at their next heartbeat")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        if args.file is not None:
            _, inventory = _inventory(args)
            old = _version(store, args.to_version)
            new_doc, labels = _read_file(args.file, inventory), (f"version {old.version}",
                                                                 str(args.file))
            old_doc = old.document
        else:
            to = _version(store, args.to_version)
            frm = _version(store, args.from_version if args.from_version is not None
                           else max(to.version - 1, 0))
            old_doc, new_doc = frm.document, to.document
            labels = (f"version {frm.version}", f"version {to.version}")
    finally:
        store.close()
    lines = list(difflib.unified_diff(_dump(old_doc).splitlines(), _dump(new_doc).splitlines(),
                                      labels[0], labels[1], lineterm=""))
    print("\n".join(lines) if lines else f"no difference between {labels[0]} and {labels[1]}")
    return 1 if lines else 0


def cmd_history(args: argparse.Namespace) -> int:
    import datetime as dt

    from canhgac.table import render

    store = _store(args)
    try:
        versions = store.history()
    finally:
        store.close()
    rows: list[tuple[object, ...]] = [("VERSION", "DATE (UTC+7)", "NOTE")]
    tz = dt.timezone(dt.timedelta(hours=7))
    rows.append((0, "-", "level defaults only"))
    for v in versions:
        rows.append((v.version, dt.datetime.fromtimestamp(v.created, tz).strftime("%d/%m/%Y %H:%M"),
                     v.note))
    print(render(rows))
    return 0
