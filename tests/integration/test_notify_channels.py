"""Each notification channel against a real receiver on loopback.

- email: a real SMTP server (aiosmtpd) with STARTTLS and AUTH, and one with implicit
  TLS; the message is read back (headers, Vietnamese text, recipients);
- Alertmanager: Debian's real ``prometheus-alertmanager`` (a missing binary fails the
  test, it is not skipped: deploy/test-deps.sh installs it); the alert is read back
  through its API v2;
- chat: a local fake of a Telegram-style bot API that checks the request shape.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
import subprocess
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from canhgac.tls import CertPaths, server_context
from collector.notify.channels import SendError
from collector.notify.channels.build import build_channel
from collector.notify.config import parse_notify_config
from collector.notify.router import Router
from tests.fixtures.collector import wait_for
from tests.fixtures.common import free_port, server_cert, test_ca  # noqa: F401
from tests.fixtures.notify import alert, inventory
from tests.fixtures.procs import wait_until

pytestmark = pytest.mark.integration


def _payload(channel_cfg: dict[str, Any], language: str = "vi+en") -> tuple[Any, dict[str, Any]]:
    """A channel and a rendered alert message for it (as the outbox would hold it)."""
    notif = parse_notify_config({"channels": {"c": channel_cfg},
                                 "routes": [{"name": "r", "channels": ["c"], "language": language}]},
                                "t")
    router = Router(notif, inventory(), {lv: 60.0 for lv in range(1, 6)})
    [cand] = router.candidates([alert()])
    [msg] = router.render(cand)
    return build_channel("c", notif.channels["c"]), msg.payload


# -- email -----------------------------------------------------------------------------------

class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == b"soc" and data.password == "mật-khẩu".encode()
    return AuthResult(success=ok, handled=False)  # aiosmtpd answers 235 or 535 itself


@pytest.fixture
def smtp_starttls(server_cert: CertPaths) -> Iterator[tuple[Mailbox, int]]:  # noqa: F811
    box = Mailbox()
    port = free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port,
                     tls_context=server_context(server_cert.cert, server_cert.key),
                     require_starttls=True, authenticator=_auth, auth_required=True)
    ctl.start()
    yield box, port
    ctl.stop()


@pytest.fixture
def smtp_implicit_tls(server_cert: CertPaths) -> Iterator[tuple[Mailbox, int]]:  # noqa: F811
    box = Mailbox()
    port = free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port,
                     ssl_context=server_context(server_cert.cert, server_cert.key),
                     server_hostname="localhost", authenticator=_auth, auth_required=True,
                     auth_require_tls=False)
    ctl.start()
    yield box, port
    ctl.stop()


async def test_email_starttls_with_auth(smtp_starttls: tuple[Mailbox, int],
                                        test_ca: CertPaths) -> None:  # noqa: F811
    box, port = smtp_starttls
    channel, payload = _payload({"type": "email", "host": "127.0.0.1", "port": port,
                                 "security": "starttls", "username": "soc", "password": "mật-khẩu",
                                 "sender": "canhgac@soc.example.vn", "to": ["soc@soc.example.vn"],
                                 "ca": str(test_ca.cert)})
    detail = await channel.send(payload)
    assert detail == "SMTP accepted for 2 of 2 recipients"
    [(sender, rcpts, msg)] = box.messages
    assert sender == "canhgac@soc.example.vn"
    assert rcpts == ["an@stttt.example.vn", "soc@soc.example.vn"]
    assert msg["Subject"] == ("[canhgac] Cảnh báo CAO / HIGH — Cổng thông tin điện tử tỉnh: "
                              "SSH brute force")
    assert msg["X-Canhgac-Idempotency-Key"] == payload["key"]
    body = msg.get_content()
    assert "Hệ thống: Cổng thông tin điện tử tỉnh (cong-ttdt), cấp độ 3" in body
    assert f"canhgac alerts ack {payload['alert']['id']}" in body
    assert "What happened: SSH brute force" in body


async def test_email_implicit_tls(smtp_implicit_tls: tuple[Mailbox, int],
                                  test_ca: CertPaths) -> None:  # noqa: F811
    box, port = smtp_implicit_tls
    channel, payload = _payload({"type": "email", "host": "localhost", "port": port,
                                 "security": "tls", "username": "soc", "password": "mật-khẩu",
                                 "sender": "canhgac@soc.example.vn", "ca": str(test_ca.cert)},
                                language="vi")
    await channel.send(payload)
    assert await wait_for(lambda: box.messages)
    [(_, rcpts, msg)] = box.messages
    assert rcpts == ["an@stttt.example.vn"]
    assert "Sự việc: SSH brute force (user.name=backup2)" in msg.get_content()


async def test_email_wrong_password_is_permanent(smtp_starttls: tuple[Mailbox, int],
                                                 test_ca: CertPaths) -> None:  # noqa: F811
    _, port = smtp_starttls
    channel, payload = _payload({"type": "email", "host": "127.0.0.1", "port": port,
                                 "username": "soc", "password": "wrong",
                                 "sender": "canhgac@soc.example.vn", "ca": str(test_ca.cert)})
    with pytest.raises(SendError) as e:
        await channel.send(payload)
    assert e.value.permanent and "authentication refused" in str(e.value)


async def test_email_server_down_is_transient() -> None:
    channel, payload = _payload({"type": "email", "host": "127.0.0.1", "port": free_port(),
                                 "sender": "canhgac@soc.example.vn"})
    with pytest.raises(SendError) as e:
        await channel.send(payload)
    assert not e.value.permanent


# -- Alertmanager ----------------------------------------------------------------------------

@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    assert binary, ("prometheus-alertmanager not found: install the Debian package "
                    "'prometheus-alertmanager' (deploy/test-deps.sh)")
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
                   encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "alertmanager.log", "wb") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={cfg}", f"--storage.path={tmp_path / 'am'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
            stdout=log, stderr=subprocess.STDOUT)

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=5) as r:
                return bool(r.status == 200)
        except OSError:
            return proc.poll() is not None  # stop waiting: it exited
    try:
        assert wait_until(ready, 60), "alertmanager did not become ready"
        assert proc.poll() is None, (tmp_path / "alertmanager.log").read_text()
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


async def test_alertmanager_api_v2(alertmanager: str) -> None:
    channel, payload = _payload({"type": "alertmanager", "url": alertmanager})
    assert await channel.send(payload) == "HTTP 200"
    await channel.send(payload)  # a repeat updates the same alert (same labels)
    await channel.close()

    async def stored() -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as s, s.get(f"{alertmanager}/api/v2/alerts") as r:
            return list(await r.json())
    assert await wait_for(stored, timeout=30)
    [got] = await stored()
    labels, ann = got["labels"], got["annotations"]
    assert labels["alertname"] == "ssh-brute-force" and labels["severity"] == "high"
    assert labels["system"] == "cong-ttdt" and labels["level"] == "3"
    assert labels["unit"] == "Sở Thông tin và Truyền thông"
    assert labels["canhgac_key"] == payload["key"] and labels["alert_id"] == payload["alert"]["id"]
    assert ann["summary"].startswith("[canhgac] Cảnh báo CAO")
    assert ann["ack_command"] == f"canhgac alerts ack {payload['alert']['id']}"
    assert "Nguyễn Văn An" in ann["recipients"]


async def test_alertmanager_refusal_is_permanent(alertmanager: str) -> None:
    channel, payload = _payload({"type": "alertmanager", "url": alertmanager})
    payload["alert"]["timestamp"] = "not a time"  # Alertmanager answers 400
    with pytest.raises(SendError) as e:
        await channel.send(payload)
    await channel.close()
    assert e.value.permanent and "HTTP 400" in str(e.value)


# -- chat ------------------------------------------------------------------------------------

class FakeBotAPI:
    """Checks what a Telegram-style ``sendMessage`` must look like, answers like the real one."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.sent: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.throttle = 0

    async def handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}, status=401)
        if request.content_type != "application/json":
            self.problems.append(f"content type {request.content_type}")
        body = await request.json()
        if not isinstance(body.get("chat_id"), str | int) or not body.get("chat_id"):
            self.problems.append("chat_id")
        text = body.get("text")
        if not isinstance(text, str) or not text or len(text) > 4096:
            self.problems.append("text")
        if self.throttle:
            self.throttle -= 1
            return web.json_response({"ok": False, "error_code": 429,
                                      "description": "Too Many Requests: retry after 3",
                                      "parameters": {"retry_after": 3}}, status=429)
        self.sent.append(body)
        return web.json_response({"ok": True, "result": {"message_id": len(self.sent),
                                                         "chat": {"id": body["chat_id"]}}})


