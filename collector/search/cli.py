"""`canhgac collector operator-token|operators|revoke-operator`: SOC operator credentials."""

from __future__ import annotations

import argparse
import sys

import orjson


def register_collector(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the operator subcommands under `canhgac collector` (called by collector.cli)."""
    from collector.cli import _state_args

    p = sub.add_parser(
        "operator-token",
        help="create (or rotate) an API token for a SOC operator",
        description="Create or rotate a search API token for a SOC operator, with a role and a "
        "scope. The token is printed once; only its hash is stored. / Tạo mã truy cập cho "
        "cán bộ giám sát (SOC), theo vai trò và phạm vi.",
        epilog="examples:\n"
        "  canhgac collector operator-token --name lan --role analyst --scope all\n"
        "  canhgac collector operator-token --name minh --role viewer "
        "--scope 'unit:Sở Y tế,system:hue-portal'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _state_args(p)
    p.add_argument("--name", required=True, help="operator name (one token per name)")
    p.add_argument("--role", required=True, choices=["admin", "analyst", "viewer"])
    p.add_argument("--scope", required=True, action="append",
                   help="all, or unit:<name> / system:<id> items separated by commas "
                   "(repeatable, e.g. for unit names with commas)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_operator_token)

    ls = sub.add_parser("operators", help="list SOC operators (never their tokens)")
    _state_args(ls)
    ls.add_argument("--format", choices=["table", "json"], default="table")
    ls.set_defaults(func=cmd_operators)

    rv = sub.add_parser("revoke-operator", help="revoke a SOC operator's token (at once)")
    _state_args(rv)
    rv.add_argument("name")
    rv.set_defaults(func=cmd_revoke_operator)


def _store(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from collector.cli import state_dir_of
    from collector.search.operators import DB_NAME, OperatorStore

    return OperatorStore(state_dir_of(args) / DB_NAME)


def cmd_operator_token(args: argparse.Namespace) -> int:
    from collector.search.model import Scope

    scope = Scope.parse(args.scope)
    store = _store(args)
    try:
        token = store.create(args.name, args.role, scope)
    finally:
        store.close()
    if args.format == "json":
        print(orjson.dumps({"name": args.name, "role": args.role, "scope": scope.describe(),
                            "token": token}).decode())
    else:
        print(token)
        print(f"operator {args.name}: role {args.role}, scope {scope.describe()} "
              "(the token is shown only now / mã chỉ hiển thị một lần)", file=sys.stderr)
    return 0


def cmd_operators(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        rows = store.list()
    finally:
        store.close()
    if args.format == "json":
        print(orjson.dumps(rows).decode())
        return 0
    print(f"{'NAME':<20} {'ROLE':<8} {'STATE':<8} SCOPE")
    for r in rows:
        print(f"{r['name']:<20} {r['role']:<8} {'revoked' if r['revoked'] else 'active':<8} {r['scope']}")
    return 0


def cmd_revoke_operator(args: argparse.Namespace) -> int:
    from canhgac.errors import UserError

    store = _store(args)
    try:
        if not store.revoke(args.name):
            raise UserError(f"no operator named {args.name!r}")
    finally:
        store.close()
    print(f"revoked operator {args.name}", file=sys.stderr)
    return 0
