"""Shared fixtures. Area-specific fixtures live in tests/fixtures/*.py plugins."""

from __future__ import annotations

import os

pytest_plugins = [
    "tests.fixtures.common",
    "tests.fixtures.elasticsearch",
    "tests.fixtures.collector",
]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
