"""The campaign runner: leads -> gate -> pacer -> originate -> per-call FSM -> agents -> ledger.

One ``Runner`` per process. It wires the slices of ``dialer.calls`` around one
shared call book (placement, call control, agents, event routing) and runs
them: every ARI event, timer and agent request is put on one queue as a typed
message (``dialer.calls.messages``) and handled in order by one dispatcher
task. Long-lived loops (dispatcher, pacing, wrap-up watch, ordered writes) run
in a ``TaskGroup``; timers are ``loop.call_later`` handles kept per call and
cancelled at the end.

Key rules:
* A lead is dialled only after ``Gate.check_and_reserve`` allowed it; the
  attempt row (``dl-<attempt>`` channel id) is written BEFORE the gate is asked
  and before the originate, so events that beat the HTTP reply still route and
  a restarted process knows every call it may have placed.
* Originate 5xx / no answer: retried with the SAME channel id (409 = the first
  one worked), never once the channel has been seen.
* An answered person gets the longest-idle ready agent within
  ``connect_limit`` (2 s) or the abandon message; the agent bridge is recorded
  as ``rec-<attempt>``.
* The gate failing (database or Redis gone) halts dialling with a clear error;
  the lead it was checking goes back untouched (nothing dialled unchecked).
* After a WebSocket reconnect (and at start-up after a crash) ``reconcile``
  compares with ``GET /channels``: our channels Asterisk no longer has are
  finalized, channels Asterisk has that we do not know are hung up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar, assert_never

from compliance.ledger import AttemptAlreadyResolved, UnknownAttempt
from compliance.model import AttemptOutcome, Decision
from dialer import fsm
from dialer.agent_pool import (
    AGENT_BRIDGE_PREFIX,
    Agent,
    AgentPool,
    AgentRefusal,
    AgentStatus,
    AgentView,
)
from dialer.ari.errors import AriError
from dialer.ari.events import AriEvent
from dialer.attempts import AttemptLog, AttemptRecord, Stage
from dialer.calls.agents import AgentDesk
from dialer.calls.book import (
    CallBook,
    CampaignRun,
    InboundPolicy,
    LiveCall,
    PacerFactory,
    Ports,
    RunnerConfig,
    settle_lead,
)
from dialer.calls.control import CallFlow
from dialer.calls.messages import (
    AriEventReceived,
    CallEvent,
    DialGuardExpired,
    Message,
    Reconcile,
    RecordingWaitExpired,
    RunInDispatcher,
    Stop,
)
from dialer.calls.placement import Placement, default_pacer, presented_caller_id, snapshot
from dialer.calls.reconcile import AgentLine, reconcile, recovery
from dialer.calls.routing import EventRouter
from dialer.dispositions import DispositionPlan, DispositionRejected, DispositionRequest
from dialer.outcomes import DialOutcome, dial_outcome, ledger_outcome
from dialer.pacing import PacingSnapshot
from dialer.ports import (
    AgentDirectory,
    CallControl,
    CampaignPlan,
    Clock,
    DialLead,
    DncList,
    Gate,
    GateUnavailable,
    LeadSource,
    Ledger,
    LiveFigures,
    RecordingSink,
)
from dialer.retry import RuleLike, after_dial

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AgentDial:
    """How an agent's own call went: placed (``attempt_id``), refused by the gate
    (``decision``, with its reasons), the agent could not take it (``refusal``), or the
    lead or the dialer was not available (``unavailable``, a sentence)."""

    attempt_id: str = ""
    decision: Decision | None = None
    refusal: AgentRefusal | None = None
    unavailable: str = ""

    @classmethod
    def of(cls, placed: str | Decision | AgentRefusal) -> AgentDial:
        if isinstance(placed, str):
            return cls(attempt_id=placed)
        if isinstance(placed, AgentRefusal):
            return cls(refusal=placed)
        return cls(decision=placed)


class Runner:
    def __init__(
        self,
        *,
        control: CallControl,
        gate: Gate,
        ledger: Ledger,
        leads: LeadSource,
        dnc: DncList,
        attempts: AttemptLog,
        clock: Clock,
        directory: AgentDirectory,
        recordings: RecordingSink | None = None,
        config: RunnerConfig | None = None,
        pacer_factory: PacerFactory | None = None,
    ) -> None:
        config = config or RunnerConfig()
        ports = Ports(control, gate, ledger, leads, dnc, attempts, clock, directory, recordings)
        self.book = CallBook(ports, config)
        self.control = control
        self.attempts = attempts
        self.leads = leads
        self.ledger = ledger
        self.clock = clock
        self.config = config
        self.events_handled = 0
        self._pacer_factory = pacer_factory or default_pacer
        self.flow = CallFlow(self.book)
        self.placement = Placement(self.book, self.flow)
        self.agents = AgentDesk(self.book, self.flow)
        self.flow.register(self.placement.commands())
        self.flow.register(self.agents.commands())
        self.flow.check_complete()
        self.router = EventRouter()
        self.router.subscribe(self.agents.subscriptions())
        self.router.subscribe(self.flow.subscriptions())
        self.flow.finished_hooks.append(self.agents.free_reserved)
        self._previews: dict[str, DialLead] = {}  # agent -> the lead held for them (preview)
        # Told of every agent state change, in the dispatcher (the agents' screens, the
        # floor): each must return at once and never raise.
        self.agent_listeners: list[Callable[[str, Agent], None]] = []

    def _agent_changed(self, agent: Agent) -> None:
        campaign = self.book.agent_campaign.get(agent.agent_id, "")
        for listener in self.agent_listeners:
            listener(campaign, agent)

    # ------------------------------------------------------------ the book, read-only views
    @property
    def campaigns(self) -> dict[str, CampaignRun]:
        return self.book.campaigns

    @property
    def calls(self) -> dict[str, LiveCall]:
        return self.book.calls

    @property
    def halted(self) -> str | None:
        return self.book.halted

    @property
    def originates_sent(self) -> int:
        return self.book.originates_sent

    @property
    def session(self) -> str:
        return self.book.session

    @property
    def _queue(self) -> asyncio.Queue[Message]:
        return self.book.queue

    # ------------------------------------------------------------ campaigns
    def add_campaign(self, plan_: CampaignPlan) -> CampaignRun:
        run = self.book.campaigns.get(plan_.name)
        if run is None:
            pacer = self._pacer_factory(plan_.pacing_method, plan_.pacing_params)
            run = CampaignRun(plan_, pacer, AgentPool(self.book.session, self._agent_changed))
            self.book.campaigns[plan_.name] = run
        else:
            run.plan = plan_
        return run

    def start_dialling(self, campaign: str) -> None:
        run = self.book.run_of(campaign)
        run.dialling = True
        run.drained = False
        self.book.wake.set()

    def pause_dialling(self, campaign: str) -> None:
        self.book.run_of(campaign).dialling = False

    def set_inbound_waiting(self, count: int) -> None:
        """Inbound first (art. 43): calls waiting in inbound queues hold outbound pacing back."""
        self.book.inbound_waiting = max(0, count)
        self.book.wake.set()

    def has_campaign(self, name: str) -> bool:
        return name in self.book.campaigns

    def agent_view(self, agent_id: str) -> tuple[str, AgentView] | None:
        """The agent as the API shows it, and the campaign it is in."""
        now = self.clock.now()
        for run in self.book.campaigns.values():
            view = run.pool.view(agent_id, now)
            if view is not None:
                return run.plan.name, view
        return None

    def snapshot(self, run: CampaignRun) -> PacingSnapshot:
        return snapshot(self.book, run)

    # ------------------------------------------------------------ event intake
    async def handle_event(self, event: AriEvent) -> None:
        """The ARI event handler: queue it for the dispatcher (never blocks the reader)."""
        self.book.post(AriEventReceived(event))

    async def reconcile(self, channels: Sequence[Any], first: bool) -> None:
        """The ARI reconcile hook: queued behind every event already received."""
        states = {str(c.id): str(c.state) for c in channels}
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.book.post(Reconcile(states, done))
        await done

    async def call_in_dispatcher(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` (an async callable) in the dispatcher, in order with events."""
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.book.post(RunInDispatcher(fn, fut))
        return await fut

    # ------------------------------------------------------------ main loops
    async def run(self, *, burst: bool = False) -> None:
        """Run until ``stop()`` (or, with ``burst``, until every dialling campaign is drained)."""
        book = self.book
        async with asyncio.TaskGroup() as tg:
            dispatcher = tg.create_task(self._dispatch_loop(), name="dialer-dispatch")
            watcher = tg.create_task(self._wrapup_loop(), name="dialer-wrapup")
            writer = tg.create_task(book.lanes.run(), name="dialer-writes")
            await self.placement.pacing_loop(burst=burst, drained=self._all_drained)
            await self._drain()
            if self.config.logout_agents_at_stop:
                await self.call_in_dispatcher(self.agents.logout_all)
            book.post(Stop())
            await dispatcher
            watcher.cancel()
            await book.lanes.join()
            book.lanes.close()
            await writer

    async def _drain(self) -> None:
        """No new calls; wait for the live ones to end (then hang up what is left)."""
        try:
            async with asyncio.timeout(self.config.drain_timeout):
                await self._drain_calls()
        except TimeoutError:
            logger.warning(
                "dialer: %d calls still live after %.0fs; hanging them up",
                len(self.book.calls),
                self.config.drain_timeout,
            )
            await self.call_in_dispatcher(self.flow.end_all)
            await self._drain_calls(dispositions=False)
            # The drain time was the agents' time to give their dispositions too: the
            # wrap-ups still open end now ("no decision"), not after the wrap-up limit
            # (a stop bounded by drain_timeout, well inside a service manager's timeout).
            await self.call_in_dispatcher(self.agents.end_all_wrapups)
            await self._drain_calls()

    async def stop(self) -> None:
        """Graceful stop: no new calls; live calls run to their end."""
        self.book.stopping = True
        self.book.wake.set()

    async def _drain_calls(self, *, dispositions: bool = True) -> None:
        book = self.book
        while book.calls or book.pending_leads or (dispositions and book.awaiting_any()):
            book.idle.clear()
            try:
                await asyncio.wait_for(book.idle.wait(), 0.2)
            except TimeoutError:
                continue

    def _all_drained(self) -> bool:
        book = self.book
        active = [r for r in book.campaigns.values() if r.dialling]
        if book.halted is not None:
            return not book.calls and not book.pending_leads and book.lanes.idle()
        return (
            bool(active)
            and all(r.drained for r in active)
            and not book.calls
            and not book.pending_leads
            and not book.awaiting_any()
            and book.lanes.idle()
        )

    async def _wrapup_loop(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            for agent_id in self.agents.wrap_expired(self.config.wrapup_limit):
                await self.call_in_dispatcher(partial(self.agents.wrapup_timeout, agent_id))

    async def _dispatch_loop(self) -> None:
        book = self.book
        while True:
            message = await book.queue.get()
            if isinstance(message, Stop):
                return
            try:
                await self._dispatch(message)
            except Exception:
                # A failing handler drives its call to a safe end; the dialer goes on.
                logger.exception("dialer: handling %s failed", type(message).__name__)
                if isinstance(message, CallEvent):
                    call = book.calls.get(message.attempt_id)
                    if call is not None:
                        await book.safe_hangup(call.state.params.channel_id)
            if not book.calls:
                book.idle.set()

    async def _dispatch(self, message: Message) -> None:
        match message:
            case AriEventReceived(event=event):
                self.events_handled += 1
                await self.router.route(event)
            case CallEvent(attempt_id=attempt_id, event=event):
                await self.flow.apply(attempt_id, event)
            case RecordingWaitExpired(attempt_id=attempt_id):
                await self.flow.recording_wait_expired(attempt_id)
            case DialGuardExpired(attempt_id=attempt_id):
                await self.flow.dial_guard_expired(attempt_id)
            case Reconcile(channels=channels, done=done):
                try:
                    await self._reconcile(channels)
                finally:
                    if not done.done():
                        done.set_result(None)
            case RunInDispatcher(fn=fn, done=fut):
                try:
                    result = await fn()
                except Exception as exc:
                    fut.set_exception(exc)
                else:
                    fut.set_result(result)
            case Stop():
                pass
            case _:
                assert_never(message)

    # ------------------------------------------------------------ agents (API)
    async def agent_login(self, agent_id: str, campaign: str) -> Agent:
        """The softphone is called at the agent directory's endpoint, never another."""
        return await self.call_in_dispatcher(lambda: self.agents.login(agent_id, campaign))

    async def agent_ready(self, agent_id: str) -> AgentRefusal | None:
        return await self.call_in_dispatcher(partial(self.agents.ready, agent_id))

    async def agent_pause(self, agent_id: str) -> AgentRefusal | None:
        return await self.call_in_dispatcher(partial(self.agents.pause, agent_id))

    async def agent_logout(self, agent_id: str) -> AgentRefusal | None:
        return await self.call_in_dispatcher(partial(self.agents.logout, agent_id))

    async def agent_hangup(self, agent_id: str) -> AgentRefusal | None:
        """The agent ends the current call (the softphone stays up in its bridge)."""
        return await self.call_in_dispatcher(partial(self.agents.hangup, agent_id))

    async def disposition(
        self, agent_id: str, req: DispositionRequest, attempt_id: str | None = None
    ) -> DispositionPlan | DispositionRejected:
        """Validate and apply an agent's disposition; returns once it is stored."""
        result, written = await self.call_in_dispatcher(
            partial(self.agents.disposition, agent_id, req, attempt_id)
        )
        if written is not None:
            await written
        return result

    # ------------------------------------------------------------ an agent's own calls
    async def dial_for_agent(self, agent_id: str, lead_id: str) -> AgentDial:
        """The agent calls a given lead (manual dial, their callback) through the same gate."""
        book = self.book
        run = book.agent_run(agent_id)
        if run is None:
            return AgentDial(refusal=AgentRefusal.NOT_LOGGED_IN)
        if book.halted is not None or book.stopping:
            return AgentDial(unavailable=book.halted or "the dialer is stopping")
        lead = await self.leads.claim_lead(lead_id, book.clock.wall())
        if lead is None:
            return AgentDial(unavailable="the lead is not available (being called, or closed)")
        if lead.campaign != run.plan.name:
            await self.leads.retry_at(
                lead, None, ["not this agent's campaign"], counted=False, now=book.clock.wall()
            )
            return AgentDial(unavailable=f"the lead belongs to campaign {lead.campaign}")
        return AgentDial.of(await self.placement.place_for_agent(run, lead, agent_id))

    async def preview_next(self, agent_id: str) -> DialLead | None:
        """A preview campaign: the next due lead, held for this agent to call or skip."""
        book = self.book
        run = book.agent_run(agent_id)
        held = self._previews.get(agent_id)
        if run is None or held is not None:
            return held
        leads = await self.leads.claim(run.plan.name, book.clock.wall(), 1)
        if not leads:
            return None
        self._previews[agent_id] = leads[0]
        return leads[0]

    @property
    def placed_listeners(self) -> list[Callable[[str, DialLead], None]]:
        """Told of every call placed (attempt id, lead), after the gate allowed it."""
        return self.book.placed_hooks

    def live_lead(self, attempt_id: str) -> DialLead | None:
        """The lead of a call in progress (or being checked), from memory."""
        call = self.book.calls.get(attempt_id)
        if call is not None:
            return call.lead
        return self.book.pending_leads.get(attempt_id)

    def held_preview(self, agent_id: str) -> DialLead | None:
        return self._previews.get(agent_id)

    async def preview_dial(self, agent_id: str) -> AgentDial:
        run = self.book.agent_run(agent_id)
        lead = self._previews.pop(agent_id, None)
        if run is None or lead is None:
            return AgentDial(unavailable="no lead is held for this agent")
        return AgentDial.of(await self.placement.place_for_agent(run, lead, agent_id))

    async def preview_skip(self, agent_id: str, *, later: float = 3600.0) -> bool:
        """Give the held lead back, due again ``later`` seconds from now."""
        lead = self._previews.pop(agent_id, None)
        if lead is None:
            return False
        now = self.book.clock.wall()
        await self.leads.retry_at(
            lead,
            now + timedelta(seconds=later),
            [f"skipped in preview by {agent_id}"],
            counted=False,
            now=now,
        )
        return True

    # ------------------------------------------------------------ reconcile and recovery
    async def _reconcile(self, channels: Mapping[str, str]) -> None:
        """Compare with the channels Asterisk has (after a reconnect or at start-up)."""
        book = self.book
        agents = [
            AgentLine(name, a.agent_id, a.channel_id, a.channel_up, a.attempt_id)
            for name, run in book.campaigns.items()
            for a in run.pool.agents()
            if a.status is not AgentStatus.OFFLINE
        ]
        actions = reconcile({a: c.state for a, c in book.calls.items()}, agents, channels)
        for attempt in actions.vanished:
            await self.flow.apply(attempt, fsm.Vanished())
        for attempt in actions.answered:
            await self.flow.apply(attempt, fsm.StasisStarted(("customer", "reconciled")))
        for line in actions.agents_lost:
            book.campaigns[line.campaign].pool.channel_lost(line.channel_id, self.clock.now())
            if line.attempt_id is not None:
                await self.flow.apply(line.attempt_id, fsm.AgentGone())
        for cid in actions.orphans:
            await book.safe_hangup(cid)
        if actions.vanished or actions.orphans:
            logger.warning(
                "reconcile: %d attempts finalized, %d orphan channels hung up",
                len(actions.vanished),
                len(actions.orphans),
            )

    async def _resolve_recovered(self, attempt_id: str, outcome: DialOutcome) -> DialOutcome:
        """Resolve a recovered attempt in the ledger; the outcome the attempt row gets."""
        try:
            await self.ledger.resolve(attempt_id, ledger_outcome(outcome))
        except UnknownAttempt:
            pass  # the crash came before the reservation: nothing to resolve
        except AttemptAlreadyResolved as exc:
            # The previous process resolved the ledger with the call's real end, then
            # died before writing the attempt row: the ledger's outcome is the one.
            known = dial_outcome(exc.current)
            if known is None:
                raise
            logger.info(
                "attempt %s: the ledger already has its end (%s); kept", attempt_id, exc.current
            )
            return known
        return outcome

    async def recover(self) -> int:
        """Start-up after a crash: finish every attempt a previous process left unfinished.

        Nothing is dialled again: an attempt that may have reached the network is
        finalized as counted (its lead waits for the campaign's retry delay).
        """
        book = self.book
        todo = recovery(await self.attempts.unfinished(), await self.control.channel_ids())
        for item in todo.attempts:
            rec = item.record
            wall = self.clock.wall()
            if item.hang_up:
                await book.safe_hangup(rec.channel_id)
            outcome = await self._resolve_recovered(rec.attempt_id, item.outcome)
            await self.attempts.update(
                rec.attempt_id,
                wall,
                stage=Stage.DONE,
                outcome=outcome.value,
                reasons="recovered after restart",
            )
            run = book.campaigns.get(rec.campaign)
            rules: Mapping[str, RuleLike] = run.plan.retry if run is not None else {}
            lead = _recovered_lead(rec)
            nxt = after_dial(
                outcome, connected=False, tries_before=lead.attempts, rules=rules, now=wall
            )
            await settle_lead(self.leads, lead, nxt, now=wall, why=["recovered after restart"])
        count = len(todo.attempts)
        for rec in await self.attempts.awaiting_disposition():
            # Talked to an agent, no disposition before the crash: close the lead, never redial.
            wall = self.clock.wall()
            await self.attempts.update(
                rec.attempt_id, wall, disposition="no_decision", note="recovered after restart"
            )
            lead = _recovered_lead(rec)
            await self.leads.finish(lead, ["disposition lost in a restart"], counted=True, now=wall)
            count += 1
        for name in book.campaigns:
            # Leads claimed but never checked (the crash came between claim and check).
            released = await self.leads.release_claims(name, self.clock.wall())
            if released:
                logger.warning(
                    "recovery: %d claimed, unchecked leads of %s released", released, name
                )
        for cid in todo.orphans:
            await book.safe_hangup(cid)
        await self._remove_stale_agent_bridges()
        if count:
            logger.warning("recovery: %d unfinished attempts from a previous run finalized", count)
        return count

    async def _remove_stale_agent_bridges(self) -> None:
        """An ``agent-<id>`` bridge a crashed process left keeps the app subscribed in
        Asterisk: destroy every one whose agent is not logged in here."""
        live = {
            agent.bridge_id
            for run in self.book.campaigns.values()
            for agent in run.pool.agents()
            if agent.status is not AgentStatus.OFFLINE
        }
        for bridge_id in sorted(await self.control.bridge_ids()):
            if bridge_id.startswith(AGENT_BRIDGE_PREFIX) and bridge_id not in live:
                logger.warning("recovery: bridge %s left by a previous run destroyed", bridge_id)
                try:
                    await self.control.destroy_bridge(bridge_id)
                except AriError as exc:
                    logger.warning("recovery: bridge %s: %s", bridge_id, exc)

    # ------------------------------------------------------------ figures
    def figures(self, campaign: str) -> LiveFigures:
        run = self.book.run_of(campaign)
        snap = snapshot(self.book, run)
        return LiveFigures(
            campaign=campaign,
            dialling=run.dialling,
            agents_logged_in=run.pool.logged_in_count(),
            agents_ready=snap.agents_ready,
            agents_talking=len(snap.agents_talking),
            agents_wrapping=len(snap.agents_wrapping),
            dials_in_flight=len(snap.dials_in_flight),
            customers_waiting=snap.customers_waiting,
            calls_placed=run.calls_placed,
            occupancy=run.pool.occupancy(self.clock.now()),
            halted=self.book.halted,
            throttled=self.book.throttled,
        )


def _recovered_lead(rec: AttemptRecord) -> DialLead:
    """The lead of an attempt-log row, for the start-up recovery (which only reports on it)."""
    return DialLead(
        rec.lead_id,
        rec.campaign,
        rec.number,
        rec.product,
        "default",
        None,
        None,
        rec.try_no - 1,
    )


__all__ = [
    "AttemptOutcome",
    "CampaignPlan",
    "CampaignRun",
    "GateUnavailable",
    "InboundPolicy",
    "LiveFigures",
    "Runner",
    "RunnerConfig",
    "presented_caller_id",
]
