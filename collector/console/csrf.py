"""Cross-site request forgery: every write carries the session's secret and comes from us.

Three checks, any one of which stops a forged write: the cookie is
``SameSite=Strict`` (a cross-site request carries no session), the browser's
``Origin`` / ``Sec-Fetch-Site`` must name this site when present, and the
request must carry the session's CSRF token (form field ``csrf`` or header
``X-CSRF-Token``, the latter sent by htmx from ``hx-headers``). Sign-in has no
session yet: its form carries a one-time value that must equal a short-lived
``SameSite=Strict`` cookie (double submit).
"""

from __future__ import annotations

import hmac

from aiohttp import web

FIELD = "csrf"
HEADER = "X-CSRF-Token"
LOGIN_COOKIE = "cg_login"


def same_origin(request: web.Request) -> bool:
    """False when the browser says the request comes from another site."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None:  # not sent by every browser on every same-origin request
        return True
    return origin == f"{request.scheme}://{request.host}"


def matches(expected: str, given: str | None) -> bool:
    """Constant-time; an empty or missing value never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def check(request: web.Request, expected: str, form_value: str | None) -> None:
    """Raise 403 unless the write is same-origin and carries the session's token."""
    if not same_origin(request):
        raise web.HTTPForbidden(text="cross-site request refused\n")
    given = request.headers.get(HEADER) or form_value
    if not matches(expected, given):
        raise web.HTTPForbidden(text="missing or wrong CSRF token: reload the page\n")
