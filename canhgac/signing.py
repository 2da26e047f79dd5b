"""Request signing for the collector <-> national center link (HMAC-SHA256).

One module used by both sides (the collector's national output and the mock
center) so the canonical string can never drift between signer and verifier.

Canonical string (UTF-8, lines joined by ``\\n``)::

    CANHGAC-HMAC-SHA256
    <METHOD>
    <path including query string>
    <timestamp: integer Unix seconds>
    <nonce: 32 hex chars, random per request>
    <key id>
    <batch id, or empty>
    <hex SHA-256 of the body content, after removing any Content-Encoding>

Why the decoded body: HTTP servers (aiohttp included) remove a gzip
Content-Encoding before the application sees the body, so the content, not
its transfer form, is what both ends can hash. The hash also travels in
``X-Canhgac-Content-SHA256``: a verifier checks the signature over the headers
*before* it reads or inflates the body (``verify_headers``), then checks that the
body it inflated has that hash (``check_body``), so an unauthenticated request
never costs a decompression.
Why a nonce as well as a timestamp: a retry of the same batch within the same
second would otherwise produce a byte-identical signature and be refused as a
replay; with a nonce, "same signature seen twice" means a real replay.
Why the batch id is signed: the center deduplicates on it, so an attacker who
could change it could make the center drop or double-store a batch.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

ALGORITHM = "CANHGAC-HMAC-SHA256"
H_KEY_ID = "X-Canhgac-Key-Id"
H_TIMESTAMP = "X-Canhgac-Timestamp"
H_NONCE = "X-Canhgac-Nonce"
H_SIGNATURE = "X-Canhgac-Signature"
H_BATCH_ID = "X-Canhgac-Batch-Id"
H_CONTENT_SHA256 = "X-Canhgac-Content-SHA256"

DEFAULT_SKEW_SECONDS = 300.0
_NONCE = re.compile(r"^[0-9a-f]{32}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_BATCH_ID = re.compile(r"^[\x21-\x7e]{0,200}$")


class SignatureError(Exception):
    """The request is not authentic (bad/missing signature, stale, replayed, unknown key).

    ``reason`` is a short machine-readable word for metrics and the 401 body;
    it never contains key material.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical(
    method: str, path: str, timestamp: str, nonce: str, key_id: str, batch_id: str, body_hash: str
) -> bytes:
    return "\n".join(
        (ALGORITHM, method.upper(), path, timestamp, nonce, key_id, batch_id, body_hash)
    ).encode("utf-8")


