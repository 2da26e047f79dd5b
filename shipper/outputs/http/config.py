"""Settings of the HTTP output (filled by the agent from agent.yaml + credentials)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class HttpOutputConfig:
    url: str  # collector base URL, e.g. https://collector:8443
    token: str  # "<agent_id>.<secret>", sent as a bearer token
    ca: Path | None = None  # CA that signed the collector's certificate; None: system store
    timeout: float = 30.0  # whole request, seconds
    gzip_level: int = 5
    path: str = "/v1/events"
    # Smallest batch still split on 413; a single line that is still too large is dead.
    min_split: int = 1
    user_agent: str = "canhgac-agent"

    @property
    def endpoint(self) -> str:
        return self.url.rstrip("/") + self.path

    def __repr__(self) -> str:  # the token never appears in a log or traceback
        return f"HttpOutputConfig(url={self.url!r}, ca={self.ca!r})"
