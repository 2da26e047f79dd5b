"""`canhgac rules test FILE|DIR [--events FILE.ndjson]` and `canhgac rules list`.

``test`` validates a rule file (or every rule file under a directory, each on its
own: a bad one is listed with its reason and the rest are still checked), runs the
tests embedded in each rule, and with ``--events`` replays an NDJSON file of events
through the rules and prints the alerts as a table. It ends with the counts of
loaded and refused rules by reason. Exit 0 when every rule loads and every test
passes, 1 when a test fails, 2 when any rule is refused or the events file is invalid.

``list`` shows what a collector with the given collector.yaml runs: the loaded
rules, and the refused ones with file, key path and reason.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collector.detect.loader import LoadedRule


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("rules", help="detection rules: validate and test")
    rsub = p.add_subparsers(dest="rules_command", metavar="SUBCOMMAND")
    t = rsub.add_parser(
        "test",
        help="validate a rule file (or directory), run its embedded tests, replay events",
        description="Validate rules, run the tests embedded in them (tests:) and, with "
        "--events, print the alerts the rules raise on an NDJSON file of ECS events.",
    )
    t.add_argument("path", metavar="FILE", type=Path, help="rule file or directory of rules")
    t.add_argument("--events", type=Path, metavar="FILE.ndjson",
                   help="events to replay, one JSON object per line")
    t.add_argument("--heartbeat-interval", type=float, default=30.0, metavar="SECONDS",
                   help="collector heartbeat interval for absence rules (default 30)")
    t.set_defaults(func=run_test)
    ls = rsub.add_parser("list", help="the rules a collector loads (and refuses) with its config")
    ls.add_argument("--config", "-c", help="collector.yaml (default: embedded defaults)")
    ls.add_argument("--format", choices=["table", "json"], default="table")
    ls.set_defaults(func=run_list)

    def usage(_args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=usage)


def run_test(args: argparse.Namespace) -> int:
    from canhgac.errors import ConfigError
    from collector.detect.loader import load_rules
    from collector.detect.model import RuleError
    from collector.detect.testing import run_case

    path: Path = args.path
    if not path.exists():
        raise ConfigError(str(path), "", "file not found")
    ruleset = load_rules([(path, path.name if path.is_dir() else path.parent.name)])
    loaded = ruleset.loaded
    failed = 0
    total = 0
    for lr in loaded:
        meta = lr.rule.meta
        print(f"{meta.id}  {meta.title}  [{meta.kind}, {meta.level}]  {lr.source}")
        if not lr.tests:
            print("    (no tests in this rule)")
        for i, case in enumerate(lr.tests):
            try:
                result = run_case(lr.doc, case, i, heartbeat_interval=args.heartbeat_interval)
            except RuleError as exc:
                raise exc.in_file(lr.source, lr.prefix) from None
            total += 1
            mark = "ok  " if result.passed else "FAIL"
            print(f"    {mark} {result.name}")
            for problem in result.problems:
                print(f"         {problem}")
            failed += not result.passed
    for refusal in ruleset.refused:
        print(f"REFUSED ({refusal.reason})  {refusal}")
    print(f"{len(loaded)} rule(s) loaded, {len(ruleset.refused)} refused"
          + _by_reason(ruleset.refused_by_reason())
          + f"; {total - failed}/{total} test(s) passed")
    if args.events is not None:
        alerts = replay(loaded, args.events, args.heartbeat_interval)
        print()
        print_table(alerts)
    if ruleset.refused:
        return 2
    return 1 if failed else 0


def _by_reason(counts: dict[str, int]) -> str:
    parts = [f"{reason} {n}" for reason, n in counts.items() if n]
    return f" ({', '.join(parts)})" if parts else ""


def run_list(args: argparse.Namespace) -> int:
    import orjson

    from canhgac.config import load_section
    from canhgac.table import render
    from collector.config import load
    from collector.detect.config import DetectionConfig
    from collector.detect.ruleset import select

    config, source = load(args.config)
    cfg = load_section(config.detection, DetectionConfig, source, "detection")
    ruleset = select(cfg, source)
    if args.format == "json":
        print(orjson.dumps({
            "loaded": [{"id": lr.rule.meta.id, "title": lr.rule.meta.title,
                        "kind": lr.rule.meta.kind, "level": lr.rule.meta.level,
                        "ruleset": lr.rule.meta.ruleset, "source": lr.source}
                       for lr in ruleset.loaded],
            "refused": [{"source": r.source, "path": r.path, "reason": r.reason,
                         "message": r.message} for r in ruleset.refused],
        }, option=orjson.OPT_INDENT_2).decode())
        return 0
    rows = [("ID", "TITLE", "KIND", "LEVEL", "RULESET")]
    rows += [(lr.rule.meta.id, lr.rule.meta.title, lr.rule.meta.kind, lr.rule.meta.level,
              lr.rule.meta.ruleset) for lr in ruleset.loaded]
    print(render(rows))
    if ruleset.refused:
        print()
        refused_rows = [("REFUSED FILE", "KEY", "REASON", "PROBLEM")]
        refused_rows += [(r.source, r.path, r.reason, r.message[:100]) for r in ruleset.refused]
        print(render(refused_rows))
    print(f"\n{len(ruleset.loaded)} rule(s) loaded, {len(ruleset.refused)} refused"
          + _by_reason(ruleset.refused_by_reason()))
    return 0


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    import orjson

    from canhgac.errors import ConfigError
    from collector.detect.testing import expand_event

    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ConfigError(str(path), "", exc.strerror or str(exc)) from None
    events = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(str(path), f"line {n}", f"not JSON: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(expand_event(doc).get("event"), dict):
            raise ConfigError(str(path), f"line {n}", "expected an ECS event object with event.*")
        events.append(expand_event(doc))
    return events


def replay(loaded: list[LoadedRule], events_path: Path, heartbeat_interval: float) -> list[dict[str, Any]]:
    """Events in file order; the collector clock follows event time, ticking as it goes."""
    import time

    from collector.detect.engine import Engine, EngineLimits
    from collector.detect.loader import build_rule
    from collector.detect.model import event_time

    events = read_ndjson(events_path)
    rules = [build_rule(lr.doc, ruleset=lr.rule.meta.ruleset, source=lr.source) for lr in loaded]
    clock = [0.0]
    engine = Engine(rules, EngineLimits(heartbeat_interval=heartbeat_interval),
                    clock=lambda: clock[0])
    alerts: list[dict[str, Any]] = []
    for doc in events:
        # Never step the clock back: a late event is processed "now", as in the collector.
        clock[0] = max(clock[0], event_time(doc, clock[0] or time.time()))
        alerts.extend(engine.tick(clock[0]))
        alerts.extend(engine.process([doc]))
    alerts.extend(engine.drain())
    return alerts


def print_table(alerts: list[dict[str, Any]]) -> None:
    from canhgac.schema import get_path

    if not alerts:
        print("no alerts")
        return
    cols = ("time", "rule", "severity", "key", "count", "events")
    rows = []
    for a in alerts:
        al = get_path(a, "canhgac.alert") or {}
        name = get_path(a, "rule.name") or ""
        if al.get("update_of"):
            name += " (update)"
        rows.append((
            str(al.get("last_seen") or a.get("@timestamp", "")),
            name,
            f"{al.get('severity', '')} ({get_path(a, 'event.severity')})",
            str(al.get("key", "")),
            str(al.get("count", "")),
            str(len(al.get("source_event_ids") or [])),
        ))
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    print(f"{len(alerts)} alert(s)")
