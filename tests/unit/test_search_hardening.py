"""Searches cannot freeze the collector (issue 12, trust boundary 1).

Before: ``message:******#`` over one 71-character message took 35 s, because free-text
wildcards became one Python regex with several ``.*`` (exponential backtracking, GIL
held), and ``search.timeout`` was never applied. Now free-text wildcards match segment by
segment in linear time, and every store search runs under an enforced deadline.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.query import ast
from collector.query.to_sql import _cg_contains, contains_program
from collector.search.model import Scope, SearchRequest, SearchTimeout
from collector.search.store import StoreBackend
from tests.unit.test_query_corpus import WINDOW, ev, load_store


def _request(query: str) -> SearchRequest:
    return SearchRequest.build(query, start=WINDOW[0], end=WINDOW[1], limit=100)


@pytest.mark.timeout(60)  # the old matcher needed ~35 s on an idle machine; now microseconds
def test_pathological_wildcard_on_a_long_message_returns(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    load_store(path, [ev("long", 1, "auth", "s", "u", 3, message="a" * 71)])
    store = StoreBackend(path)
    for query in ("message:******#", "message:*a*a*a*a*a*a*a*a*a*a*#", "message:*?*?*?*?*?*#"):
        req = _request(query)
        assert store.search_sync(req, req.filter_ast(Scope.everything())).total == 0, query
    req = _request("message:*a*a*a*")
    assert store.search_sync(req, req.filter_ast(Scope.everything())).total == 1


def _old_regex(parts: tuple[ast.PatternPart, ...]) -> re.Pattern[str]:
    body = "".join((".*" if p.char == "*" else ".") if isinstance(p, ast.Wild) else re.escape(p)
                   for p in parts)
    return re.compile(body, re.IGNORECASE | re.ASCII | re.DOTALL)


_part = st.one_of(st.sampled_from([ast.Wild("*"), ast.Wild("?")]),
                  st.text(alphabet="abAB#.", min_size=1, max_size=3))


@settings(max_examples=400, deadline=None)
@given(st.lists(_part, max_size=6), st.text(alphabet="abAB#.\n", max_size=12))
def test_segment_matching_means_what_the_regex_meant(parts: list[ast.PatternPart],
                                                     text: str) -> None:
    program = contains_program(tuple(parts))
    assert bool(_cg_contains(program, text)) == bool(_old_regex(tuple(parts)).search(text))


def test_the_store_deadline_is_enforced(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    load_store(path, [ev(f"e{i}", 1, "auth", "s", "u", 3, message=f"m {i}") for i in range(3000)])
    req = _request("message:*m*")
    with pytest.raises(SearchTimeout, match="search.timeout"):
        StoreBackend(path, timeout=0.0).search_sync(req, req.filter_ast(Scope.everything()))
    ok = StoreBackend(path, timeout=30.0).search_sync(req, req.filter_ast(Scope.everything()))
    assert ok.total == 3000
