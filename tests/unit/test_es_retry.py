"""The Elasticsearch output's one rule table (retry.classify), the typed bulk answers, the
413 split with the service's request function replaced, and one-line transport retries."""

from __future__ import annotations

import logging

import orjson
import pytest

from canhgac.schema import new_event
from shipper.output import Batch, PermanentError, TransientError
from shipper.outputs.elasticsearch import ElasticsearchOutput, make_client
from shipper.outputs.elasticsearch.config import load
from shipper.outputs.elasticsearch.response import CREATED, BulkReply, ItemStatus, items_of
from shipper.outputs.elasticsearch.retry import Action, classify, retry_after

D, DUP, R, DL, SPLIT = (Action.DELIVERED, Action.DUPLICATE, Action.RETRY, Action.DEAD_LETTER,
                        Action.SPLIT)

# (status, error type, whole request?) -> action; None = no HTTP answer at all
TABLE = [
    # 2xx
    (200, None, False, D), (201, None, False, D), (200, None, True, D), (299, None, True, D),
    # 409: the _id exists (a retry of a write that succeeded)
    (409, "version_conflict_engine_exception", False, DUP), (409, None, False, DUP),
    (409, None, True, DL),
    # 429 and 5xx: transient, item or request
    (429, "es_rejected_execution_exception", False, R), (429, None, True, R),
    (500, None, False, R), (502, None, True, R), (503, None, False, R), (504, None, True, R),
    # an item without a status, and no answer at all (connection refused/reset, timeout)
    (0, None, False, R), (None, None, True, R), (None, None, False, R),
    # 400 and other 4xx items: dead-letter with the reason
    (400, "document_parsing_exception", False, DL), (400, "mapper_parsing_exception", False, DL),
    (404, "index_not_found_exception", False, DL), (403, "security_exception", False, DL),
    (413, "request_too_large", False, DL), (422, None, False, DL),
    # whole-request 4xx: 413 splits; credentials / proxy statuses keep the backlog; others fail
    (413, None, True, SPLIT), (401, None, True, R), (403, None, True, R), (404, None, True, R),
    (408, None, True, R), (400, "parse_exception", True, DL), (405, None, True, DL),
    # a write block is lifted by an operator: retried whatever its status
    (403, "cluster_block_exception", False, R), (429, "cluster_block_exception", True, R),
]


@pytest.mark.parametrize(("status", "error_type", "whole", "action"), TABLE)
def test_classify(status: int | None, error_type: str | None, whole: bool, action: Action) -> None:
    assert classify(status, error_type, whole_request=whole) is action


def test_every_status_class_is_in_the_table() -> None:
    for status in range(200, 600):
        for whole in (False, True):
            assert isinstance(classify(status, whole_request=whole), Action)
    covered = {(s // 100 if s else None, w) for s, _, w, _ in TABLE}
    assert {(2, False), (2, True), (4, False), (4, True), (5, False), (5, True),
            (None, False), (None, True)} <= covered


def test_retry_after_header() -> None:
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"Retry-After": "soon"}) is None
    assert retry_after(None) is None


def test_items_of_reads_only_what_it_needs() -> None:
    assert items_of({"errors": False, "items": [{"create": {"status": 201}}] * 3}) == [CREATED] * 3
    body = {"errors": True, "items": [
        {"create": {"status": 201}},
        {"create": {"status": 400, "error": {"type": "document_parsing_exception",
                                             "reason": "failed to parse"}}},
        {"create": {}}, "junk"]}
    got = items_of(body)
    assert got[0] == CREATED
    assert got[1] == ItemStatus(400, "document_parsing_exception", "failed to parse")
    assert got[1].describe() == "HTTP 400 document_parsing_exception: failed to parse"
    assert got[2].status == 0 and got[3].status == 0  # no status: retried, never delivered
    assert items_of(None) == [] and items_of({"items": "x"}) == []


