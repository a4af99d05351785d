"""The pages' part of ``dialer serve``: mounted on the same aiohttp application and port.

``install_web(app, ctx)`` adds the template engine (Jinja2 through
aiohttp-jinja2, autoescaped, with Babel's gettext), the security headers,
the page-session middleware, the shared routes (``/``, ``/signin``,
``/signout``, ``/ws``, ``/static/``) and every registered section's routes,
templates and static ES modules. Nothing is fetched from elsewhere: the
templates, modules and styles are files of this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from identity.access import decide
from web.auth import (
    page_session,
    redirect,
    render,
    session_of,
    signin_page,
    signin_submit,
    signout,
    visible_sections,
)
from web.context import CTX_KEY, SECTIONS_KEY, Section, WebContext
from web.security import add_security_headers, same_origin

HERE = Path(__file__).parent


async def home(request: web.Request) -> web.StreamResponse:
    """The first section the person may open; the sign-in page when signed out."""
    if session_of(request) is None:
        return redirect("/signin")
    sections = visible_sections(request)
    if sections:
        return redirect(sections[0].path)
    return await render(request, "home.html", {})


async def live_socket(request: web.Request) -> web.StreamResponse:
    """``/ws?page=<section>``: the page's one WebSocket, topics chosen by its section."""
    ctx = request.app[CTX_KEY]
    session = session_of(request)
    if session is None:
        raise web.HTTPUnauthorized(text="sign in first")
    if not same_origin(request):
        raise web.HTTPForbidden(text="socket from another site refused")
    name = request.query.get("page", "")
    section = next((s for s in request.app[SECTIONS_KEY] if s.name == name), None)
    if section is None or section.live is None:
        raise web.HTTPNotFound(text=f"no live page {name!r}")
    if not decide(session.principal, section.action).allowed:
        raise web.HTTPForbidden(text="you may not follow this page")
    feed = await section.live(request, session, ctx)
    return await ctx.hub.serve(request, feed.topics, feed.snapshot)


def _environment(app: web.Application, ctx: WebContext, sections: Sequence[Section]) -> None:
    loader = jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader(HERE / "templates"),
            jinja2.PrefixLoader({s.name: jinja2.FileSystemLoader(s.templates) for s in sections}),
        ]
    )
    env = aiohttp_jinja2.setup(
        app,
        loader=loader,
        autoescape=jinja2.select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        ctx.i18n.gettext, ctx.i18n.ngettext, newstyle=True
    )
    env.filters["when"] = ctx.i18n.when
    # Chinese stays text in JSON data blocks too; tojson still escapes <, >, & and '.
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": True}


def install_web(
    app: web.Application, ctx: WebContext, sections: Sequence[Section] | None = None
) -> None:
    """Add the pages to ``app`` (the dialer's application, before it starts)."""
    if sections is None:
        from web.sections import SECTIONS

        sections = SECTIONS
    app[CTX_KEY] = ctx
    app[SECTIONS_KEY] = tuple(sections)
    app.middlewares.append(page_session)
    _environment(app, ctx, sections)
    app.on_response_prepare.append(add_security_headers)
    r = app.router
    r.add_get("/", home)
    r.add_get("/signin", signin_page)
    r.add_post("/signin", signin_submit)
    r.add_post("/signout", signout)
    r.add_get("/ws", live_socket)
    for s in sections:
        if s.static.is_dir():
            r.add_static(f"/static/{s.name}/", s.static)
    r.add_static("/static/", HERE / "static")
    for s in sections:
        s.install(app, ctx)
