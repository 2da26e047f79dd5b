"""The ``national`` output (layer 4): alerts and summaries to the national monitoring center.

``build(raw, ctx)`` is the collector's factory (``collector.outputs``). The link
itself (URL, key id, secret, CA) is read from the ``national.link`` section so
the indicator pull and ``canhgac check national`` use the very same settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from canhgac.errors import ConfigError
from canhgac.national.client import NationalClient
from shipper.output import BuildContext
from shipper.outputs.national.config import (
    LinkConfig,
    NationalOutputConfig,
    hash_key,
    load_link,
    load_output,
)
from shipper.outputs.national.encoder import Encoder
from shipper.outputs.national.policy import Policy, SystemDirectory
from shipper.outputs.national.redact import Redactor
from shipper.outputs.national.service import NationalOutput

__all__ = ["NationalOutput", "build", "make_output"]


def make_output(
    link: LinkConfig,
    secret: bytes,
    config: NationalOutputConfig,
    *,
    inventory: SystemDirectory | None = None,
    state_dir: Path | None = None,
) -> NationalOutput:
    encoder = Encoder(
        Policy(config.policy, inventory),
        Redactor(config.redact, hash_key(config.redact, state_dir)),
        config.max_request_events, config.max_request_bytes, config.gzip_level,
    )
    return NationalOutput(NationalClient(link, secret, "canhgac-collector"), encoder)


def build(raw: Any, ctx: BuildContext, *, national_section: Any,
          inventory: SystemDirectory | None) -> NationalOutput:
    """Collector factory: validates ``outputs.national`` and the ``national:`` section's link."""
    source = ctx.source
    config = load_output(raw, source)
    link = load_link(national_section, source)
    if not link.configured:
        raise ConfigError(source, "national.link.url",
                          "is required when outputs.national is configured")
    return make_output(link, link.secret_bytes(source), config, inventory=inventory,
                       state_dir=ctx.state_dir)
