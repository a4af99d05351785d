"""Sign-in, sign-out and the session behind every page request (HTTP side of ``identity``).

The identity package checks passwords, counts failures and locks out, keeps
sessions and decides rights; this module only carries them over HTTP:

- the session id lives in the ``dialer_session`` cookie: HttpOnly,
  SameSite=Strict, ``Secure`` behind TLS, path ``/``, no ``Max-Age`` (the
  server ends it: 12 hours, or 30 minutes unused);
- the sign-in form, before any session exists, is protected by a
  double-submit token (a random ``dialer_signin`` cookie, SameSite=Strict,
  repeated in the form) and the origin check;
- every other state-changing page request needs the session's CSRF token;
- ``requires(action)`` guards a page or a page's JSON endpoint with the one
  authorization decision (``identity.access.decide``): no session -> the
  sign-in page (or 401 for ``fetch``), not allowed -> 403.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from identity.access import Action, decide
from identity.model import ActiveSession, SignedIn, SignInRefused
from identity.sessions import csrf_matches
from web.context import CTX_KEY, SECTIONS_KEY, Section
from web.security import (
    CSRF_FIELD,
    SAFE_METHODS,
    csrf_given,
    is_secure,
    safe_next,
    same_origin,
)

SESSION_COOKIE = "dialer_session"
SIGNIN_COOKIE = "dialer_signin"
SESSION_KEY = web.RequestKey("web_session", ActiveSession)
FORM_KEY: web.RequestKey[dict[str, str]] = web.RequestKey("web_form", dict)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
logger = logging.getLogger(__name__)

# Paths the page middleware leaves alone: the JSON API has its own Bearer guard, static
# files are public and carry nothing personal.
PASS_THROUGH = ("/api/", "/static/")


def session_of(request: web.Request) -> ActiveSession | None:
    return request.get(SESSION_KEY)


def form_of(request: web.Request) -> dict[str, str]:
    form: dict[str, str] = request.get(FORM_KEY, {})
    return form


def redirect(location: str) -> web.Response:
    """303 See Other (a returned response, so cookies set on it are kept)."""
    return web.Response(status=303, headers={"Location": location})


def wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "") or bool(
        request.headers.get("X-CSRF-Token")
    )


async def _refuse(request: web.Request, status: int, message: str) -> web.StreamResponse:
    if wants_json(request):
        return web.json_response({"error": message}, status=status, dumps=_dumps)
    return await render(request, "error.html", {"status": status, "message": message}, status)


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False)


@web.middleware
async def page_session(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the session to page requests; hold state changes to origin and CSRF."""
    if request.path.startswith(PASS_THROUGH):
        return await handler(request)
    ctx = request.app[CTX_KEY]
    language = request.query.get("lang") or request.cookies.get("lang", "")
    ctx.i18n.set_language(language)
    sid = request.cookies.get(SESSION_COOKIE, "")
    session = await ctx.sessions.resolve_session(sid) if sid else None
    if session is not None:
        request[SESSION_KEY] = session
    if request.method not in SAFE_METHODS or request.headers.get("Upgrade", "").lower() == (
        "websocket"
    ):
        if not same_origin(request):
            refused = ctx.i18n.gettext("Request from another site refused.")
            return await _refuse(request, 403, refused)
    if request.method not in SAFE_METHODS:
        form: dict[str, str] = {}
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            posted = await request.post()
            form = {k: v for k, v in posted.items() if isinstance(v, str)}
        request[FORM_KEY] = form
        if request.path != "/signin" and not _csrf_ok(request, sid, form):
            return await _refuse(
                request,
                403,
                ctx.i18n.gettext("The form has expired. Reload the page and try again."),
            )
    response = await handler(request)
    if "lang" in request.query and request.query["lang"] == ctx.i18n.language():
        response.set_cookie(
            "lang",
            ctx.i18n.language(),
            httponly=True,
            samesite="Strict",
            path="/",
            secure=is_secure(request, ctx.secure_cookies),
            max_age=365 * 86400,
        )
    return response


def _csrf_ok(request: web.Request, sid: str, form: dict[str, str]) -> bool:
    session = session_of(request)
    if session is None:
        return request.path == "/signout"  # signing out of nothing changes nothing
    return csrf_matches(sid, csrf_given(request, form))


