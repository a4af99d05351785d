"""The wallboard (``/floor/``) and campaign control from it.

``FloorFeed`` polls ``dialer.floor.FloorWatcher`` four times a second while the web app
runs and publishes the tiles that changed on the topic ``floor`` (the hub keeps only
the newest per agent and campaign for each page); the abandon figures come from the
report rollup every 30 s. A page's socket starts with every tile (``live``), so a
reload rebuilds the board. Campaign start/pause/stop are CSRF-protected POSTs for
supervisors (``CAMPAIGNS_CONTROL``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from aiohttp import web

from compliance.campaigns import CampaignError, CampaignState, UnknownCampaign
from dialer.adapters import campaign_plan
from dialer.ari.errors import AriError
from dialer.floor import HOLD_BACK_TEXT, AgentTile, CampaignTile, FloorWatcher, abandon_figures
from dialer.legs import OriginateRefused
from dialer.monitor import MonitorMode, MonitorRefusal
from identity.access import Action
from identity.model import ActiveSession
from reports.store import ReportStore
from web.auth import render, requires, session_of
from web.context import CTX_KEY, LiveFeed, WebContext
from web.floor.reports_views import install_reports
from web.hub import Hub, Message

logger = logging.getLogger(__name__)
TOPIC = "floor"
POLL = 0.25
FIGURES_EVERY = 30.0


@dataclass(frozen=True, slots=True)
class AgentMsg:
    TYPE: ClassVar[str] = "floor_agent"
    agent_id: str
    campaign: str
    state: str
    seconds: float  # in this state when sent
    calls: int

    @property
    def key(self) -> str:
        return self.agent_id


@dataclass(frozen=True, slots=True)
class CampaignMsg:
    TYPE: ClassVar[str] = "floor_campaign"
    campaign: str
    dialling: bool
    logged_in: int
    ready: int
    talking: int
    wrapping: int
    paused: int
    lines: int
    waiting: int
    occupancy: float
    lines_per_agent: float
    abandon_today: float
    abandon_30d: float
    target: float
    hold_back: str
    hold_back_zh: str
    hold_back_en: str
    inbound_waiting: int

    @property
    def key(self) -> str:
        return self.campaign


class FloorFeed:
    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx
        stack = ctx.dialer()
        self.watcher = FloorWatcher(stack.runner)
        self.store = ReportStore(stack.stores.engine, stack.policy.tz)

    def _agent(self, t: AgentTile, now: float) -> AgentMsg:
        return AgentMsg(t.agent_id, t.campaign, t.state, round(now - t.since, 1), t.calls)

    def _campaign(self, t: CampaignTile) -> CampaignMsg:
        zh, en = HOLD_BACK_TEXT[t.hold_back]
        return CampaignMsg(
            t.campaign, t.dialling, t.logged_in, t.ready, t.talking, t.wrapping, t.paused,
            t.lines, t.waiting, t.occupancy, t.lines_per_agent, t.abandon_today, t.abandon_30d,
            t.target, t.hold_back.value, zh, en, self.watcher.inbound_waiting(),
        )  # fmt: skip

    def snapshot(self) -> list[Message]:
        now = self.watcher.runner.clock.now()
        return [self._agent(t, now) for t in self.watcher.agents()] + [
            self._campaign(t) for t in self.watcher.campaigns()
        ]

    def step(self, hub: Hub) -> None:
        agents, camps = self.watcher.poll()
        now = self.watcher.runner.clock.now()
        hub.publish_many(TOPIC, [self._agent(t, now) for t in agents])
        hub.publish_many(TOPIC, [self._campaign(t) for t in camps])

    async def run(self, stop: asyncio.Event) -> None:
        next_figures = 0.0
        while not stop.is_set():
            if time.monotonic() >= next_figures:
                next_figures = time.monotonic() + FIGURES_EVERY
                today = datetime.now(self.ctx.dialer().policy.tz).date()
                try:
                    await self.store.create_schema()
                    self.watcher.abandon = await abandon_figures(self.store, today)
                except OSError as exc:
                    logger.warning("wallboard: abandon figures not read: %s", exc)
            self.step(self.ctx.hub)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL):
                    await stop.wait()


FEED_KEY: web.AppKey[FloorFeed] = web.AppKey("floor_feed", FloorFeed)


async def _feed_running(app: web.Application) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(app[FEED_KEY].run(stop), name="floor-feed")
    yield
    stop.set()
    await task


@requires(Action.CAMPAIGNS_READ)
async def wallboard(request: web.Request) -> web.StreamResponse:
    feed = request.app[FEED_KEY]
    feed.step(request.app[CTX_KEY].hub)  # the page starts from the current floor
    return await render(
        request,
        "floor/wallboard.html",
        {
            "campaigns": feed.watcher.campaigns(),
            "agents": feed.watcher.agents(),
            "monitoring": request.app[CTX_KEY].dialer().monitor is not None,
        },
    )


async def live(request: web.Request, session: ActiveSession, ctx: WebContext) -> LiveFeed:
    feed = request.app[FEED_KEY]
    feed.step(ctx.hub)
    return LiveFeed((TOPIC,), feed.snapshot())


_TARGETS = {
    "start": CampaignState.RUNNING,
    "pause": CampaignState.PAUSED,
    "stop": CampaignState.STOPPED,
}


@requires(Action.CAMPAIGNS_CONTROL)
async def campaign_action(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    target = _TARGETS.get(request.match_info["action"])
    if target is None:
        raise web.HTTPNotFound()
    stack = request.app[CTX_KEY].dialer()
    try:
        campaign = await stack.stores.campaigns.set_state(name, target)
    except UnknownCampaign as exc:
        return web.json_response({"error": str(exc)}, status=404)
    except CampaignError as exc:
        return web.json_response({"error": str(exc)}, status=409)
    stack.runner.add_campaign(campaign_plan(campaign, stack.policy.tz))
    if target is CampaignState.RUNNING:
        if stack.runner.halted is not None:
            return web.json_response({"error": stack.runner.halted}, status=503)
        stack.runner.start_dialling(name)
    else:
        stack.runner.pause_dialling(name)
    request.app[FEED_KEY].step(request.app[CTX_KEY].hub)
    return web.json_response({"name": name, "state": campaign.state.value})


def install(app: web.Application, ctx: WebContext) -> None:
    app[FEED_KEY] = FloorFeed(ctx)
    app.cleanup_ctx.append(_feed_running)
    app.router.add_get("/floor/", wallboard)
    app.router.add_post("/floor/campaigns/{name}/{action}", campaign_action)
    install_reports(app)
    install_monitor(app)


# ---------------------------------------------------------------- listen, whisper, barge


@requires(Action.CAMPAIGNS_CONTROL)
async def monitor_start(request: web.Request) -> web.StreamResponse:
    stack = request.app[CTX_KEY].dialer()
    session = session_of(request)
    if stack.monitor is None or session is None:
        return web.json_response(
            {"error": "listening in needs the audit log (enable the recordings index)"}, status=503
        )
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": "body is not JSON"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": "body must be a JSON object"}, status=400)
    fields = {k: str(body.get(k, "")).strip() for k in ("agent", "mode", "phone", "reason")}
    for name, value in fields.items():
        if not value:
            return web.json_response({"error": f"{name}: required", "field": name}, status=400)
    try:
        mode = MonitorMode(fields["mode"])
    except ValueError:
        return web.json_response({"error": "mode: listen, whisper or barge"}, status=400)
    try:
        result = await stack.monitor.start(
            supervisor=session.principal.name,
            role=session.principal.role.value,
            phone=fields["phone"],
            agent_id=fields["agent"],
            mode=mode,
            reason=fields["reason"],
        )
    except (AriError, OriginateRefused) as exc:
        return web.json_response({"error": f"not connected: {exc}"}, status=503)
    if isinstance(result, MonitorRefusal):
        return web.json_response({"error": result.value, "code": result.value}, status=409)
    return web.json_response({"id": result.id, "agent": result.agent_id, "mode": mode.value})


@requires(Action.CAMPAIGNS_CONTROL)
async def monitor_stop(request: web.Request) -> web.StreamResponse:
    stack = request.app[CTX_KEY].dialer()
    if stack.monitor is None or not await stack.monitor.stop(request.match_info["id"]):
        return web.json_response({"error": "no such session"}, status=404)
    return web.json_response({"stopped": request.match_info["id"]})


def install_monitor(app: web.Application) -> None:
    app.router.add_post("/floor/monitor", monitor_start)
    app.router.add_post("/floor/monitor/{id}/stop", monitor_stop)
