"""Request signing shared by the national output and the mock center."""

from __future__ import annotations

import pytest

from canhgac import signing
from canhgac.signing import SignatureError, Verifier

SECRET = b"0123456789abcdef0123456789abcdef"
BODY = b'{"event":{"id":"1","kind":"alert"}}\n'


def _verifier(**kw) -> Verifier:
    return Verifier({"vn-tth": SECRET}, **kw)


def test_roundtrip_names_key_and_batch():
    h = signing.sign("vn-tth", SECRET, "POST", "/v1/reports", BODY, batch_id="national:1-5.ab")
    who = _verifier().verify("POST", "/v1/reports", h, BODY)
    assert (who.key_id, who.batch_id) == ("vn-tth", "national:1-5.ab")


@pytest.mark.parametrize(
    "method,path,body,batch",
    [
        ("PUT", "/v1/reports", BODY, "b1"),  # method
        ("POST", "/v1/indicators", BODY, "b1"),  # path
        ("POST", "/v1/reports", BODY + b"x", "b1"),  # body
        ("POST", "/v1/reports", BODY, "b2"),  # batch id (center dedups on it)
    ],
)
def test_any_tampering_breaks_the_signature(method, path, body, batch):
    h = signing.sign("vn-tth", SECRET, "POST", "/v1/reports", BODY, batch_id="b1")
    h[signing.H_BATCH_ID] = batch
    with pytest.raises(SignatureError) as exc:
        _verifier().verify(method, path, h, body)
    assert exc.value.reason == "bad_signature"


def test_wrong_secret_and_unknown_key_look_the_same():
    forged = signing.sign("vn-tth", b"x" * 32, "POST", "/v1/reports", BODY, batch_id="b")
    unknown = signing.sign("vn-hd", SECRET, "POST", "/v1/reports", BODY, batch_id="b")
    for h in (forged, unknown):
        with pytest.raises(SignatureError) as exc:
            _verifier().verify("POST", "/v1/reports", h, BODY)
        assert exc.value.reason == "bad_signature"
        assert "secret" not in str(exc.value).lower() or "vn" not in str(exc.value)


def test_stale_timestamp_is_refused_both_ways():
    v = _verifier(skew_seconds=300)
    for offset in (-301, 301):
        h = signing.sign("vn-tth", SECRET, "GET", "/v1/indicators", now=1_000_000 + offset)
        with pytest.raises(SignatureError) as exc:
            v.verify("GET", "/v1/indicators", h, b"", now=1_000_000)
        assert exc.value.reason == "stale"
    h = signing.sign("vn-tth", SECRET, "GET", "/v1/indicators", now=1_000_000 - 299)
    assert v.verify("GET", "/v1/indicators", h, b"", now=1_000_000).key_id == "vn-tth"


def test_replay_within_window_is_refused_but_a_fresh_retry_is_not():
    v = _verifier()
    h = signing.sign("vn-tth", SECRET, "POST", "/v1/reports", BODY, batch_id="b")
    v.verify("POST", "/v1/reports", h, BODY)
    with pytest.raises(SignatureError) as exc:
        v.verify("POST", "/v1/reports", dict(h), BODY)
    assert exc.value.reason == "replay"
    # A legitimate retry of the same batch in the same second is signed afresh (new nonce).
    again = signing.sign("vn-tth", SECRET, "POST", "/v1/reports", BODY, batch_id="b",
                         now=int(h[signing.H_TIMESTAMP]))
    assert v.verify("POST", "/v1/reports", again, BODY).batch_id == "b"


@pytest.mark.parametrize("drop", [signing.H_SIGNATURE, signing.H_KEY_ID, signing.H_TIMESTAMP,
                                  signing.H_NONCE])
def test_missing_headers(drop):
    h = signing.sign("vn-tth", SECRET, "GET", "/v1/ping")
    del h[drop]
    with pytest.raises(SignatureError) as exc:
        _verifier().verify("GET", "/v1/ping", h, b"")
    assert exc.value.reason == "missing"


def test_malformed_headers():
    h = signing.sign("vn-tth", SECRET, "GET", "/v1/ping")
    h[signing.H_TIMESTAMP] = "soon"
    with pytest.raises(SignatureError) as exc:
        _verifier().verify("GET", "/v1/ping", h, b"")
    assert exc.value.reason == "malformed"


def test_replay_cache_is_bounded_and_forgets_old_entries():
    cache = signing.ReplayCache(window=10, max_entries=3)
    for i in range(5):
        assert cache.check_and_add(f"s{i}", now=100.0)
    assert len(cache._seen) <= 3
    assert cache.check_and_add("s4", now=100.0) is False
    assert cache.check_and_add("s4", now=200.0) is True  # long past the window


def test_load_secret_forms():
    assert signing.load_secret("hex:00ff") == b"\x00\xff"
    assert signing.load_secret("base64:AAE=") == b"\x00\x01"
    assert signing.load_secret("plain-text") == b"plain-text"
    with pytest.raises(ValueError):
        signing.load_secret("hex:zz")


def test_key_id_is_validated_when_signing():
    with pytest.raises(ValueError):
        signing.sign("bad key id", SECRET, "GET", "/v1/ping")
