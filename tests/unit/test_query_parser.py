"""The query language: AST, errors with positions, translations, no SQL injection."""

from __future__ import annotations

import ipaddress
import sqlite3

import pytest

from collector.query import QueryError, ast, parse, register_functions, to_es, to_sql
from collector.query.to_es import pattern_to_es
from collector.query.to_sql import glob_of, ip_key


def test_precedence_not_and_or() -> None:
    node = parse("a:1 OR b:2 AND NOT c:3")
    assert node == ast.Or((
        ast.Eq("a", "keyword", "1"),
        ast.And((ast.Eq("b", "keyword", "2"), ast.Not(ast.Eq("c", "keyword", "3")))),
    ))


def test_implicit_and_groups_and_field_groups() -> None:
    assert parse("a:1 b:2") == parse("a:1 AND b:2") == parse("a:1 && b:2")
    assert parse("host.name:(x OR y*)") == ast.Or((
        ast.Eq("host.name", "keyword", "x"), ast.Pattern("host.name", ("y", ast.Wild("*")))))
    assert parse("(a:1 OR a:2) -b:3") == ast.And((
        ast.Or((ast.Eq("a", "keyword", "1"), ast.Eq("a", "keyword", "2"))),
        ast.Not(ast.Eq("b", "keyword", "3"))))


def test_values_are_typed_by_field() -> None:
    assert parse("source.port:22") == ast.Eq("source.port", "long", 22)
    assert parse("host.cpu.usage:>=0.5") == ast.Range("host.cpu.usage", "double", 0.5, None, True, True)
    assert parse("source.ip:10.0.0.0/8") == ast.Cidr("source.ip", ipaddress.ip_network("10.0.0.0/8"))
    assert parse("source.ip:fe80::1") == ast.Eq("source.ip", "ip", "fe80::1")
    assert parse("@timestamp:>=2026-11-23T08:00:00Z") == ast.Range(
        "@timestamp", "date", 1795420800000, None, True, True)
    assert parse("@timestamp:>now-15m", now_ms=1_000_000_000) == ast.Range(
        "@timestamp", "date", 1_000_000_000 - 900_000, None, False, True)
    assert parse("message:Failed") == ast.Contains("message", ("Failed",))
    assert parse("Failed") == ast.Contains("message", ("Failed",))
    assert parse("rule.id:*") == ast.Exists("rule.id")
    assert parse("_exists_:rule.id") == ast.Exists("rule.id")
    assert parse("*") == parse("*:*") == parse("") == ast.MatchAll()


def test_ranges() -> None:
    assert parse("source.port:[1 TO 1024}") == ast.Range("source.port", "long", 1, 1024, True, False)
    assert parse("source.port:{* TO 10]") == ast.Range("source.port", "long", None, 10, False, True)
    assert parse("source.port:[* TO *]") == ast.Exists("source.port")
    assert parse('user.name:["a b" TO c]') == ast.Range("user.name", "keyword", "a b", "c")


def test_escapes_and_phrases_keep_literals() -> None:
    assert parse('file.path:"/a/*.sh"') == ast.Eq("file.path", "keyword", "/a/*.sh")
    assert parse(r"file.path:/a/\*.sh") == ast.Eq("file.path", "keyword", "/a/*.sh")
    assert parse(r'message:"say \"hi\""') == ast.Contains("message", ('say "hi"',))
    assert parse("user.name:Trần*") == ast.Pattern("user.name", ("Trần", ast.Wild("*")))


