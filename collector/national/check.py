"""Connectivity check of the national link, step by step, as an operator would debug it.

DNS -> TCP -> TLS (chain verified, days to expiry) -> ping RTT -> clock skew ->
signed no-op. Each step is timed; when one fails, the ones that need it are
reported as skipped (failed), so the first red line is the one to fix. Used by
``canhgac check national`` and by the collector's periodic check (metrics).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography import x509

from canhgac.national.client import NationalClient
from canhgac.national.link import LinkConfig
from canhgac.tls import client_context

STEPS = ("dns", "tcp", "tls", "ping", "clock", "signed")


@dataclass(slots=True)
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class CheckReport:
    steps: list[Step] = field(default_factory=list)
    rtt: float | None = None
    skew: float | None = None  # center clock minus ours, seconds
    cert_days_left: float | None = None
    cert_not_after: float | None = None  # Unix time the center's certificate expires
    finished: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    def table(self) -> str:
        rows = [("CHECK", "RESULT", "TIME", "DETAIL")]
        for s in self.steps:
            rows.append((s.name, "pass" if s.ok else "FAIL", f"{s.seconds * 1000:.1f} ms", s.detail))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows]
        lines.append("national link: " + ("OK" if self.ok else "FAILED"))
        return "\n".join(lines)


async def run_check(
    link: LinkConfig,
    secret: bytes,
    *,
    max_clock_skew: float = 30.0,
    cert_min_days: float = 14.0,
    client: NationalClient | None = None,
) -> CheckReport:
    rep = CheckReport()
    parts = urlsplit(link.url)
    host = parts.hostname or ""
    port = parts.port or 443
    timeout = float(link.connect_timeout)
    loop = asyncio.get_running_loop()

    def skip(names: tuple[str, ...], why: str) -> CheckReport:
        for n in names:
            rep.steps.append(Step(n, False, 0.0, f"skipped: {why}"))
        rep.finished = time.time()
        return rep

    # 1. DNS
    t = time.perf_counter()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
        addrs = list(dict.fromkeys(str(i[4][0]) for i in infos))
        rep.steps.append(Step("dns", True, time.perf_counter() - t, f"{host} -> {', '.join(addrs)}"))
    except (OSError, TimeoutError) as exc:
        rep.steps.append(Step("dns", False, time.perf_counter() - t, f"{host}: {_why(exc)}"))
        return skip(STEPS[1:], "no address")

    # 2. TCP
    t = time.perf_counter()
    try:
        _, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        peer = w.get_extra_info("peername")
        await _close(w)
        rep.steps.append(Step("tcp", True, time.perf_counter() - t, f"connected to {peer[0]}:{peer[1]}"))
    except (OSError, TimeoutError) as exc:
        rep.steps.append(Step("tcp", False, time.perf_counter() - t, f"{host}:{port}: {_why(exc)}"))
        return skip(STEPS[2:], "no TCP connection")

    # 3. TLS: handshake with the same trust as the output; read the leaf's expiry.
    t = time.perf_counter()
    try:
        ctx = client_context(link.ca)
        _, w = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx, server_hostname=host,
                                    ssl_handshake_timeout=timeout), timeout * 2)
        sslobj: ssl.SSLObject = w.get_extra_info("ssl_object")
        der = sslobj.getpeercert(binary_form=True)
        version = sslobj.version()
        await _close(w)
        if der is None:
            raise ssl.SSLError("the center presented no certificate")
        cert = x509.load_der_x509_certificate(der)
        rep.cert_not_after = cert.not_valid_after_utc.timestamp()
        left = (rep.cert_not_after - time.time()) / 86400
        rep.cert_days_left = left
        subject = cert.subject.rfc4514_string()
        ok = left >= cert_min_days
        detail = f"{version}, chain verified, {subject}, expires in {left:.0f} days"
        if not ok:
            detail += f" (< {cert_min_days:g} days: renew)"
        rep.steps.append(Step("tls", ok, time.perf_counter() - t, detail))
    except ssl.SSLCertVerificationError as exc:
        rep.steps.append(Step("tls", False, time.perf_counter() - t,
                              f"certificate not trusted: {exc.verify_message}"))
        return skip(STEPS[3:], "no trusted TLS")
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        rep.steps.append(Step("tls", False, time.perf_counter() - t, f"handshake: {_why(exc)}"))
        return skip(STEPS[3:], "no TLS")

    own = client is None
    client = client or NationalClient(link, secret, "canhgac-check")
    try:
        # 4. ping RTT (unsigned) and 5. clock skew from the echoed server time.
        t = time.perf_counter()
        try:
            sent = time.time()
            reply = await client.request("GET", "/v1/ping", signed=False)
            got = time.time()
            doc = reply.json() if reply.status == 200 else None
            if not isinstance(doc, dict) or not isinstance(doc.get("epoch"), int | float):
                raise RuntimeError(f"HTTP {reply.status}")
            rep.rtt = reply.rtt
            rep.steps.append(Step("ping", True, time.perf_counter() - t,
                                  f"GET /v1/ping round trip {reply.rtt * 1000:.1f} ms"))
            rep.skew = float(doc["epoch"]) - (sent + got) / 2
            ok = abs(rep.skew) <= max_clock_skew
            rep.steps.append(Step("clock", ok, 0.0, f"center clock {rep.skew:+.3f} s from ours"
                                  + ("" if ok else f" (> {max_clock_skew:g} s: fix NTP)")))
        except Exception as exc:  # any failure is a failed step
            rep.steps.append(Step("ping", False, time.perf_counter() - t, _why(exc)))
            rep.steps.append(Step("clock", False, 0.0, "skipped: no ping"))

        # 6. signed no-op: key id, secret and clock as the center sees them.
        t = time.perf_counter()
        try:
            reply = await client.request("POST", "/v1/ping", b"")
            doc = reply.json() if reply.status in (200, 401) else None
            if reply.status == 200 and isinstance(doc, dict) and doc.get("verified") is True:
                rep.steps.append(Step("signed", True, time.perf_counter() - t,
                                      f"signature accepted for key {link.key_id}"))
            else:
                code = doc.get("error") if isinstance(doc, dict) else None
                rep.steps.append(Step("signed", False, time.perf_counter() - t,
                                      f"HTTP {reply.status} {code or ''}".rstrip()
                                      + (": check key_id/secret and clock"
                                         if reply.status == 401 else "")))
        except Exception as exc:
            rep.steps.append(Step("signed", False, time.perf_counter() - t, _why(exc)))
    finally:
        if own:
            await client.close()
    rep.finished = time.time()
    return rep


async def _close(w: asyncio.StreamWriter) -> None:
    w.close()
    try:
        await asyncio.wait_for(w.wait_closed(), 2.0)
    except (OSError, TimeoutError, ssl.SSLError):
        pass  # the check already has what it needs from this connection


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text
