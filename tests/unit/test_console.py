"""The web console's pieces without a server: formats, sessions, coverage reasons, redirects,
the vendored htmx (its recorded checksum), and the labels every template uses."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest

from collector.console import csrf, i18n
from collector.console.app import HTMX, safe_next
from collector.console.format import Formatter
from collector.console.session import SessionStore

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "collector" / "console"


def test_numbers_are_written_the_vietnamese_and_the_english_way() -> None:
    vi, en = Formatter("vi"), Formatter("en")
    assert vi.num(1234.5, 1) == "1.234,5" and en.num(1234.5, 1) == "1,234.5"
    assert vi.num(1_000_000) == "1.000.000" and en.num(1_000_000) == "1,000,000"
    assert vi.pct(2 / 3) == "66,7%" and en.pct(2 / 3) == "66.7%" and vi.pct(1.0) == "100%"
    assert vi.num(None) == "–" and vi.num(float("nan")) == "–"
    noon_utc7 = dt.datetime(2026, 12, 12, 7, 0, tzinfo=dt.UTC).timestamp()
    assert vi.when(0) == "–" and vi.when(noon_utc7) == "12/12/2026 14:00"
    assert en.when(noon_utc7) == "2026-12-12 14:00"
    assert vi.stamp("2026-12-12T07:00:00.000Z") == "12/12/2026 14:00:00"
    assert vi.ago(7200) == "2 giờ" and en.ago(45) == "45 s"


def test_sessions_end_when_idle_or_too_old_and_polling_does_not_keep_them() -> None:
    now = [1000.0]
    store = SessionStore(idle=60, absolute=300, max_sessions=3, clock=lambda: now[0])
    sid, session = store.create("cgo_x.y")
    assert store.get(sid) is session and store.get("other") is None and store.get(None) is None
    now[0] += 50
    assert store.get(sid, touch=False) is session  # a poll: does not hold the idle timeout off
    now[0] += 20
    assert store.get(sid) is None  # 70 s idle
    sid, session = store.create("cgo_x.y")
    for _ in range(10):  # active all along, yet ends at the absolute timeout
        now[0] += 40
        store.get(sid)
    assert store.get(sid) is None
    sids = [store.create(f"t{i}")[0] for i in range(5)]
    assert len(store) == 3 and store.get(sids[0]) is None and store.get(sids[-1]) is not None


def test_a_new_session_id_every_sign_in_and_a_csrf_secret_per_session() -> None:
    store = SessionStore(60, 300, 10)
    a, sa = store.create("tok")
    b, sb = store.create("tok")
    assert a != b and sa.csrf != sb.csrf and len(sa.csrf) >= 40
    store.drop(a)
    assert store.get(a) is None and store.get(b) is sb


def test_csrf_values_compare_only_when_both_are_there() -> None:
    assert csrf.matches("abc", "abc")
    assert not csrf.matches("abc", "abd") and not csrf.matches("", "") and not csrf.matches("a", None)


@pytest.mark.parametrize("value,expected", [
    ("/ui/alerts?state=open", "/ui/alerts?state=open"),
    ("https://evil.example/", "/ui/overview"),
    ("//evil.example/ui/", "/ui/overview"),
    ("/ui//evil.example", "/ui/overview"),
    ("/ui/\\evil", "/ui/overview"),
    ("/ui/x\r\nSet-Cookie: a=b", "/ui/overview"),
    (None, "/ui/overview"),
])
def test_redirects_stay_in_the_console(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_coverage_reasons_are_the_models_own_words_in_both_languages() -> None:
    """The console says a gap's reason with collector.coverage.reasons, as the CLI does."""
    from collector.coverage.model import LayerResult
    from collector.coverage.reasons import reason, say

    why = [reason("onsite.acked", in_time=3, total=4)]
    layer = LayerResult(0.75, say(why, "en"), {}, why)
    assert i18n.reason(layer, "vi") == say(why, "vi") and "3/4" in i18n.reason(layer, "vi")
    assert i18n.reason(layer, "en") == "3 of 4 alerts acknowledged within SLA"
    assert i18n.reason(LayerResult(0.0, "older text", {}), "vi") == "older text"


def test_every_label_a_template_uses_exists_in_both_languages() -> None:
    keys: set[str] = set()
    for template in (CONSOLE / "templates").glob("*.html"):
        keys |= set(re.findall(r'\bt\("([a-z_.]+)"', template.read_text(encoding="utf-8")))
    for view in (CONSOLE / "views").glob("*.py"):
        keys |= set(re.findall(r'\bt\("([a-z_.]+)"', view.read_text(encoding="utf-8")))
    # t("state." ~ x): a family, checked by its members below
    missing = sorted(k for k in keys if not k.endswith(".") and k not in i18n.MESSAGES)
    for family in ("agent.", "layer.", "nav.", "outcome.", "result.", "severity.", "state.",
                   "status."):
        assert family in keys and any(k.startswith(family) for k in i18n.MESSAGES), family
    assert not missing
    for key, (vi, en) in i18n.MESSAGES.items():
        assert vi and en, key


def test_the_vendored_htmx_is_the_recorded_release() -> None:
    """docs/console.md records the npm package version and the file's SHA-256."""
    body = (CONSOLE / "static" / HTMX).read_bytes()
    digest = hashlib.sha256(body).hexdigest()
    doc = (ROOT / "docs" / "console.md").read_text(encoding="utf-8")
    assert digest in doc and "htmx.org@2.0.11" in doc
    assert body.startswith(b"var htmx=function(){")
