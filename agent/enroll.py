"""Enrollment: trade a one-time token for this agent's own credentials.

``POST {collector}/v1/enroll`` with ``{"token", "hostname", "agent_version"}``
answers ``{"agent_id", "secret", "system_id", "heartbeat_interval"}``. The
agent keeps them in ``state_dir/credentials.json`` (mode 0600, created 0600 so
the secret is never readable by others even for an instant) together with the
collector URL and a private copy of the CA, so ``agent run`` needs no flags.
The bearer token on every request is ``<agent_id>.<secret>``.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from canhgac import __version__
from canhgac.errors import UserError
from canhgac.protocol import HEADER, PROTOCOL_VERSION

log = logging.getLogger(__name__)

CREDENTIALS = "credentials.json"
CA_COPY = "collector-ca.pem"


@dataclass
class Credentials:
    agent_id: str
    secret: str
    collector: str
    ca: str = ""
    system_id: str = ""
    heartbeat_interval: float | None = None
    # As the collector knows this agent: the enrolled hostname (used instead of the OS
    # name) and the system's level (selects the level's default probe settings).
    hostname: str = ""
    level: int | None = None

    @property
    def token(self) -> str:
        return f"{self.agent_id}.{self.secret}"

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(agent_id={self.agent_id!r}, collector={self.collector!r})"


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` 0700; warn when an existing directory is readable by others."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = path.stat().st_mode
    if mode & (stat.S_IROTH | stat.S_IWOTH | stat.S_IXOTH):
        log.warning(
            "state directory %s is accessible by other users (mode %o); "
            "run: chmod 700 %s", path, stat.S_IMODE(mode), path,
        )


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` atomically to a 0600 file (created 0600, then renamed)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def level_of(value: Any) -> int | None:
    """A security level 1..5 from the collector, or None (unknown, or not a level)."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
        return value
    return None


def load_credentials(state_dir: Path) -> Credentials | None:
    """The stored credentials, or None when this agent was never enrolled."""
    path = state_dir / CREDENTIALS
    try:
        raw = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise UserError(f"{path}: unreadable credentials ({exc}); enroll again") from None
    try:
        return Credentials(
            agent_id=str(raw["agent_id"]),
            secret=str(raw["secret"]),
            collector=str(raw["collector"]),
            ca=str(raw.get("ca") or ""),
            system_id=str(raw.get("system_id") or ""),
            heartbeat_interval=raw.get("heartbeat_interval"),
            hostname=str(raw.get("hostname") or ""),
            level=level_of(raw.get("level")),
        )
    except (KeyError, TypeError) as exc:
        raise UserError(f"{path}: missing {exc} in credentials; enroll again") from None


def save_credentials(state_dir: Path, creds: Credentials) -> Path:
    ensure_private_dir(state_dir)
    path = state_dir / CREDENTIALS
    write_private(path, orjson.dumps(asdict(creds), option=orjson.OPT_INDENT_2))
    return path


def tls_context(ca: Path | str | None) -> ssl.SSLContext:
    """A verifying client context (kept here, not canhgac.tls, to spare the agent
    the ``cryptography`` import: a few MB of RSS on every server)."""
    ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


async def enroll(
    collector: str,
    token: str,
    ca: Path,
    state_dir: Path,
    *,
    hostname: str | None = None,
    timeout: float = 30.0,
) -> Credentials:
    """Enroll against ``collector``; store and return the credentials."""
    import aiohttp

    collector = collector.rstrip("/")
    if not collector.startswith("https://"):
        # The token and the secret in the answer must never travel in clear.
        raise UserError(f"--collector must be an https:// URL like https://host:8443 "
                        f"(got {collector!r})")
    ca_pem, ctx = _load_ca(ca)
    body = {
        "token": token,
        "hostname": hostname or socket.gethostname(),
        "agent_version": __version__,
    }
    url = f"{collector}/v1/enroll"
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout),
            connector=aiohttp.TCPConnector(ssl=ctx),
        ) as session, session.post(url, json=body,
                                   headers={HEADER: str(PROTOCOL_VERSION)}) as resp:
            text = await resp.text()
            status = resp.status
    except aiohttp.ClientConnectorCertificateError as exc:
        raise UserError(
            f"cannot verify the collector's certificate with --ca {ca}: {exc.certificate_error}"
        ) from None
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise UserError(f"cannot reach the collector at {collector}: {exc or type(exc).__name__}") from None
    if status in (401, 403):
        raise UserError(
            "enrollment token rejected (wrong, already used or expired) / "
            "mã đăng ký không hợp lệ, đã dùng hoặc đã hết hạn: create a new one with "
            "`canhgac collector enroll-token --system ID`"
        )
    if status != 200:
        raise UserError(f"enrollment failed: HTTP {status} from {url}: {text[:200]}")
    try:
        answer: dict[str, Any] = orjson.loads(text)
        creds = Credentials(
            agent_id=str(answer["agent_id"]),
            secret=str(answer["secret"]),
            collector=collector,
            system_id=str(answer.get("system_id") or ""),
            heartbeat_interval=answer.get("heartbeat_interval"),
            hostname=str(answer.get("hostname") or body["hostname"]),
            level=level_of(answer.get("level")),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"enrollment failed: unexpected answer from {url} ({exc})") from None
    _store(state_dir, creds, ca_pem)
    return creds


def _load_ca(ca: Path) -> tuple[bytes, ssl.SSLContext]:
    try:
        ca_pem = ca.read_bytes()
    except OSError as exc:
        raise UserError(f"--ca {ca}: {exc.strerror or exc}") from None
    if b"BEGIN CERTIFICATE" not in ca_pem:
        raise UserError(f"--ca {ca}: not a PEM certificate")
    try:
        return ca_pem, tls_context(ca)
    except ssl.SSLError as exc:
        raise UserError(f"--ca {ca}: cannot load CA ({exc})") from None


def _store(state_dir: Path, creds: Credentials, ca_pem: bytes) -> None:
    """Keep a private copy of the CA next to the credentials, then the credentials."""
    ensure_private_dir(state_dir)
    ca_copy = state_dir / CA_COPY
    ca_copy.write_bytes(ca_pem)
    creds.ca = str(ca_copy.resolve())
    save_credentials(state_dir, creds)
