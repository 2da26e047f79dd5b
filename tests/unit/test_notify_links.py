"""Alert messages link to the collector's own console by default (notifications.console_url)."""

from __future__ import annotations

from collector.config import CollectorConfig, ListenConfig, TlsConfig
from collector.notify.links import default_console_url
from collector.notify.render import summarize


def test_the_default_link_is_the_collectors_console() -> None:
    assert default_console_url(CollectorConfig()) == "https://127.0.0.1:8443/ui"
    on = CollectorConfig(listen=ListenConfig("10.0.0.5", 9443))
    assert default_console_url(on) == "https://10.0.0.5:9443/ui"
    # a wildcard address is no address to click: this machine's name instead
    anywhere = CollectorConfig(listen=ListenConfig("0.0.0.0", 8443))
    assert default_console_url(anywhere, "soc.hue.gov.vn") == "https://soc.hue.gov.vn:8443/ui"
    v6 = CollectorConfig(listen=ListenConfig("fd00::5", 8443), tls=TlsConfig(enabled=False))
    assert default_console_url(v6) == "http://[fd00::5]:8443/ui"
    summary = summarize({"event": {"id": "a1b2"}}, system_name="", level=None, severity="high",
                        console_url=default_console_url(CollectorConfig()))
    assert summary["link"] == "https://127.0.0.1:8443/ui/alerts/a1b2"  # the console's alert page


def test_no_default_link_without_a_console_or_a_known_port() -> None:
    assert default_console_url(CollectorConfig(console={"enabled": False})) == ""
    assert default_console_url(CollectorConfig(components=["detect", "alerts", "notify"])) == ""
    assert default_console_url(CollectorConfig(components=["alerts", "notify", "console"])) != ""
    assert default_console_url(CollectorConfig(listen=ListenConfig("127.0.0.1", 0))) == ""
