"""Channel objects from their typed config."""

from __future__ import annotations

from collector.notify.channels import Channel
from collector.notify.channels.alertmanager import Alertmanager
from collector.notify.channels.chat import Chat
from collector.notify.channels.email import Email
from collector.notify.channels.webhook import Webhook
from collector.notify.config import (
    AlertmanagerChannel,
    ChannelConfig,
    ChatChannel,
    EmailChannel,
    WebhookChannel,
)


def build_channel(name: str, cfg: ChannelConfig) -> Channel:
    if isinstance(cfg, WebhookChannel):
        return Webhook(name, cfg)
    if isinstance(cfg, EmailChannel):
        return Email(name, cfg)
    if isinstance(cfg, AlertmanagerChannel):
        return Alertmanager(name, cfg)
    if isinstance(cfg, ChatChannel):
        return Chat(name, cfg)
    raise TypeError(f"no channel for {type(cfg).__name__}")  # pragma: no cover
