"""Who may read ``/metrics``: a bearer token by default.

/metrics names every system, its unit, level, coverage and open alerts, so it is not
public. The token is made on first start (``<state_dir>/metrics.token``, 0600, never
overwritten) unless ``metrics.token_file`` names one; Prometheus sends it with
``authorization: {credentials_file: ...}``. ``metrics.auth: none`` is accepted only
when the collector listens on a loopback address.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from aiohttp import web

from canhgac import tokenfile
from canhgac.errors import ConfigError
from collector.config import CollectorConfig

TOKEN_FILE = "metrics.token"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ScrapeAuth:
    """Checks the bearer token of a scrape, in constant time; re-reads a rotated file."""

    def __init__(self, token_path: Path | None) -> None:
        self.token_path = token_path

    @classmethod
    def of(cls, config: CollectorConfig, source: str) -> ScrapeAuth:
        m = config.metrics
        if m.auth == "none":
            if not _loopback(config.listen.host):
                raise ConfigError(source, "metrics.auth", "none is allowed only when listen.host "
                                  f"is a loopback address (it is {config.listen.host!r})")
            return cls(None)
        path = m.token_file or Path(config.state_dir) / TOKEN_FILE
        if m.token_file is None:
            tokenfile.ensure(path)
        elif not path.is_file():
            raise ConfigError(source, "metrics.token_file", f"{path}: no such file")
        return cls(path)

    def check(self, request: web.Request) -> None:
        """Raise 401 unless the request carries the token (or no token is required)."""
        if self.token_path is None:
            return
        given = tokenfile.bearer(request.headers.get("Authorization", ""))
        if not tokenfile.matches(given, self.token_path):
            raise web.HTTPUnauthorized(text="a bearer token is required for /metrics\n",
                                       headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
