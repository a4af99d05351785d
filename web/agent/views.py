"""The agent's screen (``/agent/``) and the actions it posts (JSON, CSRF-protected).

An agent acts only as its own agent id (``identity.access``: ``AGENT_ACT`` with
scope "own"); the page never receives a customer list, an export or a full
number.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from dialer.agent_pool import AgentRefusal
from dialer.ari.errors import AriError
from identity.access import Action
from identity.model import ActiveSession
from web.agent.screens import AgentScreens, topic
from web.auth import requires, session_of
from web.context import CTX_KEY, LiveFeed, WebContext

SCREENS_KEY: web.AppKey[AgentScreens] = web.AppKey("agent_screens", AgentScreens)


def _agent_id(request: web.Request) -> str:
    session = session_of(request)
    return session.principal.agent_id if session is not None else ""


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _refusal(request: web.Request, refusal: AgentRefusal) -> web.Response:
    i18n = request.app[CTX_KEY].i18n
    texts = {
        AgentRefusal.UNKNOWN_AGENT: i18n.gettext("You are not logged in to a campaign."),
        AgentRefusal.NOT_LOGGED_IN: i18n.gettext("You are not logged in to a campaign."),
        AgentRefusal.ON_A_CALL: i18n.gettext("Not while you are on a call."),
        AgentRefusal.CHANNEL_NOT_UP: i18n.gettext("Your phone is not connected yet."),
        AgentRefusal.NOT_IN_WRAPUP: i18n.gettext("There is no call to wrap up."),
    }
    return _json({"error": texts[refusal], "code": refusal.value}, status=409)


@requires(Action.AGENT_ACT, owner=_agent_id)
async def screen(request: web.Request) -> web.StreamResponse:
    screens = request.app[SCREENS_KEY]
    agent_id = _agent_id(request)
    state = screens.state(agent_id)
    return aiohttp_jinja2.render_template(
        "agent/screen.html",
        request,
        {"agent_id": agent_id, "state": state, "campaigns": screens.campaigns()},
    )


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


@requires(Action.AGENT_ACT, owner=_agent_id)
async def login(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX_KEY]
    screens = request.app[SCREENS_KEY]
    agent_id = _agent_id(request)
    body = await _body(request)
    campaign = body.get("campaign")
    if not isinstance(campaign, str) or campaign not in screens.campaigns():
        return _json(
            {"error": ctx.i18n.gettext("Choose a campaign that is running."), "field": "campaign"},
            status=400,
        )
    try:
        await ctx.dialer().runner.agent_login(agent_id, campaign)
    except ValueError as exc:
        return _json({"error": str(exc), "field": "campaign"}, status=409)
    except AriError as exc:
        return _json(
            {
                "error": ctx.i18n.gettext("Your phone could not be called: {error}").format(
                    error=exc
                )
            },
            status=502,
        )
    screens.agent_changed(agent_id)
    return _json({"done": "login", "state": screens.state(agent_id).status})


def _action(name: str) -> Any:
    @requires(Action.AGENT_ACT, owner=_agent_id)
    async def handler(request: web.Request) -> web.StreamResponse:
        ctx = request.app[CTX_KEY]
        screens = request.app[SCREENS_KEY]
        agent_id = _agent_id(request)
        runner = ctx.dialer().runner
        act = {
            "ready": runner.agent_ready,
            "logout": runner.agent_logout,
            "hangup": runner.agent_hangup,
        }[name]
        refusal = await act(agent_id)
        if refusal is not None:
            return _refusal(request, refusal)
        screens.agent_changed(agent_id)
        return _json({"done": name, "state": screens.state(agent_id).status})

    handler.__name__ = f"agent_{name}"
    return handler


@requires(Action.AGENT_ACT, owner=_agent_id)
async def pause(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX_KEY]
    screens = request.app[SCREENS_KEY]
    agent_id = _agent_id(request)
    refusal = await ctx.dialer().runner.agent_pause(agent_id)
    if refusal is not None:
        return _refusal(request, refusal)
    screens.agent_changed(agent_id)
    return _json({"done": "pause", "state": screens.state(agent_id).status})


async def live(request: web.Request, session: ActiveSession, ctx: WebContext) -> LiveFeed:
    agent_id = session.principal.agent_id
    if not agent_id:
        raise web.HTTPForbidden(text="your user has no agent id")
    screens = request.app[SCREENS_KEY]
    return LiveFeed((topic(agent_id),), screens.snapshot(agent_id))


def install(app: web.Application, ctx: WebContext) -> None:
    app[SCREENS_KEY] = AgentScreens(ctx.dialer(), ctx.hub)
    r = app.router
    r.add_get("/agent/", screen)
    r.add_post("/agent/login", login)
    r.add_post("/agent/pause", pause)
    for name in ("ready", "logout", "hangup"):
        r.add_post(f"/agent/{name}", _action(name))