def compute(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(
    key_id: str,
    secret: bytes,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    batch_id: str = "",
    now: float | None = None,
) -> dict[str, str]:
    """Headers that authenticate one request. Call again for every retry."""
    if not _KEY_ID.match(key_id):
        raise ValueError("key id must be 1-64 characters of A-Z a-z 0-9 . _ -")
    ts = str(int(time.time() if now is None else now))
    nonce = secrets.token_hex(16)
    digest = body_sha256(body)
    sig = compute(secret, canonical(method, path, ts, nonce, key_id, batch_id, digest))
    headers = {
        H_KEY_ID: key_id,
        H_TIMESTAMP: ts,
        H_NONCE: nonce,
        H_CONTENT_SHA256: digest,
        H_SIGNATURE: sig,
    }
    if batch_id:
        headers[H_BATCH_ID] = batch_id
    return headers


class SeenStore(Protocol):
    """Where a verifier keeps the signatures it accepted, across restarts."""

    def seen_since(self, t: float) -> list[tuple[str, float]]: ...

    def remember(self, signature: str, t: float) -> None: ...


class ReplayCache:
    """Signatures seen within the skew window; bounded (oldest forgotten first).

    A signature older than the window cannot be replayed anyway (its timestamp
    is stale), so entries only need to live as long as the window. With a
    ``store`` they survive a restart: a request captured just before the restart
    cannot be replayed just after it.
    """

    def __init__(self, window: float, max_entries: int = 200_000,
                 store: SeenStore | None = None, now: float | None = None) -> None:
        self.window = window
        self.max_entries = max_entries
        self.store = store
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        if store is not None:
            start = (time.time() if now is None else now) - 2 * window
            for sig, t in sorted(store.seen_since(start), key=lambda e: e[1]):
                self._seen[sig] = t

    def check_and_add(self, signature: str, now: float) -> bool:
        """True if new (and remembered); False if already seen: a replay."""
        with self._lock:
            cutoff = now - 2 * self.window
            while self._seen:
                first_sig, first_t = next(iter(self._seen.items()))
                if first_t >= cutoff and len(self._seen) < self.max_entries:
                    break
                del self._seen[first_sig]
            if signature in self._seen:
                return False
            self._seen[signature] = now
            if self.store is not None:
                self.store.remember(signature, now)
            return True


@dataclass(frozen=True, slots=True)
class Verified:
    key_id: str
    batch_id: str
    timestamp: int
    content_sha256: str = ""


class Verifier:
    """Checks signed requests against a table of key id -> secret."""

    def __init__(
        self,
        keys: Mapping[str, bytes],
        skew_seconds: float = DEFAULT_SKEW_SECONDS,
        replay_cache: ReplayCache | None = None,
    ) -> None:
        self.keys = dict(keys)
        self.skew_seconds = skew_seconds
        self.replay = replay_cache or ReplayCache(skew_seconds)

    def verify(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        now: float | None = None,
    ) -> Verified:
        """Return who signed; raise SignatureError (never says which part was wrong beyond reason)."""
        who = self.verify_headers(method, path, {**headers, H_CONTENT_SHA256: body_sha256(body)}, now)
        return who

    def verify_headers(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        now: float | None = None,
    ) -> Verified:
        """Check the signature over the headers, the body's claimed hash included.

        The body itself is not needed: call ``check_body`` once it is read.
        """
        now = time.time() if now is None else now
        digest = headers.get(H_CONTENT_SHA256, "")
        if not _SHA256.match(digest):
            raise SignatureError("missing" if not digest else "malformed",
                                 f"{H_CONTENT_SHA256} must be the body's hex SHA-256")
        key_id = headers.get(H_KEY_ID, "")
        ts = headers.get(H_TIMESTAMP, "")
        nonce = headers.get(H_NONCE, "")
        sig = headers.get(H_SIGNATURE, "")
        batch_id = headers.get(H_BATCH_ID, "")
        if not (key_id and ts and nonce and sig):
            raise SignatureError("missing", "missing signature headers")
        if not _KEY_ID.match(key_id) or not _NONCE.match(nonce) or not _BATCH_ID.match(batch_id):
            raise SignatureError("malformed", "malformed signature headers")
        try:
            ts_int = int(ts)
        except ValueError:
            raise SignatureError("malformed", "timestamp is not an integer") from None
        secret = self.keys.get(key_id)
        # Compute even for an unknown key so timing does not reveal which key ids exist.
        expected = compute(
            secret if secret is not None else b"\x00" * 32,
            canonical(method, path, ts, nonce, key_id, batch_id, digest),
        )
        good = hmac.compare_digest(expected.encode(), sig.encode())
        if secret is None or not good:
            raise SignatureError("bad_signature", "signature does not verify")
        if abs(now - ts_int) > self.skew_seconds:
            raise SignatureError(
                "stale", f"timestamp outside the {self.skew_seconds:.0f}s window"
            )
        if not self.replay.check_and_add(sig, now):
            raise SignatureError("replay", "signature already used")
        return Verified(key_id, batch_id, ts_int, digest)

    @staticmethod
    def check_body(who: Verified, body: bytes) -> None:
        """The body read after ``verify_headers`` must be the one that was signed."""
        if not hmac.compare_digest(body_sha256(body), who.content_sha256):
            raise SignatureError("body_mismatch", "the body does not match its signed hash")


def load_secret(text: str) -> bytes:
    """Key material as written in a key file: ``hex:...``, ``base64:...`` or plain text."""
    import base64

    if text.startswith("hex:"):
        return bytes.fromhex(text[4:])
    if text.startswith("base64:"):
        return base64.b64decode(text[7:], validate=True)
    return text.encode("utf-8")
