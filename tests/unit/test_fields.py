"""The kernel's field-type table is the one source of field types: the Elasticsearch mappings,
the query language and the collector's validation all read it (that the kernel imports nothing
built on it is tests/unit/test_architecture.py's)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from canhgac import fields
from canhgac.fields import FIELD_TYPES, IP, LONG, endpoint_fields
from canhgac.schema import new_event
from collector.query.fields import IP as IP_KIND
from collector.query.fields import LONG as LONG_KIND
from collector.query.fields import TEXT, kind_of
from collector.validate import Invalid, Limits, parse_line
from shipper.outputs.elasticsearch.mappings import properties

KERNEL = Path(fields.__file__).resolve().parent


def test_mappings_are_rendered_from_the_table() -> None:
    props = properties()
    for name, ftype in FIELD_TYPES.items():
        node = props
        *parents, leaf = name.split(".")
        for part in parents:
            node = node[part]["properties"]
        expected = "keyword" if ftype == fields.FREE_TEXT else ftype
        assert node[leaf]["type"] == expected, name


def test_query_kinds_follow_the_table() -> None:
    assert kind_of("server.ip") == IP_KIND
    assert kind_of("client.port") == LONG_KIND
    assert kind_of("process.command_line") == TEXT


def test_validation_checks_the_tables_endpoint_fields() -> None:
    assert endpoint_fields(IP) == (("source", "ip"), ("destination", "ip"), ("client", "ip"),
                                   ("server", "ip"))
    assert endpoint_fields(LONG, "port") == (("source", "port"), ("destination", "port"),
                                             ("client", "port"), ("server", "port"))
    limits = Limits(max_event_bytes=65536, max_depth=16, max_future_skew=300, max_age=86400)
    for parent in ("source", "destination", "client", "server"):
        with pytest.raises(Invalid, match=rf"{parent}\.ip is not an IP"):
            parse_line(orjson.dumps(new_event("socket", **{parent: {"ip": "nope"}})), limits)
        with pytest.raises(Invalid, match=rf"{parent}\.port must be an integer"):
            parse_line(orjson.dumps(new_event("socket", **{parent: {"port": 70000}})), limits)
    # array fields (host.ip) are not held to the single-value check
    parse_line(orjson.dumps(new_event("host.inventory", host={"ip": ["10.0.0.1", "::1"]})), limits)
