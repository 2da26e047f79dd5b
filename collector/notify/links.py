"""Where an alert message links to: the web console's page of the alert.

``notifications.console_url`` names the console as its readers reach it (a DNS name behind
a proxy, say). Unset, the collector's own console is the default when it serves one: its
listen address on the TLS port with ``/ui`` (a wildcard address becomes this machine's
name, since 0.0.0.0 is no address to click), so every message links to
``…/ui/alerts/{id}`` out of the box. No default when the console is off, not selected, or
the port is chosen at start (``listen.port: 0``, known only once bound).
"""

from __future__ import annotations

import socket

from collector.config import CollectorConfig

WILDCARDS = ("", "0.0.0.0", "::", "[::]")
CONSOLE_PATH = "/ui"  # collector.console's prefix


def default_console_url(config: CollectorConfig, hostname: str | None = None) -> str:
    if config.components is not None and "console" not in config.components:
        return ""
    if (config.console or {}).get("enabled") is False:
        return ""
    port = config.listen.port
    if not port:
        return ""
    host = config.listen.host
    if host in WILDCARDS:
        host = hostname or socket.getfqdn()
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal in a URL
    scheme = "https" if config.tls.enabled else "http"
    return f"{scheme}://{host}:{port}{CONSOLE_PATH}"
