"""Agents: login (the nailed-up softphone), ready, pause, logout, connecting calls,
dispositions and wrap-up.

Each logged-in agent's softphone (``ag-<agent>``) is called once and waits in
its own bridge (``agent-<agent>``); connecting a customer is one addChannel.
An answered person gets the longest-idle ready agent (``RequestAgent``) or
waits in the campaign's queue until one is ready or the connect limit ends
the wait. After the call the agent wraps up; the disposition closes the lead
(its writes queue behind the call's own end-of-call writes), and the wrap-up
limit closes a forgotten one as "no decision".
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from functools import partial
from typing import Any

from agi_scripts import variables as var
from dialer import fsm
from dialer.agent_pool import Agent, AgentRefusal, AgentStatus, bridge_id_for
from dialer.ari.errors import AriError
from dialer.ari.events import AriEvent, ChannelDestroyed, StasisEnd, StasisStart
from dialer.calls.book import CallBook, CampaignRun, LiveCall
from dialer.calls.control import CallFlow, CommandHandler
from dialer.calls.routing import EventHandler
from dialer.dispositions import (
    CallContext,
    DispositionPlan,
    DispositionRejected,
    DispositionRequest,
    LeadStatus,
    plan,
)
from dialer.ids import AGENT_PREFIX
from dialer.legs import AgentLeg, AgentNotInDirectory
from dialer.pacing import TalkResult
from dialer.ports import DialLead

logger = logging.getLogger(__name__)

DispositionResult = tuple[DispositionPlan | DispositionRejected, asyncio.Future[None] | None]


class AgentDesk:
    """The agents of every campaign: requests from the API, softphone events, wrap-ups.

    Every method runs in the dispatcher (the runner hands API requests in).
    """

    def __init__(self, book: CallBook, flow: CallFlow) -> None:
        self.book = book
        self.flow = flow

    def commands(self) -> dict[type[Any], CommandHandler]:
        return {
            fsm.RequestAgent: self._request_agent,
            fsm.CancelAgentRequest: self._cancel_agent_request,
            fsm.ReleaseAgent: self._release_agent,
            fsm.TalkEnded: self._talk_ended,
        }

    def subscriptions(self) -> dict[str, EventHandler]:
        """ARI event name -> handler, for the agents' softphone channels."""
        return {
            "StasisStart": self.on_agent_channel,
            "ChannelDestroyed": self.on_agent_channel,
            "StasisEnd": self.on_agent_channel,
        }

    # ------------------------------------------------------------ API requests
    async def login(self, agent_id: str, campaign: str) -> Agent:
        """Log ``agent_id`` in: its softphone is called at the agent directory's endpoint,
        the only one it has (``AgentNotInDirectory`` when an administrator has not added it).
        """
        book = self.book
        run = book.run_of(campaign)
        ep = await book.ports.directory.endpoint_of(agent_id)
        if ep is None:
            raise AgentNotInDirectory(
                f"agent {agent_id!r} is not in the agent directory: an administrator adds "
                f"it with 'dialer agent add {agent_id} --endpoint TECH/RESOURCE'"
            )
        other = book.agent_campaign.get(agent_id)
        if other is not None and other != campaign:
            prev = book.campaigns[other].pool.get(agent_id)
            if prev is not None and prev.status is not AgentStatus.OFFLINE:
                raise ValueError(f"agent {agent_id} is logged in to campaign {other!r}")
        book.agent_campaign[agent_id] = campaign
        agent = run.pool.login(agent_id, ep, book.clock.now())
        if agent.status is AgentStatus.CONNECTING:
            try:
                await self._call_softphone(agent, run)
            except AriError:
                run.pool.logout(agent_id, book.clock.now())  # nothing half-done stays
                raise
        return agent

    async def _call_softphone(self, agent: Agent, run: CampaignRun) -> None:
        """Create the agent's bridge and call the softphone once (it stays up: nailed up)."""
        await self.book.control.ensure_bridge(agent.bridge_id)
        await self.book.control.originate(
            leg=AgentLeg(agent.agent_id),
            channel_id=agent.channel_id,
            endpoint=agent.endpoint,
            caller_id=run.plan.caller_id,
            ring_timeout=30,
            app_args=("agent", agent.agent_id),
            variables={var.DIALER_AGENT: agent.agent_id},
        )

    async def ready(self, agent_id: str) -> AgentRefusal | None:
        run = self.book.agent_run(agent_id)
        if run is None:
            return AgentRefusal.UNKNOWN_AGENT
        res = run.pool.set_ready(agent_id, self.book.clock.now())
        await self.serve_waiting(run)
        self.book.wake.set()
        return res

    async def pause(self, agent_id: str) -> AgentRefusal | None:
        run = self.book.agent_run(agent_id)
        if run is None:
            return AgentRefusal.UNKNOWN_AGENT
        return run.pool.pause(agent_id, self.book.clock.now())

    async def logout(self, agent_id: str) -> AgentRefusal | None:
        run = self.book.agent_run(agent_id)
        if run is None:
            return AgentRefusal.UNKNOWN_AGENT
        res, channel = run.pool.logout(agent_id, self.book.clock.now())
        if channel is not None:
            await self._retire(agent_id, channel)
        return res

    async def _retire(self, agent_id: str, channel: str | None) -> None:
        """The agent is offline: hang up the softphone and destroy its bridge, so nothing
        of it stays in Asterisk (an empty bridge keeps the app's subscription alive)."""
        if channel is not None:
            await self.book.safe_hangup(channel)
        try:
            await self.book.control.destroy_bridge(bridge_id_for(agent_id))
        except AriError as exc:
            logger.warning("agent %s: bridge %s: %s", agent_id, bridge_id_for(agent_id), exc)

    async def hangup(self, agent_id: str) -> AgentRefusal | None:
        """The agent ends the current call (the softphone stays up in its bridge)."""
        run = self.book.agent_run(agent_id)
        agent = run.pool.get(agent_id) if run is not None else None
        if agent is None:
            return AgentRefusal.UNKNOWN_AGENT
        if agent.attempt_id is None:
            return AgentRefusal.NOT_LOGGED_IN if agent.status is AgentStatus.OFFLINE else None
        await self.flow.apply(agent.attempt_id, fsm.EndRequested("agent ended the call"))
        return None

    async def logout_all(self) -> None:
        """Hang up every agent softphone and remove the agent bridges."""
        book = self.book
        now = book.clock.now()
        for run in book.campaigns.values():
            for agent in run.pool.agents():
                if agent.status is AgentStatus.OFFLINE:
                    continue
                channel = agent.channel_id
                run.pool.channel_lost(channel, now)
                await book.safe_hangup(channel)
                try:
                    await book.control.destroy_bridge(agent.bridge_id)
                except AriError as exc:
                    logger.warning("agent %s: bridge %s: %s", agent.agent_id, agent.bridge_id, exc)

    # ------------------------------------------------------------ softphone events
    async def on_agent_channel(self, ev: AriEvent) -> None:
        channel_id = ev.channel_id
        if channel_id is None or not channel_id.startswith(AGENT_PREFIX):
            return
        agent_id = self._agent_of_channel(channel_id)
        if agent_id is None:
            return
        run = self.book.campaigns[self.book.agent_campaign[agent_id]]
        if isinstance(ev, StasisStart):
            await self._softphone_up(run, agent_id, channel_id)
        elif isinstance(ev, (ChannelDestroyed, StasisEnd)):
            agent = run.pool.agent_for_channel(channel_id)
            if agent is None or agent.channel_id != channel_id:
                return
            attempt = agent.attempt_id
            run.pool.channel_lost(channel_id, self.book.clock.now())
            logger.info("agent %s: softphone gone", agent_id)
            if attempt is not None:
                await self.flow.apply(attempt, fsm.AgentGone())
            if agent.status is AgentStatus.OFFLINE:
                await self._retire(agent_id, None)

    async def _softphone_up(self, run: CampaignRun, agent_id: str, channel_id: str) -> None:
        book = self.book
        agent = run.pool.get(agent_id)
        if agent is None or agent.channel_id != channel_id:
            await book.safe_hangup(channel_id)
            return
        try:
            await book.control.add_to_bridge(agent.bridge_id, channel_id)
        except AriError as exc:
            logger.error(
                "agent %s: cannot put the softphone in %s: %s", agent_id, agent.bridge_id, exc
            )
            await book.safe_hangup(channel_id)
            return
        run.pool.channel_answered(channel_id, book.clock.now())
        logger.info("agent %s: softphone up in %s", agent_id, agent.bridge_id)
        await self.serve_waiting(run)
        book.wake.set()

    def _agent_of_channel(self, channel_id: str) -> str | None:
        for run in self.book.campaigns.values():
            agent = run.pool.agent_for_channel(channel_id)
            if agent is not None:
                return agent.agent_id
        return None

    # ------------------------------------------------------------ connecting calls
    async def _request_agent(self, call: LiveCall, cmd: fsm.RequestAgent) -> None:
        run = self.book.campaigns[call.campaign]
        attempt = call.state.params.attempt_id
        if call.reserved_agent is not None:
            mine = run.pool.get(call.reserved_agent)
            if mine is not None and mine.attempt_id == attempt and mine.channel_up:
                await self._connect(call, mine)
                return
        agent = run.pool.assign(attempt, self.book.clock.now())
        if agent is None:
            run.waiting.append(attempt)
            return
        await self._connect(call, agent)

    async def _cancel_agent_request(self, call: LiveCall, cmd: fsm.CancelAgentRequest) -> None:
        run = self.book.campaigns[call.campaign]
        if call.state.params.attempt_id in run.waiting:
            run.waiting.remove(call.state.params.attempt_id)
        self.free_reserved(call)

    def free_reserved(self, call: LiveCall) -> None:
        """An agent's own call that never reached them (no answer, busy, hung up before the
        connect): the agent is free again."""
        if call.reserved_agent is None or call.connected_wall is not None:
            return
        run = self.book.campaigns[call.campaign]
        agent = run.pool.get(call.reserved_agent)
        attempt = call.state.params.attempt_id
        if agent is not None and agent.attempt_id == attempt:
            run.pool.unassign(agent.agent_id, attempt, self.book.clock.now())
            self.book.wake.set()

    async def _release_agent(self, call: LiveCall, cmd: fsm.ReleaseAgent) -> None:
        run = self.book.campaigns[call.campaign]
        run.pool.unassign(cmd.agent_id, call.state.params.attempt_id, self.book.clock.now())
        await self.serve_waiting(run)

    async def _talk_ended(self, call: LiveCall, cmd: fsm.TalkEnded) -> None:
        run = self.book.campaigns[call.campaign]
        attempt = call.state.params.attempt_id
        agent = run.pool.get(cmd.agent_id)
        if agent is not None and agent.attempt_id == attempt:
            run.pool.call_ended(cmd.agent_id, attempt, self.book.clock.now())
        run.awaiting_disposition[attempt] = cmd.agent_id
        call.talk_seconds = cmd.talk_seconds

    async def _connect(self, call: LiveCall, agent: Agent) -> None:
        call.connected_wall = self.book.clock.wall()
        logger.info(
            "attempt %s: connected to agent %s", call.state.params.attempt_id, agent.agent_id
        )
        await self.flow.apply(
            call.state.params.attempt_id, fsm.AgentAssigned(agent.agent_id, agent.bridge_id)
        )

    async def serve_waiting(self, run: CampaignRun) -> None:
        while run.waiting:
            attempt = run.waiting[0]
            call = self.book.calls.get(attempt)
            if call is None or call.state.phase is not fsm.Phase.ANSWERED:
                run.waiting.popleft()
                continue
            agent = run.pool.assign(attempt, self.book.clock.now())
            if agent is None:
                return
            run.waiting.popleft()
            await self._connect(call, agent)

    # ------------------------------------------------------------ dispositions and wrap-up
    async def disposition(
        self, agent_id: str, req: DispositionRequest, attempt_id: str | None
    ) -> DispositionResult:
        """Without waiting for the database: validate, free the agent, and queue the
        writes behind the end-of-call writes of the same attempt."""
        book = self.book
        run = book.agent_run(agent_id)
        if run is None:
            return DispositionRejected("agent", f"agent {agent_id} is not logged in"), None
        target = attempt_id
        if target is None:
            target = next(
                (att for att, ag in run.awaiting_disposition.items() if ag == agent_id), None
            )
        if target is None or run.awaiting_disposition.get(target) != agent_id:
            return DispositionRejected(
                "attempt", f"agent {agent_id} has no call awaiting a disposition"
            ), None
        lead = book.disp_leads.get(target)
        if lead is None:
            return DispositionRejected("attempt", f"attempt {target} is not awaiting one"), None
        ctx = CallContext(
            attempt_id=target,
            number=lead.number,
            campaign=run.plan.name,
            campaign_products=run.plan.products,
            default_product=lead.product or run.plan.default_product,
            pool_caller_id=run.plan.caller_id,
            customer_dialled_number=lead.dialled_number,
        )
        wall = book.clock.wall()
        result = plan(req, ctx, wall)
        if isinstance(result, DispositionRejected):
            return result, None
        written = book.lanes.submit(
            target, partial(self._apply_disposition, result, ctx, lead, target, wall)
        )
        run.awaiting_disposition.pop(target, None)
        book.disp_leads.pop(target, None)
        agent = run.pool.get(agent_id)
        if (
            agent is not None
            and agent.status is AgentStatus.WRAPUP
            and agent.last_attempt_id == target
        ):
            await self._wrap_done(run, agent_id)
        book.idle.set()
        return result, written

    async def _apply_disposition(
        self,
        result: DispositionPlan,
        ctx: CallContext,
        lead: DialLead,
        attempt_id: str,
        wall: datetime,
    ) -> None:
        ports = self.book.ports
        if result.refusal_product is not None:
            await ports.ledger.record_refusal(
                ctx.number, ctx.campaign, result.refusal_product, wall, attempt_id
            )
        if result.add_to_dnc:
            await ports.dnc.add_do_not_call(ctx.number, result.dnc_reason, wall)
        await ports.attempts.update(
            attempt_id,
            wall,
            disposition=result.kind.value,
            disposition_product=result.product,
            order_confirmed=result.order,
            note=result.note,
        )
        reason = f"disposition {result.kind.value}"
        if result.lead_status is LeadStatus.CALLBACK:
            assert result.next_attempt_at is not None
            await ports.leads.callback_at(lead, result.next_attempt_at, now=wall)
        elif result.lead_status in (LeadStatus.DO_NOT_CALL, LeadStatus.WRONG_NUMBER):
            await ports.leads.refuse(lead, [reason], now=wall)
        else:
            await ports.leads.finish(lead, [reason], counted=True, now=wall)
        logger.info("attempt %s: %s", attempt_id, reason)

    async def _wrap_done(self, run: CampaignRun, agent_id: str) -> None:
        agent = run.pool.get(agent_id)
        now = self.book.clock.now()
        if agent is None:
            return
        talk = agent.call_started
        wrap_started = agent.wrap_started
        res, channel = run.pool.wrap_done(agent_id, now)
        if res is None:
            run.pacer.on_talk(
                TalkResult(
                    at=now,
                    talk_seconds=max(0.0, wrap_started - talk),
                    wrap_seconds=max(0.0, now - wrap_started),
                )
            )
        if channel is not None:
            # A logout asked for during the call or the wrap-up takes effect now.
            await self._retire(agent_id, channel)
        await self.serve_waiting(run)
        self.book.wake.set()

    async def wrapup_timeout(self, agent_id: str, why: str = "wrap-up limit") -> None:
        run = self.book.agent_run(agent_id)
        if run is None:
            return
        agent = run.pool.get(agent_id)
        if agent is None or agent.status is not AgentStatus.WRAPUP:
            return
        attempt = agent.last_attempt_id
        if attempt is not None and run.awaiting_disposition.get(attempt) == agent_id:
            logger.warning("agent %s: %s without a disposition; no decision", agent_id, why)
            await self.disposition(agent_id, DispositionRequest("no_decision", note=why), attempt)
        else:
            await self._wrap_done(run, agent_id)

    def wrap_expired(self, limit: float) -> list[str]:
        """Agents whose wrap-up has lasted ``limit`` seconds or more."""
        now = self.book.clock.now()
        return [
            agent_id
            for run in self.book.campaigns.values()
            for agent_id in run.pool.wrap_expired(now, limit)
        ]

    async def end_all_wrapups(self) -> None:
        """At a stop: every open wrap-up and every missing disposition is "no decision"."""
        for agent_id in self.wrap_expired(0.0):
            await self.wrapup_timeout(agent_id, why="dialer shutting down")
        for run in self.book.campaigns.values():
            for attempt in list(run.awaiting_disposition):
                agent_id = run.awaiting_disposition[attempt]
                req = DispositionRequest(
                    "no_decision", note="dialer shut down before a disposition"
                )
                await self.disposition(agent_id, req, attempt)
