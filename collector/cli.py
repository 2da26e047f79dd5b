"""`canhgac collector ...`: run the collector and manage agent credentials."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collector.auth import AgentRecord
    from collector.inventory import InventoryHolder
from pathlib import Path

from canhgac.errors import UserError
from canhgac.timeutil import parse_duration

# Other areas add subcommands under `canhgac collector` through these modules'
# ``register_collector(subparsers)``.
EXTENSIONS: tuple[str, ...] = ("collector.search.cli", "collector.policy.cli")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "collector",
        help="run the collector; manage enrollment tokens and agents",
        description="The collector receives agent events over TLS, checks, enriches and "
        "stores them / Bộ thu thập: nhận, kiểm tra, làm giàu và lưu sự kiện từ agent.",
    )
    csub = p.add_subparsers(dest="collector_command", metavar="SUBCOMMAND", required=True)

    run = csub.add_parser("run", help="run the collector service")
    run.add_argument("--config", "-c", help="collector.yaml (default: embedded defaults)")
    run.set_defaults(func=cmd_run)

    tok = csub.add_parser(
        "enroll-token",
        help="create a one-time enrollment token for an agent of a system",
        description="Create a one-time token an agent exchanges for its credentials "
        "(canhgac agent enroll). Tạo mã đăng ký một lần cho agent.",
    )
    _state_args(tok)
    tok.add_argument("--system", required=True, help="information system id (from the inventory)")
    tok.add_argument("--ttl", default="24h", help="validity, e.g. 30m, 24h, 7d (default 24h)")
    tok.add_argument("--uses", type=int, default=1, help="how many agents may use it (default 1)")
    tok.set_defaults(func=cmd_enroll_token)

    tl = csub.add_parser("enroll-tokens", help="list enrollment tokens that can still be used")
    _state_args(tl)
    tl.add_argument("--format", choices=["table", "json"], default="table")
    tl.set_defaults(func=cmd_enroll_tokens)

    rt = csub.add_parser("revoke-token", help="revoke an unused enrollment token by its id")
    _state_args(rt)
    rt.add_argument("token_id", help="the id shown by enroll-token / enroll-tokens")
    rt.set_defaults(func=cmd_revoke_token)

    rev = csub.add_parser("revoke-agent", help="revoke an agent's credentials (takes effect at once)")
    _state_args(rev)
    rev.add_argument("agent_id")
    rev.set_defaults(func=cmd_revoke)

    ls = csub.add_parser("agents", help="list enrolled agents")
    _state_args(ls)
    ls.add_argument("--format", choices=["table", "json"], default="table")
    ls.add_argument("--lang", default=None, metavar="vi|en",
                    help="language of the table (default: CANHGAC_LANG, the locale, vi)")
    ls.set_defaults(func=cmd_agents)

    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register_collector(csub)


def _state_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", help="collector.yaml (to find the state directory)")
    p.add_argument("--state-dir", help="collector state directory (default .canhgac/collector)")


def state_dir_of(args: argparse.Namespace) -> Path:
    from collector.config import load

    if getattr(args, "state_dir", None):
        return Path(args.state_dir)
    config, _ = load(getattr(args, "config", None))
    return Path(config.state_dir)


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from collector.app import serve
    from collector.config import load

    config, source = load(args.config)
    asyncio.run(serve(config, source))
    return 0


def _open_auth(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from collector.auth import AuthStore

    return AuthStore(state_dir_of(args) / "auth.db")


def cmd_enroll_token(args: argparse.Namespace) -> int:
    from collector.config import load
    from collector.inventory import load_inventory

    try:
        ttl = parse_duration(args.ttl)
    except ValueError as exc:
        raise UserError(f"--ttl: {exc}") from None
    if args.uses < 1:
        raise UserError("--uses must be at least 1")
    config, _ = load(args.config) if args.config else (None, None)
    if config is not None and config.inventory is not None:
        inv = load_inventory(config.inventory)
        if inv.system(args.system) is None:
            known = ", ".join(s.id for s in inv.current.systems) or "(none)"
            raise UserError(f"--system {args.system!r} is not in the inventory {config.inventory} "
                            f"(known: {known})")
    auth = _open_auth(args)
    token = auth.create_enroll_token(args.system, ttl, args.uses)
    auth.close()
    print(token)
    print(f"# id {auth.token_id(token)} (canhgac collector revoke-token {auth.token_id(token)})\n"
          f"# valid {args.ttl}, {args.uses} use(s), system {args.system}. On the server:\n"
          f"#   canhgac agent enroll --collector https://COLLECTOR:8443 --token <token> --ca ca.pem",
          file=sys.stderr)
    return 0


def cmd_enroll_tokens(args: argparse.Namespace) -> int:
    import orjson

    from canhgac.table import render
    from canhgac.timeutil import from_epoch

    auth = _open_auth(args)
    tokens = auth.enroll_tokens()
    auth.close()
    if args.format == "json":
        print(orjson.dumps(tokens, option=orjson.OPT_INDENT_2).decode())
        return 0
    rows = [("ID", "SYSTEM", "USES LEFT", "EXPIRES (UTC)", "NOTE")]
    rows += [(t["id"], t["system_id"], str(t["uses_left"]), from_epoch(t["expires"])[:19],
              t["note"]) for t in tokens]
    print(render(rows))
    return 0


def cmd_revoke_token(args: argparse.Namespace) -> int:
    auth = _open_auth(args)
    ok = auth.revoke_enroll_token(args.token_id)
    auth.close()
    if not ok:
        raise UserError(f"no usable enrollment token has id {args.token_id!r} "
                        "(see canhgac collector enroll-tokens)")
    print(f"revoked enrollment token {args.token_id}")
    return 0


def _agent_facts(a: AgentRecord, state: str, inventory: InventoryHolder,
                 now: float) -> dict[str, Any]:
    """What an operator needs to know of one agent, from its last heartbeat."""
    from collector import fleet

    hb = a.heartbeat if isinstance(a.heartbeat, dict) else {}
    raw_probes = hb.get("probes")
    probes: dict[str, Any] = raw_probes if isinstance(raw_probes, dict) else {}
    running = [n for n, p in probes.items() if isinstance(p, dict) and p.get("state") == "running"]
    failing = sorted(n for n, p in probes.items()
                     if isinstance(p, dict) and p.get("state") not in ("running", "disabled", None))
    system = inventory.system(a.system_id) if a.system_id else None
    known = not inventory.has_systems() or system is not None
    status = system.status if system is not None else None
    flag = ("" if known else "system_not_in_inventory") or (
        "system_retired" if status == "retired" else "")
    raw_policy = hb.get("policy")
    pol: dict[str, Any] = raw_policy if isinstance(raw_policy, dict) else {}
    return {"agent_id": a.agent_id, "system_id": a.system_id, "system_known": known,
            "system_status": status, "flag": flag,
            "policy_version": pol.get("version"), "policy_error": str(pol.get("error") or ""),
            "policy_refused_version": pol.get("refused_version"),
            "version_behind": fleet.behind(str(hb.get("version") or "")),
            "hostname": a.hostname, "version": str(hb.get("version") or ""), "state": state,
            "enrolled": a.enrolled, "last_seen": a.last_seen, "revoked": a.revoked,
            "probes_total": len(probes), "probes_running": len(running),
            "probes_failing": failing}


def cmd_revoke(args: argparse.Namespace) -> int:
    auth = _open_auth(args)
    ok = auth.revoke(args.agent_id)
    auth.close()
    if not ok:
        raise UserError(f"agent {args.agent_id!r} is unknown or already revoked")
    print(f"revoked {args.agent_id}")
    return 0


# `collector agents` in the reader's language; flags loud in both (issue 9: fleet consistency).
_AGENT_WORDS_EN: dict[str, Any] = {
    "head": ("AGENT", "SYSTEM", "HOST", "VERSION", "STATE", "LAST SEEN", "POLICY", "PROBES"),
    "system_not_in_inventory": " (NOT IN INVENTORY)", "system_retired": " (RETIRED)",
    "online": "online", "offline": "offline", "revoked": "revoked", "ago": "{n}s ago", "never": "never",
    "running": "{n}/{of} running", "refused": " (v{v} refused)", "older": " (older)",
}
_AGENT_WORDS_VI: dict[str, Any] = {
    "head": ("TÁC TỬ", "HỆ THỐNG", "MÁY", "PHIÊN BẢN", "TRẠNG THÁI", "LẦN CUỐI", "CHÍNH SÁCH",
             "THU THẬP"),
    "system_not_in_inventory": " (KHÔNG CÓ TRONG DANH MỤC)", "system_retired": " (ĐÃ DỪNG)",
    "online": "trực tuyến", "offline": "mất kết nối", "revoked": "đã thu hồi", "ago": "{n} giây trước",
    "never": "chưa từng", "running": "{n}/{of} đang chạy", "refused": " (v{v} bị từ chối)",
    "older": " (cũ hơn)",
}


def cmd_agents(args: argparse.Namespace) -> int:
    import orjson

    from collector.config import load
    from collector.fleet import Presence
    from collector.inventory import load_inventory

    config, _ = load(getattr(args, "config", None))
    presence = Presence.of(config)
    inventory = load_inventory(config.inventory)
    auth = _open_auth(args)
    agents = auth.agents()
    auth.close()
    now = time.time()
    facts = [_agent_facts(a, presence.state(a, now), inventory, now) for a in agents]
    if args.format == "json":
        print(orjson.dumps(facts, option=orjson.OPT_INDENT_2).decode())
        return 0
    from canhgac.lang import resolve_lang

    try:
        vi = resolve_lang(args.lang) == "vi"
    except ValueError as exc:
        raise UserError(f"--lang: {exc}") from None
    words = _AGENT_WORDS_VI if vi else _AGENT_WORDS_EN
    rows: list[tuple[object, ...]] = [words["head"]]
    for f in facts:
        seen = words["ago"].format(n=int(now - f["last_seen"])) if f["last_seen"] else words["never"]
        system = f["system_id"] + words.get(f["flag"], "")
        probes = words["running"].format(n=f["probes_running"], of=f["probes_total"])
        if f["probes_failing"]:
            probes += " — " + ", ".join(f["probes_failing"])
        policy = "-" if f["policy_version"] is None else f"v{f['policy_version']}"
        if f["policy_error"]:
            policy += words["refused"].format(v=f["policy_refused_version"])
        version = f["version"] or "?"
        if f["version_behind"]:
            version += words["older"]
        rows.append((f["agent_id"], system, f["hostname"], version, words[f["state"]],
                     seen, policy, probes))
    from canhgac.table import render

    print(render(rows))
    return 0
