"""Helpers to run the mock center inside a test (or the lead's end-to-end test).

``start_center`` issues a server certificate from the given CA, writes nothing
but the SQLite file under ``tmp``, and returns a started MockCenter on a free
loopback port. Close it with ``await center.close()``.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from canhgac.tls import CertPaths, issue_cert
from national_center.faults import Faults
from national_center.server import CenterSettings, MockCenter

TEST_KEY_ID = "vn-tth-test"


def new_secret() -> bytes:
    return secrets.token_bytes(32)


async def start_center(
    tmp: Path,
    ca: CertPaths,
    *,
    keys: dict[str, bytes] | None = None,
    indicators: Path | None = None,
    faults: Faults | None = None,
    skew_seconds: float = 300.0,
    port: int = 0,
) -> MockCenter:
    cert = issue_cert(ca, tmp, "national-center", ["localhost", "127.0.0.1", "::1"])
    center = MockCenter(CenterSettings(
        keys=keys if keys is not None else {TEST_KEY_ID: new_secret()},
        db=tmp / "received.db", cert=cert.cert, key=cert.key, port=port,
        indicators=indicators, skew_seconds=skew_seconds, faults=faults or Faults(seed=1),
    ))
    await center.start()
    return center
