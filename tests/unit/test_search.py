"""Search pieces without a collector: scopes, request validation, operator tokens, the
terminal table, and `canhgac query` on a local store file."""

from __future__ import annotations

import sqlite3
import unicodedata
from pathlib import Path

import orjson
import pytest

from canhgac.cli import main
from canhgac.errors import UserError
from collector.query import ast
from collector.search.model import Scope, SearchError, SearchRequest
from collector.search.operators import OperatorStore
from collector.search.render import cell_width, fit, summary, table
from tests.unit.test_query_corpus import EVENTS, WINDOW, load_store


def test_scope_parsing() -> None:
    assert Scope.parse("all") == Scope.everything()
    s = Scope.parse(["unit:Sở Y tế,system:hue-portal", "unit:UBND, xã"])
    assert s.units == ("Sở Y tế", "UBND, xã") and s.systems == ("hue-portal",)
    for bad in ("", "team:x", "unit:", "sở y tế"):
        with pytest.raises(UserError):
            Scope.parse(bad)
    assert Scope().to_ast() == ast.MatchNone()  # an empty scope sees nothing


def test_scope_is_outside_the_user_query() -> None:
    req = SearchRequest.build("a:1 OR b:2", since="1h", system="s1")
    node = req.filter_ast(Scope(units=("U",)))
    assert isinstance(node, ast.And)
    assert node.children[0] == ast.Eq("canhgac.unit.name", "keyword", "U")
    assert node.children[-1] == ast.Or((ast.Eq("a", "keyword", "1"), ast.Eq("b", "keyword", "2")))


def test_request_validation() -> None:
    with pytest.raises(SearchError, match="either since"):
        SearchRequest.build("", since="1h", start="2026-01-01T00:00:00Z")
    with pytest.raises(SearchError, match="RFC 3339"):
        SearchRequest.build("", start="yesterday")
    with pytest.raises(SearchError, match="empty"):
        SearchRequest.build("", start="2026-01-02T00:00:00Z", end="2026-01-01T00:00:00Z")
    with pytest.raises(SearchError, match="more than"):
        SearchRequest.build("", since="30d", histogram="1s")
    with pytest.raises(SearchError, match="keyword, numeric"):
        SearchRequest.build("", top="message")
    r = SearchRequest.build("", since="15m", now=1000.0)
    assert r.end_ms - r.start_ms == 900_001


def test_operator_tokens_are_hashed_and_rotatable(tmp_path: Path) -> None:
    store = OperatorStore(tmp_path / "operators.db")
    token = store.create("Nguyễn Lan", "viewer", Scope(units=("Sở Y tế",)))
    op = store.verify(token)
    assert op is not None and op.role == "viewer" and op.scope.units == ("Sở Y tế",)
    raw = (tmp_path / "operators.db").read_bytes()
    assert token.split(".", 1)[1].encode() not in raw
    assert store.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert store.verify("cgo_nope") is None and store.verify("Bearer x") is None
    rotated = store.create("Nguyễn Lan", "analyst", Scope.everything())
    assert store.verify(token) is None
    assert store.verify(rotated).has_role("analyst")  # type: ignore[union-attr]
    assert not store.verify(rotated).has_role("admin")  # type: ignore[union-attr]
    assert [o["scope"] for o in store.list()] == ["all"]
    with pytest.raises(UserError):
        store.create("x", "root", Scope.everything())
    store.close()


def test_table_keeps_vietnamese_and_aligns() -> None:
    nfd = unicodedata.normalize("NFD", "Đăng nhập thất bại")
    assert cell_width(nfd) == cell_width("Đăng nhập thất bại") == 18
    assert cell_width("日本") == 4
    assert fit(nfd, 10) == "Đăng nhập…"
    assert cell_width(fit("Trần Thị Bình", 20)) == 20
    res = {"total": 2, "hits": EVENTS[2:4], "from": "a", "to": "b", "backend": "store",
           "took_ms": 1, "top": {"field": "host.name", "buckets": [{"key": "hr-db", "count": 2}]},
           "histogram": {"interval": "5m", "buckets": [
               {"key": 0, "key_as_string": "2026-11-23T08:00:00.000Z", "count": 2}]}}
    text = table(res, width=160)
    assert "Đăng nhập thất bại cho người dùng" in text
    rows = text.splitlines()[:3]
    assert len({cell_width(r[:93]) for r in rows}) == 1  # fixed columns line up
    assert "TOP host.name" in text and "HISTOGRAM every 5m" in text
    assert summary(EVENTS[7]) == "10.1.2.3:443 → 203.0.113.9:8443 tcp"


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.db"
    load_store(path)
    return path


