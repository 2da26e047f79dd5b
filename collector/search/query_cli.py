"""`canhgac query QUERY`: search events, in the local embedded store or through a collector.

By default it reads ``.canhgac/collector/events.db`` directly (what `canhgac up`
writes), so it works with no token on the machine that runs the collector;
``--collector URL --token T`` asks a collector's ``POST /v1/search`` instead,
with the operator's scope enforced there.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_STORE = Path(".canhgac/collector/events.db")

EPILOG = """\
examples / ví dụ:
  canhgac query 'event.dataset:host.metrics' --since 15m
  canhgac query 'event.dataset:auth AND event.outcome:failure' --since 1h --top source.ip
  canhgac query 'source.ip:10.0.0.0/8 AND NOT user.name:root' --histogram 5m
  canhgac query 'message:"Đăng nhập"' --format ndjson --limit 1000
  canhgac query '*' --collector https://collector:8443 --token $CANHGAC_TOKEN --ca ca.pem
syntax: docs/query.md (field:value, "phrases", wildcards * ?, [a TO b], field:>=5,
        AND/OR/NOT, parentheses, source.ip:10.0.0.0/8)
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "query",
        help="search events (embedded store or a collector) / tìm kiếm sự kiện",
        description="Search events with a Lucene-like query. / Tìm kiếm sự kiện.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("query", nargs="?", default="", help="the query ('' or '*' for everything)")
    when = p.add_argument_group("time range (default: the last 24h)")
    when.add_argument("--since", help="look back this far, e.g. 15m, 1h, 7d")
    when.add_argument("--from", dest="start", metavar="T", help="start, RFC 3339 (inclusive)")
    when.add_argument("--to", dest="end", metavar="T", help="end, RFC 3339 (exclusive)")
    p.add_argument("--system", help="only this information system id")
    p.add_argument("--limit", type=int, default=None, help="events to show (default 100, max 10000)")
    p.add_argument("--format", choices=["table", "json", "ndjson"], default="table")
    p.add_argument("--top", metavar="FIELD", help="most frequent values of FIELD")
    p.add_argument("--top-size", type=int, default=None, help="how many top values (default 10)")
    p.add_argument("--histogram", metavar="INTERVAL", help="event counts per interval, e.g. 5m")
    src = p.add_argument_group("where to search")
    src.add_argument("--store", help=f"embedded store file (default {DEFAULT_STORE}, "
                     "or $CANHGAC_STORE)")
    src.add_argument("--collector", metavar="URL", help="search through this collector's API")
    src.add_argument("--token", help="operator token for --collector (default $CANHGAC_TOKEN)")
    src.add_argument("--ca", help="CA certificate that signed the collector's certificate")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> Any:
    from canhgac.errors import UserError

    if args.ca and not Path(args.ca).exists():
        raise UserError(f"--ca {args.ca}: file not found")
    if args.since and (args.start or args.end):
        raise UserError("use either --since or --from/--to, not both")
    if args.collector:
        return _remote(args)
    if args.token or args.ca:
        raise UserError("--token and --ca go with --collector URL")
    return _local(args)


def _request_fields(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"query": args.query}
    for key, value in (("since", args.since), ("from", args.start), ("to", args.end),
                       ("system", args.system), ("limit", args.limit), ("top", args.top),
                       ("top_size", args.top_size), ("histogram", args.histogram)):
        if value is not None:
            body[key] = value
    return body


def _print(result: dict[str, Any], fmt: str) -> int:
    import orjson

    if fmt == "json":
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif fmt == "ndjson":
        out = sys.stdout.buffer
        for doc in result.get("hits") or []:
            out.write(orjson.dumps(doc) + b"\n")
        out.flush()
    else:
        from collector.search.render import table

        print(table(result))
    return 0


def _show_query_error(exc: Exception) -> None:
    caret = getattr(exc, "caret", None)
    if callable(caret) and caret():
        print(caret(), file=sys.stderr)


def _local(args: argparse.Namespace) -> int:
    from canhgac.errors import UserError
    from collector.query.errors import QueryError
    from collector.search.model import Scope, SearchRequest
    from collector.search.store import StoreBackend

    b = _request_fields(args)
    try:
        req = SearchRequest.build(b["query"], since=b.get("since"), start=b.get("from"),
                                  end=b.get("to"), system=b.get("system"), limit=b.get("limit"),
                                  top=b.get("top"), top_size=b.get("top_size"),
                                  histogram=b.get("histogram"))
        node = req.filter_ast(Scope.everything())
    except QueryError as exc:
        _show_query_error(exc)
        raise
    path = Path(args.store or os.environ.get("CANHGAC_STORE") or DEFAULT_STORE)
    if not path.exists():
        raise UserError(f"no event store at {path}: start the stack with `canhgac up`, or use "
                        "--store FILE / --collector URL")
    backend = StoreBackend(path, threads=1)
    result = backend.search_sync(req, node)
    return _print(result.as_json(req), args.format)


async def _remote(args: argparse.Namespace) -> int:
    import aiohttp
    import orjson

    from canhgac.errors import UserError
    from collector.query.errors import QueryError

    token = args.token or os.environ.get("CANHGAC_TOKEN")
    if not token:
        raise UserError("--collector needs an operator token: --token T or $CANHGAC_TOKEN "
                        "(canhgac collector operator-token)")
    ssl_ctx: Any = None
    if args.collector.startswith("https://"):
        from canhgac.tls import client_context

        ssl_ctx = client_context(Path(args.ca)) if args.ca else True
    url = args.collector.rstrip("/") + "/v1/search"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            async with session.post(url, data=orjson.dumps(_request_fields(args)), ssl=ssl_ctx,
                                    headers={"Authorization": f"Bearer {token}",
                                             "Content-Type": "application/json"}) as resp:
                raw = await resp.read()
                status = resp.status
    except (aiohttp.ClientError, OSError) as exc:
        raise UserError(f"cannot reach the collector at {args.collector}: {exc}") from None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = {"error": raw[:200].decode("utf-8", "replace")}
    if status == 400 and "position" in body:
        error = QueryError(body.get("message", "invalid query"), int(body["position"]), args.query)
        _show_query_error(error)
        raise error
    if status in (401, 403):
        raise UserError(f"collector refused the token ({status}): {body.get('error', '')}")
    if status != 200:
        raise UserError(f"collector answered {status}: {body.get('error', '')}")
    return _print(body, args.format)
