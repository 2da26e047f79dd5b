"""Email over SMTP: STARTTLS (587), implicit TLS (465) or, on a trusted link only, none.

Python's own ``smtplib`` in a worker thread: no new runtime dependency, and an SMTP
exchange is a handful of round trips per message. The To: list is the message's
recipients that have an email address, plus the channel's ``to``. The
idempotency key goes out as the Message-ID, so a mail system (or a person) can
tell a repeated delivery from a new alert.
"""

from __future__ import annotations

import asyncio
import base64
import smtplib
import ssl
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid
from typing import Any, cast

from canhgac.tls import client_context
from collector.notify.channels import SendError
from collector.notify.config import EmailChannel


def _message_id(key: str, sender: str) -> str:
    domain = sender.rpartition("@")[2] or "canhgac.local"
    safe = "".join(c if c.isalnum() or c in "-._" else "." for c in key)[:200]
    return f"<{safe}@{domain}>" if safe else make_msgid(domain=domain)


def build_message(cfg: EmailChannel, payload: dict[str, Any]) -> tuple[MIMEText, list[str]]:
    """The mail. The subject is encoded with ``email.header.Header``: the newer
    ``EmailMessage`` folder drops the space between two words when it splits a long
    Vietnamese subject across encoded words ("Cổngthông"), found by the SMTP test."""
    to = [r["email"] for r in payload.get("recipients") or [] if r.get("email")]
    to += [a for a in cfg.to if a not in to]
    msg = MIMEText(str(payload.get("text", "")), "plain", "utf-8")
    msg["From"] = cfg.sender
    msg["To"] = ", ".join(to)
    # compat32 messages take a Header object (typeshed only knows str).
    msg["Subject"] = cast(str, Header(str(payload.get("subject", "canhgac")), "utf-8"))
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = _message_id(str(payload.get("key", "")), cfg.sender)
    msg["X-Canhgac-Idempotency-Key"] = str(payload.get("key", ""))
    return msg, to


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """AUTH PLAIN with UTF-8 credentials (RFC 4616) when offered — a Vietnamese pass phrase
    works, which ``smtplib.login`` cannot send (it encodes as ASCII), and one refusal is
    final instead of trying every other mechanism — else ``smtplib.login``."""
    if "PLAIN" not in smtp.esmtp_features.get("auth", "").upper().split():
        smtp.login(user, password)
        return
    token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
    code, resp = smtp.docmd("AUTH", "PLAIN " + token)
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, resp)


class Email:
    kind = "email"

    def __init__(self, name: str, cfg: EmailChannel) -> None:
        self.name = name
        self.cfg = cfg
        self._tls: ssl.SSLContext | None = None

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = client_context(self.cfg.ca)
        return self._tls

    async def send(self, payload: dict[str, Any]) -> str:
        msg, to = build_message(self.cfg, payload)
        if not to:
            raise SendError("no recipient has an email address and the channel has no 'to'",
                            permanent=True)
        return await asyncio.to_thread(self._send, msg, to)

    def _send(self, msg: MIMEText, to: list[str]) -> str:
        cfg = self.cfg
        timeout = float(cfg.timeout)
        try:
            smtp: smtplib.SMTP
            if cfg.security == "tls":
                smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=timeout, context=self._context())
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=timeout)
            with smtp:
                smtp.ehlo()
                if cfg.security == "starttls":
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
                if cfg.username:
                    _login(smtp, cfg.username, str(cfg.password))
                refused = smtp.send_message(msg, from_addr=cfg.sender, to_addrs=to)
        except smtplib.SMTPAuthenticationError as exc:
            raise SendError(f"SMTP authentication refused: {exc.smtp_code}", permanent=True) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise SendError(f"every recipient refused: {', '.join(exc.recipients)}",
                            permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) \
                else str(exc.smtp_error)
            raise SendError(f"SMTP {exc.smtp_code}: {text}"[:300], permanent=permanent) from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise SendError(f"{type(exc).__name__}: {exc}"[:300]) from None
        accepted = len(to) - len(refused)
        return f"SMTP accepted for {accepted} of {len(to)} recipients"

    async def close(self) -> None:
        return None
