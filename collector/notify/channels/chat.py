"""Chat: a Telegram-style bot API, ``POST {api_url}/bot{token}/sendMessage``.

The body is ``{"chat_id", "text", "disable_web_page_preview": true}`` as JSON; the
answer is ``{"ok": true, ...}`` or ``{"ok": false, "description", "parameters":
{"retry_after": N}}`` (429). The token is in the path, as the API wants: it is
never logged (errors name the host only).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp

from collector.notify.channels import SendError, http_error
from collector.notify.channels.http import HttpClient, transport_error
from collector.notify.config import ChatChannel

MAX_TEXT = 4096  # Telegram's limit on one message


class Chat:
    kind = "chat"

    def __init__(self, name: str, cfg: ChatChannel) -> None:
        self.name = name
        self.cfg = cfg
        self.http = HttpClient(float(cfg.timeout), cfg.ca)
        self.host = urlsplit(cfg.api_url).netloc

    async def send(self, payload: dict[str, Any]) -> str:
        text = str(payload.get("text", ""))
        if len(text) > MAX_TEXT:
            text = text[: MAX_TEXT - 1] + "…"
        url = f"{self.cfg.api_url.rstrip('/')}/bot{self.cfg.token}/sendMessage"
        body = {"chat_id": self.cfg.chat_id, "text": text, "disable_web_page_preview": True}
        try:
            async with self.http.session().post(url, json=body) as r:
                try:
                    answer = await r.json(content_type=None)
                except ValueError:
                    answer = {}
                if not isinstance(answer, dict):
                    answer = {}
                if r.status >= 300 or answer.get("ok") is not True:
                    params = answer.get("parameters")
                    retry = params.get("retry_after") if isinstance(params, dict) else None
                    err = http_error(r.status if r.status >= 300 else 502,
                                     str(answer.get("description", "")),
                                     str(retry) if retry is not None else None)
                    raise err
                return f"HTTP {r.status} from {self.host}"
        except SendError:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            err = transport_error(exc)
            raise SendError(str(err).replace(str(self.cfg.token), "***")) from None

    async def close(self) -> None:
        await self.http.close()
