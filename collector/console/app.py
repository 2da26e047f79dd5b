"""The console's routes: sign-in and sign-out, the language switch, static files, the pages.

Every page goes through ``Console.page``: the session cookie, then the token it
holds re-authenticated by the collector's access layer (``access`` port) — the
same ``Principal`` the API would see — then, for a write, the CSRF check. A
request whose session is gone is sent to the sign-in page (htmx requests with
``HX-Redirect``, so a polling fragment never swaps a login form into a table).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import jinja2
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy, MultiDictProxy

from collector.alerts.access import Principal
from collector.console import csrf, i18n
from collector.console.config import ConsoleConfig
from collector.console.format import Formatter
from collector.console.page import Deps, Page
from collector.console.session import COOKIE, COOKIE_PATH, SessionStore

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
MAX_FORM = 64 * 1024
HTMX = "htmx-2.0.11.min.js"  # npm htmx.org 2.0.11, dist/htmx.min.js (docs/console.md: sha256)
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}

View = Callable[[Page], Awaitable["Result"]]
Result = web.StreamResponse | tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class _Asking:
    """What the access layer reads of a request: the peer address and the headers.

    The console asks with the session's token as the Bearer header; aiohttp cannot
    clone a request whose form was read (sign-in), so this stands in for the clone.
    """

    remote: str | None
    headers: CIMultiDictProxy[str]


class Console:
    def __init__(self, deps: Deps, config: ConsoleConfig) -> None:
        self.deps = deps
        self.config = config
        self.sessions = SessionStore(float(config.idle_timeout), float(config.absolute_timeout),
                                     config.max_sessions)
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                      autoescape=True, trim_blocks=True, lstrip_blocks=True,
                                      undefined=jinja2.StrictUndefined)
        self.static = {p.name: (p.read_bytes(), STATIC_TYPES[p.suffix])
                       for p in (HERE / "static").iterdir() if p.suffix in STATIC_TYPES}
        # Cache-busting names for the stylesheet and script, from their content.
        self.asset = {name: f"/ui/static/{name}?v={hashlib.sha256(body).hexdigest()[:12]}"
                      for name, (body, _) in self.static.items()}

    # -- plumbing ----------------------------------------------------------------
    def lang_of(self, request: web.Request) -> str:
        return i18n.pick(request.cookies.get(i18n.COOKIE))

    def render(self, request: web.Request, template: str, status: int = 200,
               page: Page | None = None, **values: Any) -> web.Response:
        lang = page.lang if page else self.lang_of(request)
        fmt = page.fmt if page else Formatter(lang, self.config.utc_offset_hours)
        html = self.env.get_template(template).render(
            t=page.t if page else i18n.translator(lang), lang=lang, fmt=fmt, page=page,
            asset=self.asset, htmx=self.asset[HTMX], path=request.path_qs,
            reason=lambda layer: i18n.reason(layer, lang), quote=quote,
            poll=float(self.config.poll_interval), scope_text=scope_text, status=status,
            active=values.pop("active", _section(request.path)), **values)
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")

    async def principal(self, request: web.Request, token: str) -> Principal | None:
        """Who ``token`` is, exactly as the API would decide it for this request; None if
        the token is unknown or revoked."""
        headers = CIMultiDict(request.headers)
        headers["Authorization"] = f"Bearer {token}"
        asking = cast(web.Request, _Asking(request.remote, CIMultiDictProxy(headers)))
        try:
            return await self.deps.access.principal(asking)
        except web.HTTPException:
            return None

    def to_login(self, request: web.Request, expired: bool) -> web.Response:
        target = "/ui/login" + ("?expired=1" if expired else "")
        response: web.Response
        if request.headers.get("HX-Request"):
            response = web.Response(status=200, headers={"HX-Redirect": target})
        elif request.method == "GET":
            response = redirect(target + ("&" if expired else "?")
                                        + "next=" + quote(request.path_qs, safe=""))
        else:
            response = redirect(target)
        if expired:
            response.del_cookie(COOKIE, path=COOKIE_PATH)
        return response

    async def form(self, request: web.Request) -> MultiDictProxy[Any]:
        if request.content_length is not None and request.content_length > MAX_FORM:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_FORM, actual_size=request.content_length)
        return await request.post()

    def page(self, view: View, touch: bool = True) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            response = await serve(request)
            # The server's own time for the page (bench/console.py reads it).
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            return response

        async def serve(request: web.Request) -> web.StreamResponse:
            sid = request.cookies.get(COOKIE)
            session = self.sessions.get(sid, touch=touch)
            if session is None:
                return self.to_login(request, expired=bool(sid))
            who = await self.principal(request, session.token)
            if who is None:  # revoked since sign-in
                self.sessions.drop(sid)
                return self.to_login(request, expired=True)
            lang = self.lang_of(request)
            pg = Page(request, session, who, lang, i18n.translator(lang),
                      Formatter(lang, self.config.utc_offset_hours), self.deps)
            if request.method == "POST":
                form = await self.form(request)
                csrf.check(request, session.csrf, _str(form.get(csrf.FIELD)))
                pg.form = form
            try:
                result = await view(pg)
            except web.HTTPException as exc:
                if exc.status not in (400, 403, 404, 409, 413):
                    raise
                # The API's refusal, in a page: same status, no detail beyond the API's.
                return self.render(request, "error.html", status=exc.status, page=pg,
                                   message=(exc.text or "").strip() if exc.status != 404 else "")
            if isinstance(result, web.StreamResponse):
                return result
            template, values = result
            status = int(values.pop("status", 200))
            return self.render(request, template, status=status, page=pg, **values)

        return handler

    # -- sign-in, sign-out, language, static ---------------------------------------------
    async def login_form(self, request: web.Request) -> web.StreamResponse:
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is not None:
            return redirect(safe_next(request.query.get("next")))
        error = "login.expired" if request.query.get("expired") else None
        return self._login_page(request, error, 200)

    def _login_page(self, request: web.Request, error: str | None, status: int) -> web.Response:
        nonce = secrets.token_urlsafe(24)
        response = self.render(request, "login.html", status=status, error=error, nonce=nonce,
                               next=safe_next(request.query.get("next")))
        response.set_cookie(csrf.LOGIN_COOKIE, nonce, path="/ui/login", max_age=3600,
                            secure=True, httponly=True, samesite="Strict")
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await self.form(request)
        if not csrf.same_origin(request) or not csrf.matches(
                request.cookies.get(csrf.LOGIN_COOKIE, ""), _str(form.get("login_csrf"))):
            log.info("console sign-in refused from %s: stale or cross-site form (origin %s, "
                     "fetch-site %s, cookie %s)", request.remote, request.headers.get("Origin"),
                     request.headers.get("Sec-Fetch-Site"), csrf.LOGIN_COOKIE in request.cookies)
            return self._login_page(request, "login.stale", 403)
        token = (_str(form.get("token")) or "").strip()
        who = await self.principal(request, token) if token and len(token) <= 512 else None
        if who is None:
            log.info("console sign-in refused from %s", request.remote)
            return self._login_page(request, "login.bad", 401)
        sid, _ = self.sessions.create(token)
        log.info("console sign-in: %s (role %s) from %s", who.name, who.role, request.remote)
        response = redirect(safe_next(_str(form.get("next"))))
        response.set_cookie(COOKIE, sid, path=COOKIE_PATH, secure=True, httponly=True,
                            samesite="Strict")
        response.del_cookie(csrf.LOGIN_COOKIE, path="/ui/login")
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        sid = request.cookies.get(COOKIE)
        session = self.sessions.get(sid, touch=False)
        if session is not None:
            form = await self.form(request)
            csrf.check(request, session.csrf, _str(form.get(csrf.FIELD)))
            self.sessions.drop(sid)
        response = redirect("/ui/login")
        response.del_cookie(COOKIE, path=COOKIE_PATH)
        return response

    async def set_lang(self, request: web.Request) -> web.StreamResponse:
        lang = i18n.pick(request.match_info["lang"])
        response = redirect(safe_next(request.query.get("next")))
        response.set_cookie(i18n.COOKIE, lang, path=COOKIE_PATH, max_age=365 * 86400,
                            secure=True, httponly=True, samesite="Strict")
        return response

    async def static_file(self, request: web.Request) -> web.StreamResponse:
        found = self.static.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        body, ctype = found
        return web.Response(body=body, content_type=ctype,
                            headers={"Cache-Control": "public, max-age=86400"})

    async def root(self, request: web.Request) -> web.StreamResponse:
        return redirect("/ui/overview")

    def routes(self, pages: list[tuple[str, str, View, bool]]) -> list[web.RouteDef]:
        out = [
            web.get("/ui", self.root),
            web.get("/ui/", self.root),
            web.get("/ui/login", self.login_form),
            web.post("/ui/login", self.login),
            web.post("/ui/logout", self.logout),
            web.get("/ui/lang/{lang}", self.set_lang),
            web.get("/ui/static/{name}", self.static_file),
        ]
        for method, path, view, touch in pages:
            out.append(web.route(method, path, self.page(view, touch)))
        return out


def redirect(location: str) -> web.Response:
    """303 See Other: after a write, the browser GETs the next page (no re-post on reload)."""
    return web.Response(status=303, headers={"Location": location})


def safe_next(value: str | None) -> str:
    """Where to go after sign-in or a language switch: a console path, never another site."""
    if value and value.startswith("/ui/") and not value.startswith("/ui//") \
            and "\\" not in value and all(c.isprintable() for c in value):
        return value
    return "/ui/overview"


def scope_text(who: Principal) -> str:
    describe = getattr(who.scope, "describe", None)
    return str(describe()) if callable(describe) else str(who.scope)


def _section(path: str) -> str:
    parts = path.split("/")
    return parts[2] if len(parts) > 2 else ""


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
