"""The small HTTP client `canhgac alerts` and `canhgac coverage` use.

They talk to the running collector rather than its files: live agent
heartbeats and the national link exist only in the collector's memory, and
the API applies the same access rules to a person at a terminal as to one in a
browser. Connection facts come from collector.yaml (listen address, TLS CA,
state dir with the admin token); each can be overridden by a flag or env var.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from canhgac.errors import UserError


class HTTPStatusError(UserError):
    """The collector answered with an error status; ``detail`` is its one-line message."""

    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


def add_connection_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument("--config", type=Path, default=None,
                   help="collector.yaml (listen address, TLS CA, state dir)")
    g.add_argument("--url", default=os.environ.get("CANHGAC_URL"),
                   help="collector base URL (env CANHGAC_URL)")
    g.add_argument("--ca", type=Path, default=None, help="CA file to verify the collector")
    g.add_argument("--token-file", type=Path, default=None,
                   help="bearer token file (default: <state_dir>/admin.token; env CANHGAC_TOKEN)")
    g.add_argument("--as", dest="operator", default=os.environ.get("CANHGAC_OPERATOR"),
                   help="your name for the audit trail when using the admin token")


class Client:
    def __init__(self, base_url: str, token: str, ca: Path | None, operator: str | None,
                 timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.operator = operator
        self.timeout = timeout
        self.context: ssl.SSLContext | None = None
        if self.base_url.startswith("https://"):
            self.context = ssl.create_default_context(cafile=str(ca) if ca else None)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Client:
        from collector.config import load

        cfg, _ = load(args.config)
        url = args.url
        ca = args.ca or cfg.tls.ca
        # The running collector writes its real address (the port may be 0 in the config)
        # and the CA it generated to <state_dir>/collector.json.
        running: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            running = json.loads((cfg.state_dir / "collector.json").read_text(encoding="utf-8"))
        if not url and running.get("url"):
            url = running["url"]
            if ca is None and running.get("ca"):
                ca = Path(running["ca"])
        if not url:
            scheme = "https" if cfg.tls.enabled else "http"
            host = cfg.listen.host if cfg.listen.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
            if ":" in host:
                host = f"[{host}]"
            url = f"{scheme}://{host}:{cfg.listen.port}"
        token = os.environ.get("CANHGAC_TOKEN", "")
        token_file = args.token_file or (cfg.state_dir / "admin.token")
        if args.token_file is not None or not token:
            try:
                token = token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise UserError(f"cannot read token file {token_file}: {exc.strerror}; "
                                "pass --token-file or set CANHGAC_TOKEN") from None
        if ca is None and (cfg.state_dir / "tls" / "ca.pem").exists():
            ca = cfg.state_dir / "tls" / "ca.pem"
        return cls(url, token, ca, args.operator)

    def request(self, method: str, path: str, query: dict[str, Any] | None = None,
                body: dict[str, Any] | None = None) -> Any:
        return json.loads(self.raw(method, path, query, body))

    def raw(self, method: str, path: str, query: dict[str, Any] | None = None,
            body: dict[str, Any] | None = None, accept: str = "application/json") -> bytes:
        """The response body as bytes (a report file, or JSON for ``request``)."""
        url = self.base_url + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        if body is not None and self.operator:
            body = {**body, "operator": self.operator}
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", accept)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as r:
                return bytes(r.read())
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace").strip()
            try:
                text = json.loads(text).get("error", text)
            except (ValueError, AttributeError):
                pass
            raise HTTPStatusError(f"{method} {path}: HTTP {exc.code}: {text}", exc.code,
                                  text) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UserError(f"cannot reach the collector at {self.base_url}: {reason} "
                            "(is it running? see --url, --ca)") from None


def alert_path(alert_id: str, action: str = "") -> str:
    return f"/v1/alerts/{quote(alert_id, safe='')}" + (f"/{action}" if action else "")