def requires(
    action: Action, owner: Callable[[web.Request], str] | None = None
) -> Callable[[Handler], Handler]:
    """Guard a page handler: signed in, and ``decide(principal, action, owner)`` allows it."""

    def wrap(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            ctx = request.app[CTX_KEY]
            session = session_of(request)
            if session is None:
                if wants_json(request) or request.method not in SAFE_METHODS:
                    return await _refuse(request, 401, ctx.i18n.gettext("Please sign in."))
                return redirect("/signin?" + urlencode({"next": request.path_qs}))
            decision = decide(
                session.principal, action, owner(request) if owner is not None else None
            )
            if not decision.allowed:
                logger.info(
                    "page %s %s refused to %s: %s",
                    request.method,
                    request.path,
                    session.principal.name,
                    decision.reason,
                )
                return await _refuse(request, 403, ctx.i18n.gettext("You may not open this page."))
            return await handler(request)

        guarded.__name__ = getattr(handler, "__name__", "page")
        guarded.__doc__ = handler.__doc__
        return guarded

    return wrap


def visible_sections(request: web.Request) -> list[Section]:
    """The sections the signed-in person may open, in the registration order."""
    session = session_of(request)
    if session is None:
        return []
    return [s for s in request.app[SECTIONS_KEY] if decide(session.principal, s.action).allowed]


async def render(
    request: web.Request, template: str, data: dict[str, Any], status: int = 200
) -> web.Response:
    """A page from ``template`` with the layout's context (user, navigation, CSRF token)."""
    context = await template_context(request)
    context.update(data)
    return aiohttp_jinja2.render_template(template, request, context, status=status)


async def template_context(request: web.Request) -> dict[str, Any]:
    ctx = request.app[CTX_KEY]
    session = session_of(request)
    return {
        "session": session,
        "user": session.principal if session is not None else None,
        "csrf_token": session.csrf_token if session is not None else "",
        "nav": [(s.path, s.title) for s in visible_sections(request)],
        "language": ctx.i18n.language(),
        "product_name": ctx.product_name,
        "request_path": request.path,
    }


# ---------------------------------------------------------------- sign-in and sign-out


def _signin_token(request: web.Request) -> str:
    return request.cookies.get(SIGNIN_COOKIE, "")


async def _render_signin(
    request: web.Request, *, error: str = "", name: str = "", status: int = 200
) -> web.Response:
    token = _signin_token(request) or secrets.token_urlsafe(24)
    response = await render(
        request,
        "signin.html",
        {
            "signin_token": token,
            "error": error,
            "name": name,
            "next": safe_next(request.query.get("next")),
            "csrf_field": CSRF_FIELD,
        },
        status,
    )
    ctx = request.app[CTX_KEY]
    response.set_cookie(
        SIGNIN_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        path="/signin",
        secure=is_secure(request, ctx.secure_cookies),
    )
    return response


async def signin_page(request: web.Request) -> web.StreamResponse:
    if session_of(request) is not None:
        return redirect(safe_next(request.query.get("next")))
    return await _render_signin(request)


async def signin_submit(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX_KEY]
    form = form_of(request)
    given, cookie = form.get(CSRF_FIELD, ""), _signin_token(request)
    if not cookie or not hmac.compare_digest(given.encode(), cookie.encode()):
        return await _render_signin(
            request,
            error=ctx.i18n.gettext("The form has expired. Reload the page and try again."),
            status=403,
        )
    name = form.get("username", "").strip()
    password = form.get("password", "")
    if not name or not password:
        return await _render_signin(
            request,
            error=ctx.i18n.gettext("Enter your user name and password."),
            name=name,
            status=400,
        )
    result = await ctx.sessions.sign_in(name, password, request.remote or "")
    if isinstance(result, SignInRefused):
        if result.locked_until is not None:
            error = ctx.i18n.gettext("Too many failed sign-ins. Try again after {time}.").format(
                time=ctx.i18n.when(result.locked_until, "time")
            )
            status = 429
        else:
            error = ctx.i18n.gettext("Wrong user name or password.")
            status = 401
        return await _render_signin(request, error=error, name=name, status=status)
    return _signed_in(request, result, form.get("next"))


def _signed_in(request: web.Request, result: SignedIn, target: str | None) -> web.StreamResponse:
    ctx = request.app[CTX_KEY]
    response = redirect(safe_next(target))
    response.set_cookie(
        SESSION_COOKIE,
        result.session_id,
        httponly=True,
        samesite="Strict",
        path="/",
        secure=is_secure(request, ctx.secure_cookies),
    )
    response.del_cookie(SIGNIN_COOKIE, path="/signin")
    logger.info("signed in: %s (%s)", result.principal.name, result.principal.role.value)
    return response


async def signout(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX_KEY]
    sid = request.cookies.get(SESSION_COOKIE, "")
    if sid:
        await ctx.sessions.revoke_session(sid)
    response = redirect("/signin")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response
