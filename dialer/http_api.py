"""The HTTP API of ``dialer serve`` for agents and supervisors (aiohttp, JSON).

Agents: ``POST /api/agents/{id}/login`` ``{"campaign": "..."}``, ``/ready``,
``/pause``, ``/logout``, ``/hangup``, ``/disposition`` (``{"kind": "order",
"product": "...", "confirmed": true}``, ``{"kind": "callback", "callback_at":
"2026-12-01T10:00:00+08:00"}`` ...), ``GET /api/agents/{id}``.
Supervisors: ``GET/POST /api/campaigns``, ``POST /api/campaigns/{name}/start``,
``/pause``, ``/stop``, ``GET /api/campaigns/{name}/figures``;
``POST /api/inbound`` ``{"waiting": n}`` (inbound first); ``GET /api/health``.

Bad input gets 400 with ``{"error": ..., "field": ...}``; an agent never sees a
full phone number (masked).

Who may do what (``Authorization: Bearer <token>``; ``/api/health`` is open):
the shared ``http.token`` may do everything (integrations, the PBX's inbound
signal); a user's token (``dialer user token NAME``, the ``identity`` store) acts
with the user's role as ``identity.access.decide`` rules: an ``agent`` only on
``/api/agents/<own agent id>``, a ``supervisor`` or ``admin`` on everything,
``compliance`` may read the campaigns and their figures. With neither a shared token
nor any user the API is open (development only; ``dialer serve`` warns). Paths under
``/api/recordings/`` are the recordings app's own and are left to its guard.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime, tzinfo
from enum import StrEnum
from functools import partial
from typing import Any, Protocol

from aiohttp import web

from compliance.campaigns import (
    Campaign,
    CampaignError,
    CampaignState,
    UnknownCampaign,
    parse_campaign_spec,
    spec_to_dict,
)
from compliance.numbers import mask
from dialer.adapters import campaign_plan
from dialer.agent_pool import Agent, AgentRefusal, AgentView
from dialer.ari.errors import AriError
from dialer.attempt_model import AttemptRecord
from dialer.dispositions import DispositionPlan, DispositionRejected, DispositionRequest
from dialer.legs import AgentNotInDirectory
from dialer.ports import CampaignPlan, LiveFigures
from identity.access import Action, decide
from identity.model import Principal, Role


class DialerControl(Protocol):
    """What the API asks of the campaign runner (``dialer.runner.Runner``)."""

    @property
    def halted(self) -> str | None: ...

    def has_campaign(self, name: str) -> bool: ...

    def agent_view(self, agent_id: str) -> tuple[str, AgentView] | None: ...

    async def agent_login(self, agent_id: str, campaign: str) -> Agent: ...

    async def agent_ready(self, agent_id: str) -> AgentRefusal | None: ...

    async def agent_pause(self, agent_id: str) -> AgentRefusal | None: ...

    async def agent_logout(self, agent_id: str) -> AgentRefusal | None: ...

    async def agent_hangup(self, agent_id: str) -> AgentRefusal | None: ...

    async def disposition(
        self, agent_id: str, req: DispositionRequest, attempt_id: str | None = None
    ) -> DispositionPlan | DispositionRejected: ...

    def add_campaign(self, plan_: CampaignPlan) -> object: ...

    def start_dialling(self, campaign: str) -> None: ...

    def pause_dialling(self, campaign: str) -> None: ...

    def set_inbound_waiting(self, count: int) -> None: ...

    def figures(self, campaign: str) -> LiveFigures: ...


class AttemptQueries(Protocol):
    async def get(self, attempt_id: str) -> AttemptRecord | None: ...

    async def funnel(self, campaign: str | None = None) -> Any: ...


class CampaignRegistry(Protocol):
    async def list_all(self) -> list[Campaign]: ...

    async def create(self, spec: Any) -> Campaign: ...

    async def set_state(self, name: str, state: CampaignState) -> Campaign: ...


class _Stores(Protocol):
    @property
    def campaigns(self) -> CampaignRegistry: ...


class _Zone(Protocol):
    @property
    def tz(self) -> tzinfo: ...


class _Events(Protocol):
    @property
    def connected(self) -> asyncio.Event: ...


class ApiBackend(Protocol):
    """What the HTTP API needs of the running dialer (``dialer.app.ApiBackend`` is one)."""

    @property
    def runner(self) -> DialerControl: ...

    @property
    def attempts(self) -> AttemptQueries: ...

    @property
    def stores(self) -> _Stores: ...

    @property
    def policy(self) -> _Zone: ...

    @property
    def events(self) -> _Events: ...


class Authenticator(Protocol):
    """The user behind a bearer token (``identity.store.IdentityStore``)."""

    async def authenticate(self, token: str) -> Principal | None: ...

    async def has_users(self) -> bool: ...


class Access(StrEnum):
    """What a route asks of the caller."""

    OPEN = "open"
    AGENT = "agent"  # the agent named in the path, or a supervisor
    READ = "read"  # campaigns and figures
    CONTROL = "control"  # campaign control, inbound signal


@dataclass(frozen=True, slots=True)
class ApiGuard:
    """The shared token and/or the user store; neither (or a store with no user yet)
    means an open API."""

    token: str = ""
    users: Authenticator | None = None

    async def is_open(self) -> bool:
        if self.token:
            return False
        return self.users is None or not await self.users.has_users()


SHARED_TOKEN_USER = Principal("http.token", Role.ADMIN)
_ACTIONS: dict[Access, Action] = {
    Access.AGENT: Action.AGENT_ACT,
    Access.READ: Action.CAMPAIGNS_READ,
    Access.CONTROL: Action.CAMPAIGNS_CONTROL,
}
RECORDINGS_PREFIX = "/api/recordings/"

STACK_KEY: web.AppKey[ApiBackend] = web.AppKey("dialer_stack")
GUARD_KEY: web.AppKey[ApiGuard] = web.AppKey("dialer_guard", ApiGuard)
ACCESS_KEY: web.AppKey[dict[str, Access]] = web.AppKey("dialer_access", dict)
#: The caller of a guarded route, for handlers that must name who acted (audit).
PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("dialer_principal", Principal)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
logger = logging.getLogger(__name__)
# Chinese (campaign names, errors) travels as text, not \u escapes.
_dumps = partial(json.dumps, ensure_ascii=False)
_json_response = partial(web.json_response, dumps=_dumps)


def _error(status: int, message: str, field: str = "") -> web.Response:
    body: dict[str, str] = {"error": message}
    if field:
        body["field"] = field
    return _json_response(body, status=status)


def allowed(user: Principal, access: Access, agent_id: str) -> bool:
    """May ``user`` use a route asking ``access`` (about agent ``agent_id``)?
    ``identity.access.decide`` answers."""
    if access is Access.OPEN:
        return True
    owner = agent_id if access is Access.AGENT else None
    return decide(user, _ACTIONS[access], owner).allowed


async def _caller(guard: ApiGuard, header: str) -> Principal | None:
    scheme, _, given = header.partition(" ")
    if scheme != "Bearer" or not given:
        return None
    if guard.token and hmac.compare_digest(given.encode(), guard.token.encode()):
        return SHARED_TOKEN_USER
    if guard.users is not None:
        return await guard.users.authenticate(given)
    return None


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    guard = request.app[GUARD_KEY]
    # The pages (web/) have their own guard: session cookie, CSRF, identity.access.
    if not request.path.startswith("/api/") or request.path.startswith(RECORDINGS_PREFIX):
        return await handler(request)
    if await guard.is_open():
        return await handler(request)
    route = request.match_info.route.resource
    key = f"{request.method} {route.canonical}" if route is not None else ""
    access = request.app[ACCESS_KEY].get(key, Access.CONTROL) if route is not None else None
    if access is None or access is Access.OPEN:
        return await handler(request)  # unknown paths get aiohttp's 404; health is open
    user = await _caller(guard, request.headers.get("Authorization", ""))
    if user is None:
        return _error(401, "missing or wrong bearer token")
    if not allowed(user, access, request.match_info.get("agent", "")):
        return _error(403, f"{user.role.value} {user.name!r} may not use {request.path}")
    if request.method != "GET":
        logger.info("api %s %s by %s (%s)", request.method, request.path, user.name, user.role)
    request[PRINCIPAL_KEY] = user
    return await handler(request)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(
            text=_dumps({"error": f"body is not valid JSON: {exc}"}),
            content_type="application/json",
        ) from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=_dumps({"error": "body must be a JSON object"}),
            content_type="application/json",
        )
    return data


def _stack(request: web.Request) -> ApiBackend:
    return request.app[STACK_KEY]


# ---------------------------------------------------------------- agents


async def agent_login(request: web.Request) -> web.Response:
    stack = _stack(request)
    agent_id = request.match_info["agent"]
    body = await _body(request)
    campaign = body.get("campaign")
    if not isinstance(campaign, str) or not campaign:
        return _error(400, "campaign is required", "campaign")
    if not stack.runner.has_campaign(campaign):
        return _error(
            404, f"campaign {campaign!r} is not loaded (create and start it first)", "campaign"
        )
    if "endpoint" in body:
        # No side door to a phone line: the softphone is the agent directory's, never
        # the request's (an agent's token once dialled any number it was given here).
        return _error(
            400,
            "endpoint is not accepted: the agent's phone is the one in the agent directory "
            "(an administrator sets it with 'dialer agent add')",
            "endpoint",
        )
    try:
        agent = await stack.runner.agent_login(agent_id, campaign)
    except AgentNotInDirectory as exc:
        return _error(403, str(exc), "agent")
    except ValueError as exc:
        return _error(409, str(exc), "agent")
    except AriError as exc:
        return _error(502, f"cannot call the agent's phone: {exc}", "endpoint")
    return _json_response(
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
        return _json_response({"agent": agent_id, "done": name})

    return handler


async def agent_get(request: web.Request) -> web.Response:
    stack = _stack(request)
    agent_id = request.match_info["agent"]
    found = stack.runner.agent_view(agent_id)
    if found is None:
        return _error(404, f"unknown agent {agent_id}", "agent")
    campaign, view = found
    data = asdict(view)
    data["status"] = view.status.value
    data["campaign"] = campaign
    current = view.attempt_id or view.last_attempt_id
    if current is not None:
        rec = await stack.attempts.get(current)
        if rec is not None:
            data["customer"] = mask(rec.number)  # an agent never sees the full number
    return _json_response(data)


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
    return _json_response(
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
    return _json_response(out)


async def campaign_create(request: web.Request) -> web.Response:
    stack = _stack(request)
    body = await _body(request)
    try:
        spec = parse_campaign_spec(body)
        campaign = await stack.stores.campaigns.create(spec)
    except CampaignError as exc:
        return _error(400, str(exc), exc.key)
    stack.runner.add_campaign(campaign_plan(campaign, stack.policy.tz))
    return _json_response({"name": campaign.name, "state": campaign.state.value}, status=201)


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
        return _json_response({"name": name, "state": campaign.state.value})

    return handler


async def campaign_figures(request: web.Request) -> web.Response:
    stack = _stack(request)
    name = request.match_info["name"]
    if not stack.runner.has_campaign(name):
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
    return _json_response(live)


async def inbound(request: web.Request) -> web.Response:
    body = await _body(request)
    waiting = body.get("waiting")
    if not isinstance(waiting, int) or isinstance(waiting, bool) or waiting < 0:
        return _error(400, "waiting must be an integer >= 0", "waiting")
    _stack(request).runner.set_inbound_waiting(waiting)
    return _json_response({"waiting": waiting})


async def health(request: web.Request) -> web.Response:
    stack = _stack(request)
    ok = stack.runner.halted is None and stack.events.connected.is_set()
    return _json_response(
        {"ok": ok, "halted": stack.runner.halted, "ari_connected": stack.events.connected.is_set()},
        status=200 if ok else 503,
    )


def make_api_app(
    stack: ApiBackend, *, token: str = "", users: Authenticator | None = None
) -> web.Application:
    """The dialer API; ``token`` (shared, full rights) and ``users`` guard it (module doc)."""
    app = web.Application(middlewares=[_auth])
    app[STACK_KEY] = stack
    app[GUARD_KEY] = ApiGuard(token, users)
    access: dict[str, Access] = {}
    r = app.router

    def add(method: str, path: str, handler: Handler, needs: Access) -> None:
        r.add_route(method, path, handler)
        access[f"{method} {path}"] = needs

    add("POST", "/api/agents/{agent}/login", agent_login, Access.AGENT)
    for name in ("ready", "pause", "logout", "hangup"):
        add("POST", f"/api/agents/{{agent}}/{name}", _agent_action(name), Access.AGENT)
    add("POST", "/api/agents/{agent}/disposition", agent_disposition, Access.AGENT)
    add("GET", "/api/agents/{agent}", agent_get, Access.AGENT)
    add("GET", "/api/campaigns", campaign_list, Access.READ)
    add("POST", "/api/campaigns", campaign_create, Access.CONTROL)
    add(
        "POST",
        "/api/campaigns/{name}/start",
        _campaign_state(CampaignState.RUNNING),
        Access.CONTROL,
    )
    add(
        "POST", "/api/campaigns/{name}/pause", _campaign_state(CampaignState.PAUSED), Access.CONTROL
    )
    add(
        "POST", "/api/campaigns/{name}/stop", _campaign_state(CampaignState.STOPPED), Access.CONTROL
    )
    add("GET", "/api/campaigns/{name}/figures", campaign_figures, Access.READ)
    add("POST", "/api/inbound", inbound, Access.CONTROL)
    add("GET", "/api/health", health, Access.OPEN)
    app[ACCESS_KEY] = access
    return app
