"""Security headers on every console response, errors included.

A strict Content-Security-Policy: scripts and styles only from the console's own
static files (no inline script or style, no eval; htmx is configured not to
inject its indicator style), no framing by anyone (clickjacking), no referrer
leaving the console, nothing cached that a later user of the browser could read.
The ``Server`` header is the collector's (``canhgac``, no version).
"""

from __future__ import annotations

from aiohttp import web

PREFIX = "/ui"
STATIC_PREFIX = "/ui/static/"

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # none to other sites; "no-referrer" would make Origin "null"
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    path = request.path
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        return
    response.headers.update(HEADERS)
    if not path.startswith(STATIC_PREFIX) or response.status != 200:
        response.headers["Cache-Control"] = "no-store"
