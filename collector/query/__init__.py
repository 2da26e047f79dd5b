"""The canhgac query language: one Lucene-subset syntax for Elasticsearch and the embedded store.

``parse(text) -> ast.Node``, then ``to_es(node)`` or ``to_sql(node)``. See docs/query.md.
"""

from __future__ import annotations

from collector.query.errors import QueryError
from collector.query.parser import parse
from collector.query.to_es import to_es
from collector.query.to_sql import register_functions, to_sql

__all__ = ["QueryError", "parse", "register_functions", "to_es", "to_sql"]
