"""The HTTP API of ``dialer serve`` for agents and supervisors (aiohttp, JSON).

Agents: ``POST /api/agents/{id}/login`` ``{"campaign": "..."}``, ``/ready``,
``/pause``, ``/logout``, ``/hangup``, ``/disposition`` (``{"kind": "order",
"product": "...", "confirmed": true}``, ``{"kind": "callback", "callback_at":
"2026-12-01T10:00:00+08:00"}`` ...), ``GET /api/agents/{id}``.
Supervisors: ``GET/POST /api/campaigns``, ``POST /api/campaigns/{name}/start``,
``/pause``, ``/stop``, ``GET /api/campaigns/{name}/figures``;
``POST /api/inbound`` ``{"waiting": n}`` (inbound first); ``GET /api/health``.

Bad input gets 400 with ``{"error": ..., "field": ...}``; an agent never sees a
full phone number (masked). When ``http.token`` is set every request needs
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from compliance.campaigns import (
    CampaignError,
    CampaignState,
    UnknownCampaign,
    parse_campaign_spec,
    spec_to_dict,
)
from compliance.numbers import mask
from dialer.adapters import campaign_plan
from dialer.ari.errors import AriError
from dialer.dispositions import DispositionRejected, DispositionRequest

if TYPE_CHECKING:
    from dialer.app import DialerStack

STACK_KEY: web.AppKey[DialerStack] = web.AppKey("dialer_stack")
TOKEN_KEY: web.AppKey[str] = web.AppKey("dialer_token", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str, field: str = "") -> web.Response:
    body: dict[str, str] = {"error": message}
    if field:
        body["field"] = field
    return web.json_response(body, status=status)


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.app[TOKEN_KEY]
    if token and request.path != "/api/health":
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return _error(401, "missing or wrong bearer token")
    return await handler(request)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"body is not valid JSON: {exc}"}),
            content_type="application/json",
        ) from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body must be a JSON object"}),
            content_type="application/json",
        )
    return data


def _stack(request: web.Request) -> DialerStack:
    return request.app[STACK_KEY]


# ---------------------------------------------------------------- agents


async def agent_login(request: web.Request) -> web.Response:
    stack = _stack(request)
    agent_id = request.match_info["agent"]
    body = await _body(request)
    campaign = body.get("campaign")
    if not isinstance(campaign, str) or not campaign:
        return _error(400, "campaign is required", "campaign")
    if campaign not in stack.runner.campaigns:
        return _error(
            404, f"campaign {campaign!r} is not loaded (create and start it first)", "campaign"
        )
    endpoint = body.get("endpoint")
    if endpoint is not None and not isinstance(endpoint, str):
        return _error(400, "endpoint must be text", "endpoint")
    try:
        agent = await stack.runner.agent_login(agent_id, campaign, endpoint)
    except ValueError as exc:
        return _error(409, str(exc), "agent")
    except AriError as exc:
        return _error(502, f"cannot call the agent's phone: {exc}", "endpoint")
    return web.json_response(
        {"agent": agent_id, "status": agent.status.value, "bridge": agent.bridge_id}
    )


def _agent_action(name: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        stack = _stack(request)
        agent_id = request.match_info["agent"]
        action = {
            "ready": stack.runner.agent_ready,
            "pause": stack.runner.agent_pause,
            "logout": stack.runner.agent_logout,
            "hangup": stack.runner.agent_hangup,
        }[name]
        refusal = await action(agent_id)
        if refusal is not None:
            return _error(409, f"agent {agent_id}: {refusal.value}", "agent")
        return web.json_response({"agent": agent_id, "done": name})

    return handler


async def agent_get(request: web.Request) -> web.Response:
    stack = _stack(request)
    agent_id = request.match_info["agent"]
    for run in stack.runner.campaigns.values():
        view = run.pool.view(agent_id, stack.runner.clock.now())
        if view is not None:
            data = asdict(view)
            data["status"] = view.status.value
            data["campaign"] = run.plan.name
            current = view.attempt_id or view.last_attempt_id
            if current is not None:
                rec = await stack.attempts.get(current)
                if rec is not None:
                    data["customer"] = mask(rec.number)  # an agent never sees the full number
            return web.json_response(data)
    return _error(404, f"unknown agent {agent_id}", "agent")


async def agent_disposition(request: web.Request) -> web.Response:
    stack = _stack(request)
    agent_id = request.match_info["agent"]
    body = await _body(request)
    kind = body.get("kind")
    if not isinstance(kind, str):
        return _error(400, "kind is required", "kind")
    product = body.get("product")
    if product is not None and not isinstance(product, str):
        return _error(400, "product must be text", "product")
    confirmed = body.get("confirmed", False)
    if not isinstance(confirmed, bool):
        return _error(400, "confirmed must be true or false", "confirmed")
    callback_at = None
    if body.get("callback_at") is not None:
        raw = body["callback_at"]
        try:
            callback_at = datetime.fromisoformat(str(raw))
        except ValueError:
            return _error(400, f"callback_at {raw!r} is not an ISO 8601 time", "callback_at")
    note = body.get("note", "")
    attempt = body.get("attempt_id")
    req = DispositionRequest(kind, product, confirmed, callback_at, str(note)[:2000])
    result = await stack.runner.disposition(
        agent_id, req, attempt if isinstance(attempt, str) else None
    )
    if isinstance(result, DispositionRejected):
        return _error(400, result.message, result.field)
    return web.json_response(
        {
            "agent": agent_id,
            "disposition": result.kind.value,
            "lead_status": result.lead_status.value,
            "next_attempt_at": result.next_attempt_at.isoformat()
            if result.next_attempt_at
            else None,
            "blacklisted": result.add_to_dnc,
        }
    )


# ---------------------------------------------------------------- campaigns


async def campaign_list(request: web.Request) -> web.Response:
    stack = _stack(request)
    out = []
    for c in await stack.stores.campaigns.list_all():
        d = spec_to_dict(c.spec)
        d.pop("script", None)
        d["state"] = c.state.value
        out.append(d)
    return web.json_response(out)


async def campaign_create(request: web.Request) -> web.Response:
    stack = _stack(request)
    body = await _body(request)
    try:
        spec = parse_campaign_spec(body)
        campaign = await stack.stores.campaigns.create(spec)
    except CampaignError as exc:
        return _error(400, str(exc), exc.key)
    stack.runner.add_campaign(campaign_plan(campaign, stack.policy.tz))
    return web.json_response({"name": campaign.name, "state": campaign.state.value}, status=201)


def _campaign_state(target: CampaignState) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        stack = _stack(request)
        name = request.match_info["name"]
        try:
            campaign = await stack.stores.campaigns.set_state(name, target)
        except UnknownCampaign as exc:
            return _error(404, str(exc), "name")
        except CampaignError as exc:
            return _error(409, str(exc), exc.key)
        stack.runner.add_campaign(campaign_plan(campaign, stack.policy.tz))
        if target is CampaignState.RUNNING:
            if stack.runner.halted is not None:
                return _error(503, stack.runner.halted)
            stack.runner.start_dialling(name)
        else:
            stack.runner.pause_dialling(name)
        return web.json_response({"name": name, "state": campaign.state.value})

    return handler


async def campaign_figures(request: web.Request) -> web.Response:
    stack = _stack(request)
    name = request.match_info["name"]
    if name not in stack.runner.campaigns:
        return _error(404, f"campaign {name!r} is not loaded", "name")
    live = asdict(stack.runner.figures(name))
    funnel = await stack.attempts.funnel(name)
    live["funnel"] = {
        **asdict(funnel),
        "connect_rate": funnel.connect_rate,
        "abandon_rate": funnel.abandon_rate,
        "effective_rate": funnel.effective_rate,
        "success_rate": funnel.success_rate,
    }
    return web.json_response(live)


async def inbound(request: web.Request) -> web.Response:
    body = await _body(request)
    waiting = body.get("waiting")
    if not isinstance(waiting, int) or isinstance(waiting, bool) or waiting < 0:
        return _error(400, "waiting must be an integer >= 0", "waiting")
    _stack(request).runner.set_inbound_waiting(waiting)
    return web.json_response({"waiting": waiting})


async def health(request: web.Request) -> web.Response:
    stack = _stack(request)
    ok = stack.runner.halted is None and stack.events.connected.is_set()
    return web.json_response(
        {"ok": ok, "halted": stack.runner.halted, "ari_connected": stack.events.connected.is_set()},
        status=200 if ok else 503,
    )


def make_api_app(stack: DialerStack, *, token: str = "") -> web.Application:
    app = web.Application(middlewares=[_auth])
    app[STACK_KEY] = stack
    app[TOKEN_KEY] = token
    r = app.router
    r.add_post("/api/agents/{agent}/login", agent_login)
    for name in ("ready", "pause", "logout", "hangup"):
        r.add_post(f"/api/agents/{{agent}}/{name}", _agent_action(name))
    r.add_post("/api/agents/{agent}/disposition", agent_disposition)
    r.add_get("/api/agents/{agent}", agent_get)
    r.add_get("/api/campaigns", campaign_list)
    r.add_post("/api/campaigns", campaign_create)
    r.add_post("/api/campaigns/{name}/start", _campaign_state(CampaignState.RUNNING))
    r.add_post("/api/campaigns/{name}/pause", _campaign_state(CampaignState.PAUSED))
    r.add_post("/api/campaigns/{name}/stop", _campaign_state(CampaignState.STOPPED))
    r.add_get("/api/campaigns/{name}/figures", campaign_figures)
    r.add_post("/api/inbound", inbound)
    r.add_get("/api/health", health)
    return app
