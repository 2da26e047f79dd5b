"""Everything `canhgac up` needs to run the mock center next to a local collector.

``prepare`` writes (once, then reuses) under one directory: the center's TLS
certificate issued by the given CA, a random province secret (0600) and the
keys file naming it, a demo indicator file, and returns the command line to
start the mock plus the collector.yaml sections that connect to it. The secret
reaches the collector as ``secret_file``, never inside collector.yaml.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from canhgac.tls import CertPaths, issue_cert

DEFAULT_PORT = 9443
LOCAL_KEY_ID = "vn-local"

DEMO_INDICATORS = """\
# Demo indicators served by the local mock national center (documentation address ranges).
indicators:
  - {type: ipv4, value: 203.0.113.66, name: "C2 server (demo)", severity: critical}
  - {type: ipv4, value: 198.51.100.0/24, name: "Scanner network (demo)", severity: medium}
  - {type: domain, value: evil.example, name: "Phishing domain (demo)", severity: high}
  - {type: url, value: "http://malware.example/payload.bin", name: "Loader URL (demo)"}
"""


@dataclass(frozen=True)
class LocalCenter:
    argv: list[str]  # arguments to `canhgac` (e.g. for Stack.spawn)
    url: str
    db: Path
    collector_sections: dict[str, Any]  # merge into collector.yaml (outputs: add "national")


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def prepare(
    directory: Path, ca: CertPaths, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
    key_id: str = LOCAL_KEY_ID,
) -> LocalCenter:
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    cert = CertPaths(directory / "center.pem", directory / "center-key.pem")
    if not (cert.cert.exists() and cert.key.exists()):
        cert = issue_cert(ca, directory, "center", ["localhost", host])
    secret_file = directory / "province.secret"
    if not secret_file.exists():
        _write_private(secret_file, "hex:" + secrets.token_hex(32) + "\n")
    secret = secret_file.read_text(encoding="utf-8").strip()
    keys = directory / "keys.yaml"
    _write_private(keys, f"keys:\n  - id: {key_id}\n    province: local demo\n"
                         f"    secret: {secret}\n")
    indicators = directory / "indicators.yaml"
    if not indicators.exists():
        indicators.write_text(DEMO_INDICATORS, encoding="utf-8")
    db = directory / "received.db"
    url = f"https://{host}:{port}"
    argv = ["national-mock", "run", "--listen", f"{host}:{port}", "--cert", str(cert.cert),
            "--key", str(cert.key), "--keys", str(keys), "--indicators", str(indicators),
            "--db", str(db)]
    sections = {
        "national": {
            "link": {"url": url, "key_id": key_id, "secret_file": str(secret_file),
                     "ca": str(ca.cert)},
            "indicators": {"interval": "1m"},
            "check": {"interval": "30s"},
        },
        "outputs": {"national": {}},
    }
    return LocalCenter(argv, url, db, sections)
