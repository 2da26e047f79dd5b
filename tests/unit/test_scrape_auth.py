"""/metrics needs a bearer token by default (issue 12, trust boundary 5)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from canhgac.config import load_section
from canhgac.errors import ConfigError
from collector.config import CollectorConfig
from collector.scrape_auth import ScrapeAuth


def _cfg(tmp: Path, **raw: object) -> CollectorConfig:
    return load_section({"state_dir": str(tmp), **raw}, CollectorConfig, "collector.yaml")


def _req(token: str | None) -> web.Request:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return make_mocked_request("GET", "/metrics", headers=headers)


def test_token_is_made_private_once_and_required(tmp_path: Path) -> None:
    auth = ScrapeAuth.of(_cfg(tmp_path), "collector.yaml")
    path = tmp_path / "metrics.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    ScrapeAuth.of(_cfg(tmp_path), "collector.yaml")
    assert path.read_text().strip() == token  # never overwritten
    auth.check(_req(token))
    for bad in (None, "", "x" + token, token[:-1]):
        with pytest.raises(web.HTTPUnauthorized):
            auth.check(_req(bad))


def test_auth_none_only_on_loopback(tmp_path: Path) -> None:
    ScrapeAuth.of(_cfg(tmp_path, metrics={"auth": "none"}), "c.yaml").check(_req(None))
    with pytest.raises(ConfigError, match="metrics.auth: none is allowed only"):
        ScrapeAuth.of(_cfg(tmp_path, metrics={"auth": "none"}, listen={"host": "0.0.0.0"}), "c.yaml")


def test_a_named_token_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="metrics.token_file"):
        ScrapeAuth.of(_cfg(tmp_path, metrics={"token_file": str(tmp_path / "nope")}), "c.yaml")
