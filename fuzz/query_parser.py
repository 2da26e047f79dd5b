"""Coverage-guided fuzz target: the query language parser and both translators.

Any text must parse or raise QueryError (with a 1-based position); a parsed query
must translate to SQL and to Elasticsearch DSL. Run through ``make fuzz``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from collector.query.errors import QueryError
    from collector.query.parser import parse
    from collector.query.to_es import to_es
    from collector.query.to_sql import to_sql


def test_one_input(data: bytes) -> None:
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(400)
    try:
        node = parse(text)
    except QueryError as exc:
        if exc.position < 1:
            raise AssertionError(f"position {exc.position} for {text!r}") from None
        return
    to_sql(node)
    to_es(node)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