def test_cli_local_store_formats(store_file: Path, capsys) -> None:
    base = ["query", "--store", str(store_file), "--from", WINDOW[0], "--to", WINDOW[1]]
    assert main([*base[:1], "event.dataset:process", *base[1:], "--format", "ndjson"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert {orjson.loads(x)["event"]["id"] for x in lines} == {"e05", "e06", "e07", "e23"}
    assert main([*base[:1], 'user.name:"Trần Thị Bình"', *base[1:], "--format", "json",
                 "--top", "host.name", "--histogram", "1h"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert out["hits"][0]["user"]["name"] == "Trần Thị Bình"
    assert out["top"]["buckets"] == [{"key": "web-01", "count": 1}]
    assert main([*base[:1], "source.ip:10.0.0.0/8", *base[1:]]) == 0
    assert "5 sự kiện / events" in capsys.readouterr().out


def test_cli_errors_exit_2(store_file: Path, tmp_path: Path, capsys) -> None:
    assert main(["query", "source.port:>x", "--store", str(store_file)]) == 2
    err = capsys.readouterr().err
    assert "position 14" in err and "^" in err
    assert main(["query", "*", "--store", str(tmp_path / "missing.db")]) == 2
    assert "canhgac up" in capsys.readouterr().err
    assert main(["query", "*", "--since", "1h", "--from", "2026-01-01T00:00:00Z"]) == 2
    assert main(["query", "*", "--token", "x"]) == 2
    assert main(["query", "*", "--store", str(store_file), "--since", "abc"]) == 2


def test_cli_default_store_is_the_local_collectors(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    load_store(Path(".canhgac/collector/events.db"))
    assert main(["query", "event.dataset:host.metrics", "--since", "4h"]) == 0
    assert "3 sự kiện" in capsys.readouterr().out


def test_operator_cli(tmp_path: Path, capsys) -> None:
    state = ["--state-dir", str(tmp_path)]
    assert main(["collector", "operator-token", "--name", "minh", "--role", "viewer",
                 "--scope", "unit:Sở Y tế", *state]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("cgo_")
    assert main(["collector", "operators", *state, "--format", "json"]) == 0
    assert orjson.loads(capsys.readouterr().out)[0]["scope"] == "unit:Sở Y tế"
    assert main(["collector", "operator-token", "--name", "x", "--role", "viewer",
                 "--scope", "team:x", *state]) == 2
    assert main(["collector", "revoke-operator", "minh", *state]) == 0
    assert main(["collector", "revoke-operator", "nobody", *state]) == 2
    db = sqlite3.connect(tmp_path / "operators.db")
    assert db.execute("SELECT revoked FROM operators").fetchone() == (1,)


def test_revocation_from_another_process_takes_effect_on_the_next_request(tmp_path: Path) -> None:
    """Issue 12 finding: it took up to 5 s (a time-based cache in the serving process)."""
    serving = OperatorStore(tmp_path / "operators.db")
    token = serving.create("minh", "viewer", Scope.everything())
    assert serving.verify(token) is not None  # cached now
    other = OperatorStore(tmp_path / "operators.db")  # what `collector revoke-operator` opens
    assert other.revoke("minh")
    other.close()
    assert serving.verify(token) is None
    serving.close()


@pytest.mark.parametrize("since", ["99999999999999999999d", 1e308, "36501d"])
def test_a_huge_since_is_a_clear_400_not_a_500(since: object) -> None:
    """Issue 12 finding: a huge ``since`` overflowed SQLite's integer and answered 500."""
    with pytest.raises(SearchError, match="since: at most 100 years"):
        SearchRequest.build("*", since=since)  # type: ignore[arg-type]
    with pytest.raises(SearchError, match="histogram: at most"):
        SearchRequest.build("*", histogram="99999999999999999999d")


def test_a_query_typed_in_decomposed_unicode_finds_the_same(tmp_path: Path) -> None:
    """Issue 9 finding (NFD text): queries are normalised like the inventory is."""
    from collector.search.store import StoreBackend

    path = tmp_path / "events.db"
    load_store(path)
    store = StoreBackend(path)
    nfc_q = 'canhgac.unit.name:"Sở Y tế"'
    nfd_q = unicodedata.normalize("NFD", nfc_q)
    assert nfd_q != nfc_q
    found = []
    for q in (nfc_q, nfd_q):
        req = SearchRequest.build(q, start=WINDOW[0], end=WINDOW[1], limit=100)
        found.append({h["event"]["id"] for h in store.search_sync(req, req.filter_ast(
            Scope.everything())).hits})
    assert found[0] == found[1] and len(found[0]) == 7


@pytest.mark.parametrize("query", ["*", "event.dataset:auth", 'canhgac.unit.name:"Sở Y tế"',
                                   "NOT event.dataset:auth"])
@pytest.mark.parametrize("interval", ["1m", "5m", "1h"])
def test_histogram_bucket_by_bucket_counts_what_one_grouped_pass_counts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, query: str, interval: str) -> None:
    """The store counts a histogram of up to RANGE_BUCKETS buckets with one COUNT per bucket
    (an index range instead of sorting every match); past that, one GROUP BY. Same buckets,
    same total, same page of hits either way."""
    from collector.search import store as store_mod

    path = tmp_path / "events.db"
    load_store(path)
    backend = store_mod.StoreBackend(path)
    req = SearchRequest.build(query, start=WINDOW[0], end=WINDOW[1], limit=5, histogram=interval)
    node = req.filter_ast(Scope.everything())
    by_bucket = backend.search_sync(req, node)
    monkeypatch.setattr(store_mod, "RANGE_BUCKETS", 0)
    grouped = backend.search_sync(req, node)
    assert by_bucket.total == grouped.total > 0
    assert by_bucket.histogram == grouped.histogram
    assert [h["event"]["id"] for h in by_bucket.hits] == [h["event"]["id"] for h in grouped.hits]
