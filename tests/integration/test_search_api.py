"""POST /v1/search on a real collector (TLS, loopback), the embedded store behind it, operator
tokens and scopes, and `canhgac query --collector`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from canhgac.cli import main
from canhgac.tls import client_context
from collector.search.model import Scope
from tests.fixtures.collector import RunningCollector, start_collector
from tests.unit.test_query_corpus import EVENTS, WINDOW, load_store

pytestmark = pytest.mark.integration

YTE = "Sở Y tế"
YTE_IDS = {e["event"]["id"] for e in EVENTS if e["canhgac"]["unit"]["name"] == YTE}
ALL_IDS = {e["event"]["id"] for e in EVENTS}


@pytest.fixture
async def api(tmp_path) -> AsyncIterator[tuple[RunningCollector, aiohttp.ClientSession]]:
    # written before the collector starts: its store output opens the same file at start-up
    load_store(tmp_path / "collector" / "events.db")
    running, runner = await start_collector(tmp_path, components=("collector.search",))
    conn = aiohttp.TCPConnector(ssl=client_context(running.ca))
    async with aiohttp.ClientSession(connector=conn) as http:
        yield running, http
    await runner.cleanup()


async def _search(api: Any, token: str | None, **body: Any) -> tuple[int, dict[str, Any]]:
    running, http = api
    body.setdefault("from", WINDOW[0])
    body.setdefault("to", WINDOW[1])
    body.setdefault("limit", 1000)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.post(f"{running.url}/v1/search", json=body, headers=headers) as r:
        return r.status, await r.json()


def _ids(res: dict[str, Any]) -> set[str]:
    return {h["event"]["id"] for h in res["hits"]}


async def test_tokens_are_required_and_checked(api) -> None:
    running, _ = api
    ops = running.ctx.ports.operators
    status, body = await _search(api, None, query="*")
    assert status == 401 and "token" in body["error"]
    status, _ = await _search(api, "cgo_0000.wrong", query="*")
    assert status == 401
    token = ops.create("lan", "analyst", Scope.everything())
    status, body = await _search(api, token, query="*")
    assert status == 200 and _ids(body) == ALL_IDS and body["backend"] == "store"
    ops.revoke("lan")  # takes effect on the very next request
    status, _ = await _search(api, token, query="*")
    assert status == 401


async def test_bad_requests_name_the_problem(api) -> None:
    running, _ = api
    token = running.ctx.ports.operators.create("a", "admin", Scope.everything())
    status, body = await _search(api, token, query="source.port:[1 TO x]")
    assert status == 400 and body["position"] == 19 and "integers" in body["message"]
    status, body = await _search(api, token, query="*", bogus=1)
    assert status == 400 and "bogus" in body["error"]
    status, body = await _search(api, token, query="*", since="1h")
    assert status == 400 and "either since or from/to" in body["error"]
    status, body = await _search(api, token, query="*", limit=10**6)
    assert status == 400 and "limit" in body["error"]
    status, body = await _search(api, token, query="*", top="message")
    assert status == 400 and "top" in body["error"]


ESCAPES = [
    "*", "", "canhgac.unit.name:*", 'NOT canhgac.unit.name:"Sở Y tế"',
    'canhgac.unit.name:"Sở Thông tin và Truyền thông"', "canhgac.unit.name:Sở*",
    "canhgac.system.id:hue-portal OR canhgac.system.id:hd-egov",
    "canhgac.system.id:* OR NOT canhgac.system.id:*", "_exists_:canhgac.unit.name",
    "(event.dataset:auth OR NOT event.dataset:auth)", "canhgac.unit.name:[* TO *]",
    "canhgac.unit.name:{A TO z}", "canhgac.unit.name:(x OR NOT x)", "NOT (canhgac.unit.name:x)",
    'canhgac:* OR "Sở"',
]


@pytest.mark.parametrize("query", ESCAPES)
async def test_a_unit_viewer_never_sees_another_unit(api, query: str) -> None:
    running, _ = api
    token = running.ctx.ports.operators.create("v", "viewer", Scope(units=(YTE,)))
    for top in ("canhgac.unit.name", "canhgac.system.id", "host.name"):
        status, res = await _search(api, token, query=query, top=top, top_size=50,
                                    histogram="10m")
        assert status == 200, res
        assert _ids(res) <= YTE_IDS
        assert res["total"] == len(_ids(res))
        assert sum(b["count"] for b in res["histogram"]["buckets"]) == res["total"]
        keys = {b["key"] for b in res["top"]["buckets"]}
        if top == "canhgac.unit.name":
            assert keys <= {YTE}
        if top == "canhgac.system.id":
            assert keys <= {"hue-hr"}
    status, res = await _search(api, token, query=query, system="hue-portal")
    assert status == 200 and res["total"] == 0  # another unit's system: nothing


async def test_system_scope_and_mixed_scope(api) -> None:
    running, _ = api
    ops = running.ctx.ports.operators
    tok = ops.create("s", "viewer", Scope.parse("system:hd-egov,unit:Sở Y tế"))
    status, res = await _search(api, tok, query="*")
    hd = {e["event"]["id"] for e in EVENTS if e["canhgac"]["system"]["id"] == "hd-egov"}
    assert status == 200 and _ids(res) == hd | YTE_IDS


async def test_cli_query_through_the_collector(api, capsys) -> None:
    running, _ = api
    token = running.ctx.ports.operators.create("cli", "viewer", Scope(units=(YTE,)))
    args = ["query", "event.dataset:auth", "--from", WINDOW[0], "--to", WINDOW[1],
            "--collector", running.url, "--ca", str(running.ca), "--token", token,
            "--format", "json"]
    code = await asyncio.to_thread(main, args)
    out = capsys.readouterr().out
    assert code == 0
    import orjson

    assert _ids(orjson.loads(out)) == {"e03", "e22"}
    code = await asyncio.to_thread(main, [*args[:-2], "--format", "table"])
    out = capsys.readouterr().out
    assert code == 0 and "Đăng nhập thất bại cho người dùng Nguyễn Văn A" in out
    code = await asyncio.to_thread(main, ["query", "a:(", "--collector", running.url, "--ca",
                                          str(running.ca), "--token", token])
    err = capsys.readouterr().err
    assert code == 2 and "position 3" in err and "^" in err
    code = await asyncio.to_thread(main, ["query", "*", "--collector", running.url, "--ca",
                                          str(running.ca), "--token", "cgo_x.y"])
    assert code == 2 and "refused the token (401)" in capsys.readouterr().err