@pytest.mark.parametrize(("query", "position", "fragment"), [
    ("(a:1 OR b:2", 1, "unclosed parenthesis"),
    ("a:1)", 4, "unmatched closing parenthesis"),
    ("a:1 AND", 8, "AND needs a clause after it"),
    ("OR a:1", 1, "OR needs a clause before it"),
    ("source.port:abc", 13, "integers"),
    ("source.ip:10.0.0.300", 11, "not an IP address"),
    ("source.ip:10.*", 11, "wildcards only work on keyword and text"),
    ('message:"unclosed', 9, "unclosed quote"),
    ("source.port:[1 TO", 18, "missing range bound"),
    ("source.port:[1 2]", 16, "expected TO"),
    ("source.port:[1 TO 2", 13, "unclosed range"),
    ("a:", 3, "missing value after a:"),
    ("host.*:x", 1, "wildcards in field names"),
    ("_id:x", 1, "cannot be searched"),
    ("message:[a TO b]", 9, "ranges do not work on text"),
    ("@timestamp:>yesterday", 13, "needs a date"),
    ("a:(b:1)", 4, "a field inside a field's group"),
    ("a:1 NOT", 8, "NOT needs a clause"),
    ("x\\", 2, "backslash at the end"),
])
def test_errors_name_the_position(query: str, position: int, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        parse(query)
    err = info.value
    assert err.position == position, (str(err), err.position)
    assert fragment in err.message
    assert err.as_json()["position"] == position
    assert err.caret().splitlines()[1].index("^") == position - 1 + 2
    assert err.exit_code == 2


def test_limits() -> None:
    with pytest.raises(QueryError, match="longer than"):
        parse("a:1 " * 2000)
    with pytest.raises(QueryError, match="nests deeper"):
        parse("(" * 40 + "a:1" + ")" * 40)


def test_to_es_shapes() -> None:
    assert to_es(parse("a:1 AND NOT b:2")) == {"bool": {"filter": [
        {"term": {"a": {"value": "1"}}}, {"bool": {"must_not": [{"term": {"b": {"value": "2"}}}]}}]}}
    assert to_es(parse("message:fail*ed")) == {"wildcard": {"message": {
        "value": "*fail*ed*", "case_insensitive": True}}}
    assert to_es(parse("source.ip:10.0.0.0/8")) == {"term": {"source.ip": {"value": "10.0.0.0/8"}}}
    assert to_es(parse("@timestamp:1795420800000")) == {"range": {"@timestamp": {
        "gte": 1795420800000, "lte": 1795420800000, "format": "epoch_millis"}}}
    assert pattern_to_es(("a*b\\", ast.Wild("?"))) == "a\\*b\\\\?"
    assert glob_of(("[x]*?", ast.Wild("*"))) == "[[]x][*][?]*"


def test_ip_keys_order_like_elasticsearch() -> None:
    assert ip_key("10.0.0.1") == ip_key("::ffff:10.0.0.1")
    assert ip_key("9.255.255.255") < ip_key("10.0.0.0") < ip_key("fe80::1")  # type: ignore[operator]
    assert ip_key("nope") is None


def _db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    register_functions(db)
    db.execute("CREATE TABLE events(id TEXT PRIMARY KEY, ts INTEGER, doc TEXT)")
    db.execute("INSERT INTO events VALUES('a', 1, ?)", ('{"user": {"name": "x"}, "message": "m"}',))
    db.execute("INSERT INTO events VALUES('b', 2, ?)", ('{"user": {"name": "y\'); DROP TABLE events; --"}}',))
    return db


@pytest.mark.parametrize("query", [
    "user.name:\"x') OR 1=1 --\"",
    "user.name:x\\'\\)\\ OR\\ 1=1",
    "\"'; DROP TABLE events; --\"",
    "user.name:*DROP*",
    'user\\".name:x',
])
def test_user_text_never_reaches_sql(query: str) -> None:
    db = _db()
    try:
        node = parse(query)
    except QueryError:
        return
    where, params = to_sql(node)
    assert "DROP" not in where and "1=1" not in where
    rows = db.execute(f"SELECT id FROM events WHERE {where}", params).fetchall()
    assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 2
    assert ("a",) not in rows


def test_sql_matches_arrays_scalars_and_missing_fields() -> None:
    db = sqlite3.connect(":memory:")
    register_functions(db)
    db.execute("CREATE TABLE events(id TEXT, ts INTEGER, doc TEXT)")
    docs = {"arr": '{"event": {"category": ["a", "b"]}, "source": {"port": 5}}',
            "one": '{"event": {"category": "b"}, "source": {"port": "7"}}',
            "none": '{"n": true, "source": {"port": "x"}}'}
    for k, v in docs.items():
        db.execute("INSERT INTO events VALUES(?, 0, ?)", (k, v))

    def q(text: str) -> set[str]:
        where, params = to_sql(parse(text))
        return {r[0] for r in db.execute(f"SELECT id FROM events WHERE {where}", params)}

    assert q("event.category:b") == {"arr", "one"}
    assert q("NOT event.category:a") == {"one", "none"}
    assert q("event.category:*") == {"arr", "one"}
    assert q("source.port:>=6") == {"one"}  # numeric strings compare as numbers, like ES coercion
    assert q("n:true") == {"none"}