@pytest.fixture
async def bot_api() -> AsyncIterator[tuple[FakeBotAPI, str]]:
    fake = FakeBotAPI("123456:ABC-def")
    app = web.Application()
    app.router.add_post("/bot{token}/sendMessage", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield fake, str(server.make_url("")).rstrip("/")
    await server.close()


async def test_chat_send_message_shape(bot_api: tuple[FakeBotAPI, str]) -> None:
    fake, url = bot_api
    channel, payload = _payload({"type": "chat", "api_url": url, "token": "123456:ABC-def",
                                 "chat_id": "-1001234567890"})
    assert (await channel.send(payload)).startswith("HTTP 200")
    await channel.close()
    assert fake.problems == []
    [sent] = fake.sent
    assert sent["chat_id"] == "-1001234567890" and sent["disable_web_page_preview"] is True
    assert "Cổng thông tin điện tử tỉnh" in sent["text"]
    assert f"canhgac alerts ack {payload['alert']['id']}" in sent["text"]


async def test_chat_throttle_and_bad_token(bot_api: tuple[FakeBotAPI, str]) -> None:
    fake, url = bot_api
    fake.throttle = 1
    channel, payload = _payload({"type": "chat", "api_url": url, "token": "123456:ABC-def",
                                 "chat_id": "42"})
    with pytest.raises(SendError) as e:
        await channel.send(payload)
    assert not e.value.permanent and e.value.retry_after == 3
    await channel.close()
    wrong, payload = _payload({"type": "chat", "api_url": url, "token": "999:wrong", "chat_id": "42"})
    with pytest.raises(SendError) as e:
        await wrong.send(payload)
    await wrong.close()
    assert e.value.permanent and "999:wrong" not in str(e.value)


async def test_webhook_retry_after_is_honoured() -> None:
    async def busy(_: web.Request) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "7"})
    app = web.Application()
    app.router.add_post("/hook", busy)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        channel, payload = _payload({"type": "webhook", "url": str(server.make_url("/hook"))})
        with pytest.raises(SendError) as e:
            await channel.send(payload)
        await channel.close()
        assert not e.value.permanent and e.value.retry_after == 7
    finally:
        await server.close()
    await asyncio.sleep(0)
