"""The agent's screen (``/agent/``) and the actions it posts (JSON, CSRF-protected).

An agent acts only as its own agent id (``identity.access``: ``AGENT_ACT`` with
scope "own"); the page never receives a customer list, an export or a full
number. Supervisors define the pause codes (``/agent/pause-codes``).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from compliance.model import ReasonCode
from dialer.agent_pool import AgentRefusal, AgentStatus
from dialer.ari.errors import AriError
from dialer.callbacks import CallbackCustomer, check, earliest
from dialer.desk_records import Answer, Callback, DeskInputError, DeskRecords
from dialer.dispositions import (
    CALLBACK_HORIZON_MONTHS,
    DispositionKind,
    DispositionRejected,
    DispositionRequest,
    add_months,
)
from dialer.runner import AgentDial
from identity.access import Action
from identity.model import ActiveSession
from web.agent.screens import AgentScreens, topic
from web.agent.script import ScriptError, parse_script
from web.auth import form_of, redirect, render, requires, session_of
from web.context import CTX_KEY, LiveFeed, WebContext
from web.i18n import N_

SCREENS_KEY: web.AppKey[AgentScreens] = web.AppKey("agent_screens", AgentScreens)

# The art. 23 checklist: every item read out, and the customer's clear yes.
CHECKLIST: tuple[tuple[str, str], ...] = (
    ("product", N_("Product name read out")),
    ("price", N_("Price read out")),
    ("payment", N_("Payment method read out")),
    ("yes", N_("The customer clearly said yes")),
)
# A me-only callback waits this long for its agent before anyone may take it.
DEFAULT_GRACE = timedelta(minutes=30)
REASON_TEXT: dict[str, str] = {
    ReasonCode.OUTSIDE_CALLING_HOURS.value: N_("outside the calling hours"),
    ReasonCode.MONTHLY_CAP.value: N_("the customer's calls this month are used up"),
    ReasonCode.QUIET_PERIOD.value: N_("the customer is in the quiet months after a full month"),
    ReasonCode.YEARLY_CAP.value: N_("the customer's calls this year are used up"),
    ReasonCode.PRODUCT_INTERVAL.value: N_("this product was offered within the last 30 days"),
    ReasonCode.PRODUCT_REFUSED.value: N_("the customer refused this product 3 times"),
    ReasonCode.BLACKLISTED.value: N_("the number is on the do-not-call list"),
    ReasonCode.DATA_RECALLED.value: N_("the customer's data has been recalled"),
}


def _agent_id(request: web.Request) -> str:
    session = session_of(request)
    return session.principal.agent_id if session is not None else ""


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _ctx(request: web.Request) -> WebContext:
    return request.app[CTX_KEY]


def _desk(request: web.Request) -> DeskRecords:
    desk = _ctx(request).dialer().desk
    if desk is None:
        raise RuntimeError("the dialer stack has no desk records")
    return desk


def _refusal(request: web.Request, refusal: AgentRefusal) -> web.Response:
    i18n = _ctx(request).i18n
    texts = {
        AgentRefusal.UNKNOWN_AGENT: i18n.gettext("You are not logged in to a campaign."),
        AgentRefusal.NOT_LOGGED_IN: i18n.gettext("You are not logged in to a campaign."),
        AgentRefusal.ON_A_CALL: i18n.gettext("Not while you are on a call."),
        AgentRefusal.CHANNEL_NOT_UP: i18n.gettext("Your phone is not connected yet."),
        AgentRefusal.NOT_IN_WRAPUP: i18n.gettext("There is no call to wrap up."),
    }
    return _json({"error": texts[refusal], "code": refusal.value}, status=409)


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


# ---------------------------------------------------------------- the screen


@requires(Action.AGENT_ACT, owner=_agent_id)
async def screen(request: web.Request) -> web.StreamResponse:
    screens = request.app[SCREENS_KEY]
    agent_id = _agent_id(request)
    if not agent_id:
        return await render(request, "agent/no_agent.html", {})
    i18n = _ctx(request).i18n
    return await render(
        request,
        "agent/screen.html",
        {
            "agent_id": agent_id,
            "state": screens.state(agent_id),
            "campaigns": screens.campaigns(),
            "pause_codes": await _desk(request).pause_codes(),
            "checklist": [(key, i18n.gettext(text)) for key, text in CHECKLIST],
        },
    )


async def live(request: web.Request, session: ActiveSession, ctx: WebContext) -> LiveFeed:
    agent_id = session.principal.agent_id
    if not agent_id:
        raise web.HTTPForbidden(text="your user has no agent id")
    screens = request.app[SCREENS_KEY]
    return LiveFeed((topic(agent_id),), await screens.snapshot(agent_id))


# ---------------------------------------------------------------- state


@requires(Action.AGENT_ACT, owner=_agent_id)
async def login(request: web.Request) -> web.StreamResponse:
    ctx = _ctx(request)
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
        text = ctx.i18n.gettext("Your phone could not be called: {error}").format(error=exc)
        return _json({"error": text}, status=502)
    screens.agent_changed(agent_id)
    return _json({"done": "login", "state": screens.state(agent_id).status})


def _action(name: str) -> Any:
    @requires(Action.AGENT_ACT, owner=_agent_id)
    async def handler(request: web.Request) -> web.StreamResponse:
        screens = request.app[SCREENS_KEY]
        agent_id = _agent_id(request)
        runner = _ctx(request).dialer().runner
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
    ctx = _ctx(request)
    screens = request.app[SCREENS_KEY]
    agent_id = _agent_id(request)
    body = await _body(request)
    code = await _desk(request).pause_code(str(body.get("code", "")))
    if code is None or not code.active:
        return _json(
            {"error": ctx.i18n.gettext("Choose a pause reason."), "field": "code"}, status=400
        )
    screens.set_pause_code(agent_id, code.code, code.label)
    refusal = await ctx.dialer().runner.agent_pause(agent_id)
    if refusal is not None:
        return _refusal(request, refusal)
    screens.agent_changed(agent_id)
    return _json({"done": "pause", "state": screens.state(agent_id).status})


# ---------------------------------------------------------------- dispositions


async def _until_wrapup(request: web.Request, agent_id: str) -> str:
    """The attempt to disposition: a call still going is ended first."""
    screens = request.app[SCREENS_KEY]
    runner = _ctx(request).dialer().runner
    seat = screens.seat(agent_id)
    if seat.agent is not None and seat.agent.status is AgentStatus.TALKING:
        await runner.agent_hangup(agent_id)
        async with asyncio.timeout(10):
            await screens.wait_until(agent_id, lambda a: a.status is not AgentStatus.TALKING)
    return screens.on_screen(screens.seat(agent_id).agent)


async def _customer(request: web.Request, attempt_id: str) -> CallbackCustomer | None:
    stack = _ctx(request).dialer()
    rec = await stack.attempts.get(attempt_id)
    if rec is None:
        return None
    segment, assigned, dialled = None, None, None
    if rec.lead_id.isdigit():
        lead = await stack.stores.leads.get(int(rec.lead_id))
        segment, assigned, dialled = lead.segment, lead.assigned_at, lead.dialled_number
    run = stack.runner.campaigns.get(rec.campaign)
    caller_id = run.plan.caller_id if run is not None else ""
    return CallbackCustomer(
        rec.number, rec.campaign, rec.product, caller_id, segment, assigned, dialled
    )


def _reasons(request: web.Request, reasons: Any) -> list[str]:
    i18n = _ctx(request).i18n
    out = []
    for r in reasons:
        text = REASON_TEXT.get(r.code.value)
        line = i18n.gettext(text) if text else r.message
        holiday = re.search(r"public holiday \((.+?)\)", r.message)
        if holiday:
            line = i18n.gettext("a public holiday ({name})").format(name=holiday.group(1))
        if r.retry_at is not None:
            line += " · " + i18n.gettext("allowed again from {time}").format(
                time=i18n.when(r.retry_at)
            )
        out.append(line)
    return out


@requires(Action.AGENT_ACT, owner=_agent_id)
async def callback_proposal(request: web.Request) -> web.StreamResponse:
    """The earliest lawful callback time for the customer on screen (the form's default)."""
    ctx = _ctx(request)
    screens = request.app[SCREENS_KEY]
    agent_id = _agent_id(request)
    attempt = screens.on_screen(screens.seat(agent_id).agent)
    who = await _customer(request, attempt) if attempt else None
    if who is None:
        return _json({"error": ctx.i18n.gettext("There is no call to wrap up.")}, status=409)
    stack = ctx.dialer()
    at = await earliest(stack.stores.gate, who, stack.runner.clock.wall())
    if at is None:
        return _json({"proposal": None, "text": ctx.i18n.gettext("No lawful time in 3 months.")})
    return _json({"proposal": ctx.i18n.iso_local(at), "text": ctx.i18n.when(at)})


async def _answers(request: web.Request, body: dict[str, Any], attempt: str) -> list[Answer]:
    """The questionnaire's answers as given, with the questions of the campaign's script."""
    given = body.get("answers") or {}
    if not isinstance(given, dict):
        return []
    stack = _ctx(request).dialer()
    rec = await stack.attempts.get(attempt)
    questions = {}
    if rec is not None:
        campaign = await stack.stores.campaigns.find(rec.campaign)
        if campaign is not None:
            try:
                questions = {q.id: q.text for q in parse_script(campaign.spec.script).questionnaire}
            except ScriptError:
                questions = {}
    return [
        Answer("questionnaire", qid, questions[qid], str(value).strip())
        for qid, value in given.items()
        if qid in questions and str(value).strip()
    ]


@requires(Action.AGENT_ACT, owner=_agent_id)
async def disposition(request: web.Request) -> web.StreamResponse:  # noqa: C901
    ctx = _ctx(request)
    i18n = ctx.i18n
    stack = ctx.dialer()
    agent_id = _agent_id(request)
    body = await _body(request)
    kind = str(body.get("kind", ""))
    if kind not in {k.value for k in DispositionKind}:
        return _json({"error": i18n.gettext("Choose a disposition."), "field": "kind"}, 400)
    product = body.get("product") or None
    if product is not None and not isinstance(product, str):
        return _json({"error": "product must be text", "field": "product"}, 400)
    checklist = body.get("checklist") or {}
    confirmed = False
    if kind == DispositionKind.ORDER:
        missing = [
            i18n.gettext(text)
            for key, text in CHECKLIST
            if not (isinstance(checklist, dict) and checklist.get(key) is True)
        ]
        if missing:
            return _json(
                {
                    "error": i18n.gettext(
                        "The order cannot be saved until it is confirmed (art. 23): {items}"
                    ).format(items="、".join(missing)),
                    "field": "checklist",
                },
                400,
            )
        confirmed = True
    attempt = await _until_wrapup(request, agent_id)
    if not attempt:
        return _json({"error": i18n.gettext("There is no call to wrap up."), "field": "kind"}, 409)
    who = await _customer(request, attempt)
    now = stack.runner.clock.wall()
    callback_at: datetime | None = None
    scope = str(body.get("callback_for", "me"))
    if kind == DispositionKind.NO_DECISION and body.get("follow_up") and who is not None:
        # A hesitating customer is cared for again within 3 months (art. 27, 34).
        callback_at = await earliest(stack.stores.gate, who, now, within=add_months(now, 3))
        if callback_at is not None:
            kind, scope = DispositionKind.CALLBACK.value, "anyone"
    elif kind == DispositionKind.CALLBACK:
        try:
            callback_at = i18n.parse_local(str(body.get("callback_at", "")))
        except ValueError:
            return _json(
                {"error": i18n.gettext("Give the callback time."), "field": "callback_at"}, 400
            )
        if who is None:
            return _json({"error": i18n.gettext("There is no call to wrap up.")}, 409)
        verdict = await check(stack.stores.gate, who, callback_at, now)
        if not verdict.allowed:
            reasons = _reasons(request, verdict.reasons) or [i18n.gettext("the time has passed")]
            return _json(
                {
                    "error": i18n.gettext("This callback time is not allowed: {reasons}").format(
                        reasons="；".join(reasons)
                    ),
                    "field": "callback_at",
                    "reasons": reasons,
                    "proposal": i18n.iso_local(verdict.proposal) if verdict.proposal else None,
                    "proposal_text": i18n.when(verdict.proposal) if verdict.proposal else "",
                },
                400,
            )
        if callback_at > add_months(now, CALLBACK_HORIZON_MONTHS):
            return _json({"error": i18n.gettext("A callback must be within 3 months.")}, 400)
    answers = await _answers(request, body, attempt)
    note = str(body.get("note", ""))[:2000]
    owner = agent_id if kind == DispositionKind.CALLBACK and scope == "me" else ""
    # A "me only" callback waits for its agent; the lead becomes everyone's at the grace end.
    lead_due = callback_at + DEFAULT_GRACE if callback_at is not None and owner else callback_at
    result = await stack.runner.disposition(
        agent_id,
        DispositionRequest(kind, product, confirmed, lead_due, note),
        attempt,
    )
    if isinstance(result, DispositionRejected):
        return _json({"error": result.message, "field": result.field}, 400)
    desk = _desk(request)
    if confirmed:
        answers += [Answer("confirmation", key, text, "yes") for key, text in CHECKLIST]
    await desk.record_answers(attempt, agent_id, answers, now)
    if callback_at is not None and who is not None:
        rec = await stack.attempts.get(attempt)
        await desk.add_callback(
            Callback(
                0,
                rec.lead_id if rec is not None else "",
                who.campaign,
                attempt,
                owner,
                who.product,
                callback_at,
                callback_at + (DEFAULT_GRACE if owner else timedelta(0)),
            ),
            now,
        )
    request.app[SCREENS_KEY].agent_changed(agent_id)
    if callback_at is not None:
        await request.app[SCREENS_KEY].push_callbacks(agent_id)
    return _json(
        {
            "done": result.kind.value,
            "callback_at": i18n.when(callback_at) if callback_at else None,
            "blacklisted": result.add_to_dnc,
        }
    )


# ---------------------------------------------------------------- the agent's own calls


def _dial_reply(request: web.Request, dial: AgentDial) -> web.Response:
    i18n = _ctx(request).i18n
    if dial.attempt_id:
        return _json({"done": "dial", "attempt": dial.attempt_id})
    if dial.refusal is not None:
        return _refusal(request, dial.refusal)
    if dial.decision is not None:
        reasons = _reasons(request, dial.decision.reasons) or [
            i18n.gettext("the compliance gate could not answer")
        ]
        text = i18n.gettext("The call is not allowed: {reasons}").format(reasons="；".join(reasons))
        return _json({"error": text, "reasons": reasons}, 409)
    return _json(
        {"error": i18n.gettext("The call could not be placed: {why}").format(why=dial.unavailable)},
        409,
    )


@requires(Action.AGENT_ACT, owner=_agent_id)
async def manual_dial(request: web.Request) -> web.StreamResponse:
    """Dial a lead of the agent's campaign by its number, through the same gate."""
    ctx = _ctx(request)
    stack = ctx.dialer()
    agent_id = _agent_id(request)
    body = await _body(request)
    campaign = request.app[SCREENS_KEY].seat(agent_id).campaign
    number = str(body.get("number", "")).strip()
    try:
        lead = await stack.stores.leads.find(campaign, number) if number and campaign else None
    except ValueError:
        lead = None
    if lead is None:
        return _json(
            {
                "error": ctx.i18n.gettext("No lead of your campaign has this number."),
                "field": "number",
            },
            404,
        )
    dial = await stack.runner.dial_for_agent(agent_id, str(lead.id))
    return _dial_reply(request, dial)


@requires(Action.AGENT_ACT, owner=_agent_id)
async def callback_dial(request: web.Request) -> web.StreamResponse:
    """Call back a customer who asked for this agent ("me only")."""
    ctx = _ctx(request)
    stack = ctx.dialer()
    agent_id = _agent_id(request)
    desk = _desk(request)
    raw = request.match_info["id"]
    cb = await desk.callback(int(raw)) if raw.isdigit() else None
    if cb is None or cb.owner != agent_id or cb.done_at is not None:
        return _json({"error": ctx.i18n.gettext("This callback is not yours to make.")}, 404)
    dial = await stack.runner.dial_for_agent(agent_id, cb.lead_id)
    if dial.attempt_id:
        await desk.callback_done(cb.id, dial.attempt_id, stack.runner.clock.wall())
        await request.app[SCREENS_KEY].push_callbacks(agent_id)
    return _dial_reply(request, dial)


def _preview(name: str) -> Any:
    @requires(Action.AGENT_ACT, owner=_agent_id)
    async def handler(request: web.Request) -> web.StreamResponse:
        runner = _ctx(request).dialer().runner
        screens = request.app[SCREENS_KEY]
        agent_id = _agent_id(request)
        reply: web.Response
        if name == "next":
            lead = await runner.preview_next(agent_id)
            reply = _json({"done": "next", "found": lead is not None})
        elif name == "skip":
            reply = _json({"done": "skip", "skipped": await runner.preview_skip(agent_id)})
        else:
            reply = _dial_reply(request, await runner.preview_dial(agent_id))
        screens.hub.publish(topic(agent_id), screens.preview(agent_id))
        return reply

    handler.__name__ = f"preview_{name}"
    return handler


# ---------------------------------------------------------------- pause codes (supervisors)


@requires(Action.CAMPAIGNS_CONTROL)
async def pause_codes_page(request: web.Request) -> web.StreamResponse:
    desk = _desk(request)
    return await render(
        request,
        "agent/pause_codes.html",
        {"codes": await desk.pause_codes(active_only=False), "error": ""},
    )


@requires(Action.CAMPAIGNS_CONTROL)
async def pause_codes_submit(request: web.Request) -> web.StreamResponse:
    desk = _desk(request)
    form = form_of(request)
    session = session_of(request)
    who = session.principal.name if session is not None else ""
    now = _ctx(request).dialer().runner.clock.wall()
    try:
        if form.get("retire"):
            await desk.retire_pause_code(form["retire"])
        else:
            await desk.define_pause_code(form.get("code", ""), form.get("label", ""), who, now)
    except DeskInputError as exc:
        return await render(
            request,
            "agent/pause_codes.html",
            {"codes": await desk.pause_codes(active_only=False), "error": str(exc)},
            400,
        )
    return redirect("/agent/pause-codes")


async def _screens_running(app: web.Application) -> AsyncIterator[None]:
    async for _ in app[SCREENS_KEY].running(app):
        yield


def install(app: web.Application, ctx: WebContext) -> None:
    app[SCREENS_KEY] = AgentScreens(ctx.dialer(), ctx.hub, ctx.i18n)
    app.cleanup_ctx.append(_screens_running)
    r = app.router
    r.add_get("/agent/", screen)
    r.add_post("/agent/login", login)
    r.add_post("/agent/pause", pause)
    for name in ("ready", "logout", "hangup"):
        r.add_post(f"/agent/{name}", _action(name))
    r.add_get("/agent/callback-proposal", callback_proposal)
    r.add_post("/agent/disposition", disposition)
    r.add_post("/agent/dial", manual_dial)
    r.add_post("/agent/callbacks/{id}/dial", callback_dial)
    for name in ("next", "dial", "skip"):
        r.add_post(f"/agent/preview/{name}", _preview(name))
    r.add_get("/agent/pause-codes", pause_codes_page)
    r.add_post("/agent/pause-codes", pause_codes_submit)
