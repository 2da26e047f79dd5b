"""Webhook: the message as JSON, signed, with its idempotency key.

Headers a receiver checks (docs/notifications.md, "Webhook"):
  X-Canhgac-Idempotency-Key  the same for every attempt of one message: drop repeats
  X-Canhgac-Timestamp        Unix seconds when this attempt was signed
  X-Canhgac-Signature        sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
The timestamp is inside the signature, so a captured request cannot be replayed
later as new; the key lets the receiver make at-least-once delivery exactly-once.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import orjson

from collector.notify.channels.http import HttpClient
from collector.notify.config import WebhookChannel


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Webhook:
    kind = "webhook"

    def __init__(self, name: str, cfg: WebhookChannel) -> None:
        self.name = name
        self.cfg = cfg
        self.http = HttpClient(float(cfg.timeout), cfg.ca)

    async def send(self, payload: dict[str, Any]) -> str:
        body = orjson.dumps(payload)
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "X-Canhgac-Idempotency-Key": str(payload.get("key", "")),
                   "X-Canhgac-Timestamp": ts}
        if self.cfg.secret:
            headers["X-Canhgac-Signature"] = sign(str(self.cfg.secret), ts, body)
        return await self.http.post(self.cfg.url, data=body, headers=headers)

    async def close(self) -> None:
        await self.http.close()