# -- the 413 split, with the service's request function replaced ------------------------------
class TooLarge:
    """Stands in for ElasticsearchOutput._request: 413 above ``limit`` bytes, else all created."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sizes: list[int] = []

    async def __call__(self, body: bytes) -> BulkReply:
        self.sizes.append(len(body))
        if len(body) > self.limit:
            return BulkReply(413, error="HTTP 413: Request Entity Too Large")
        n = body.count(b"\n") // 2
        return BulkReply(200, [CREATED] * n)


def _out() -> ElasticsearchOutput:
    out = ElasticsearchOutput(load({"hosts": ["http://127.0.0.1:9"], "install_templates": False},
                                   "t"))
    out._started = True
    return out


def _line(size: int = 0) -> bytes:
    return orjson.dumps(new_event("auth", message="x" * size))


async def test_413_splits_until_each_request_fits() -> None:
    out = _out()
    fake = TooLarge(limit=4000)
    out._request = fake  # type: ignore[method-assign]
    lines = [_line(100) for _ in range(40)]
    result = await out.send(Batch("b", lines))
    assert result.retry == [] and result.dead == []
    assert out.health.counts["delivered"] == 40
    assert max(s for s in fake.sizes if s <= fake.limit) <= fake.limit
    assert len(fake.sizes) > 2  # split more than once


async def test_a_single_event_too_large_is_dead_lettered_with_the_reason() -> None:
    out = _out()
    fake = TooLarge(limit=4000)
    out._request = fake  # type: ignore[method-assign]
    lines = [_line(100), _line(10_000), _line(100)]
    result = await out.send(Batch("b", lines))  # no exception out of the service
    assert result.retry == []
    # the dead-letter record carries the event, so it is too large as well: the spool keeps it
    assert [i for i, _ in result.dead] == [1]
    reason = result.dead[0][1]
    assert "HTTP 413 request_too_large" in reason and "http.max_content_length" in reason
    assert "dead-letter stream refused it too" in reason
    assert out.health.counts["delivered"] == 2
    assert out.health.counts["dead_letter_failed"] == 1


async def test_a_too_large_event_whose_dead_letter_fits_goes_to_the_stream() -> None:
    out = _out()
    sent: list[bytes] = []

    async def request(body: bytes) -> BulkReply:
        sent.append(body)
        n = body.count(b"\n") // 2
        if b"deadletter" in body:
            return BulkReply(200, [ItemStatus(201)] * n)
        return BulkReply(413, error="HTTP 413: too large") if n == 1 and len(body) > 5000 \
            else (BulkReply(413) if n > 1 else BulkReply(200, [CREATED]))

    out._request = request  # type: ignore[method-assign]
    result = await out.send(Batch("b", [_line(10), _line(8000)]))
    assert result.retry == [] and result.dead == []
    assert out.health.counts["dead_lettered"] == 1 and out.health.counts["delivered"] == 1
    dl = [orjson.loads(ln) for ln in sent[-1].splitlines()[1::2]]
    assert dl[0]["http"]["response"]["status_code"] == 413
    assert dl[0]["error"]["type"] == "request_too_large"


@pytest.mark.parametrize(("reply", "exc"), [
    (BulkReply(None, error="ConnectionTimeout: timed out"), TransientError),
    (BulkReply(503, error="HTTP 503: unavailable", retry_after=2.0), TransientError),
    (BulkReply(400, error="HTTP 400: parse_exception"), PermanentError),
    (BulkReply(200, [CREATED] * 5), TransientError),  # wrong number of items
])
async def test_whole_request_outcomes(reply: BulkReply, exc: type[Exception]) -> None:
    out = _out()

    async def request(body: bytes) -> BulkReply:
        return reply

    out._request = request  # type: ignore[method-assign]
    with pytest.raises(exc) as info:
        await out.send(Batch("b", [_line()]))
    if reply.retry_after is not None:
        assert info.value.retry_after == reply.retry_after  # type: ignore[attr-defined]


# -- logging -----------------------------------------------------------------------------
async def test_make_client_changes_no_level_and_retries_log_one_line(caplog) -> None:
    before = {name: logging.getLogger(name).level
              for name in ("elastic_transport", "elastic_transport.transport",
                           "elastic_transport.node_pool")}
    cfg = load({"hosts": ["http://127.0.0.1:9", "http://127.0.0.1:7"], "request_timeout": 2},
               "t")
    client = make_client(cfg)
    assert {name: logging.getLogger(name).level for name in before} == before
    caplog.set_level(logging.WARNING, logger="elastic_transport")
    with pytest.raises(Exception):  # noqa: B017 - connection refused on both hosts
        await client.bulk(operations=b'{"create":{"_index":"x"}}\n{}\n')  # type: ignore[arg-type]
    await client.close()
    retries = [r for r in caplog.records if r.getMessage().startswith("Retrying request")]
    assert retries, [r.getMessage() for r in caplog.records]
    for r in retries:
        msg = r.getMessage()
        assert r.exc_info is None and "\n" not in msg
        assert "attempt" in msg and "ConnectionError" in msg
        assert "on node http://127.0.0.1:" in msg
