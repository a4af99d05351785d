"""The campaign runner: leads -> gate -> pacer -> originate -> per-call FSM -> agents -> ledger.

One ``Runner`` per process. It owns, per running campaign, a pacer and an
agent pool; every ARI event, timer and agent request is put on one queue and
handled in order by one dispatcher task, which steps the pure per-call state
machine (``dialer.fsm``) and executes the commands it returns. Long-lived loops
(dispatcher, pacing, wrap-up watch) run in a ``TaskGroup``; timers are
``loop.call_later`` handles kept per call and cancelled at the end.

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
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import Any, Protocol, TypeVar, runtime_checkable

from compliance.ledger import AttemptAlreadyResolved, UnknownAttempt
from compliance.model import AttemptOutcome, Decision
from compliance.numbers import mask
from dialer import fsm
from dialer.agent_pool import Agent, AgentPool, AgentRefusal, AgentStatus
from dialer.ari.errors import AriError
from dialer.ari.events import (
    AriEvent,
    ChannelDestroyed,
    ChannelHangupRequest,
    Dial,
    PlaybackFinished,
    RecordingFailed,
    RecordingFinished,
    RecordingStarted,
    StasisEnd,
    StasisStart,
)
from dialer.attempts import AttemptLog, AttemptRecord, Stage
from dialer.dispositions import (
    CallContext,
    DispositionPlan,
    DispositionRejected,
    DispositionRequest,
    LeadStatus,
    plan,
)
from dialer.lanes import WriteLanes
from dialer.outcomes import DialOutcome, dial_outcome, ledger_outcome
from dialer.pacing import DialResult, Pacer, PacingSnapshot, TalkResult, make_pacer
from dialer.ports import (
    CallControl,
    ChannelEndedEarly,
    Clock,
    DialLead,
    DncList,
    FinishedRecording,
    Gate,
    LeadSource,
    Ledger,
    RecordingSink,
)
from dialer.retry import NextKind, RuleLike, after_dial

logger = logging.getLogger(__name__)
T = TypeVar("T")

CUSTOMER_PREFIX = "dl-"
AGENT_PREFIX = "ag-"


class GateUnavailable(Exception):
    """The compliance gate could not answer (database or Redis gone). Dialling stops."""


class InboundPolicy(StrEnum):
    PAUSE = "pause"  # no outbound call while inbound calls wait
    PROGRESSIVE = "progressive"  # at most one call per ready agent


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    customer_endpoint: str = "Local/{number}@sim-customers"
    agent_endpoint: str = "Local/{agent}@sim-agents"
    app: str = "dialer"
    connect_limit: float = 2.0
    tick: float = 0.05
    wrapup_limit: float = 60.0
    abandon_media: str = "sound:vm-nobodyavail"
    # Where an abandoned call (no agent within connect_limit) hears the information
    # message. "" : the runner plays ``abandon_media`` over ARI and hangs up (no opt-out).
    # A context (``dialer-abandon`` in asterisk_conf/extensions.conf): the runner hands
    # the channel to that dialplan (extension s, priority 1), which plays the message and
    # offers "press 9", recorded by the FastAGI ``optout`` route from the channel
    # variables set at originate (DIALER_NUMBER, DIALER_ATTEMPT_ID, DIALER_CAMPAIGN).
    abandon_context: str = ""
    # The dialplan's message, the key press and the AGI take longer than a plain
    # playback; the runner hangs the channel up if it is still there after this.
    abandon_dialplan_limit: float = 60.0
    max_originate_tries: int = 3
    originate_backoff: float = 0.5
    amd: bool = False
    # AMD()'s afterGreetingSilence (ms), passed to [dialer-amd] and taken off the
    # connect limit: the 2 s count from the end of the customer's greeting.
    amd_after_greeting_ms: int = 800
    recording_format: str = "wav"
    inbound_policy: InboundPolicy = InboundPolicy.PAUSE
    claimer: str = "dialer"
    max_claim: int = 20
    recording_wait: float = 10.0  # after a call ends, how long to wait for RecordingFinished
    dial_guard: float = 30.0  # after the ring timeout, check a call we heard nothing about
    drain_timeout: float = 30.0  # graceful stop: live calls get this long, then are hung up
    logout_agents_at_stop: bool = True
    write_lanes: int = 8  # parallel ordered lanes for per-call database writes
    place_concurrency: int = 8  # leads checked and originated at once


@dataclass(frozen=True, slots=True)
class CampaignPlan:
    """What the runner needs of a campaign (built from the campaign registry)."""

    name: str
    products: tuple[str, ...]
    caller_id: str
    ring_timeout: int
    retry: Mapping[str, RuleLike]
    pacing_method: str = "progressive"
    pacing_params: Mapping[str, float] = field(default_factory=dict)
    # The campaign's own dialling hours (on top of the policy's calling hours).
    hours_allow: Callable[[datetime], bool] | None = None

    @property
    def default_product(self) -> str:
        return self.products[0] if self.products else ""


@dataclass
class LiveCall:
    state: fsm.CallState
    lead: DialLead
    campaign: str
    started_wall: datetime
    timers: dict[fsm.Timer, asyncio.TimerHandle] = field(default_factory=dict)
    finished: bool = False
    connected_wall: datetime | None = None
    recording_expected: bool = False
    ring_seconds: float | None = None
    talk_seconds: float | None = None
    answered: bool = False
    recording_guard: asyncio.TimerHandle | None = None
    dial_guard: asyncio.TimerHandle | None = None


@dataclass
class CampaignRun:
    plan: CampaignPlan
    pacer: Pacer
    pool: AgentPool = field(default_factory=AgentPool)
    waiting: deque[str] = field(default_factory=deque)
    dialling: bool = False
    drained: bool = False
    awaiting_disposition: dict[str, str] = field(default_factory=dict)  # attempt -> agent
    calls_placed: int = 0


@dataclass(frozen=True, slots=True)
class _Finish:
    """What the end-of-call write needs, copied when the call ended."""

    phase: str
    agent_id: str | None
    connected_wall: datetime | None
    ring_seconds: float | None
    talk_seconds: float | None
    answered: bool


@dataclass(frozen=True, slots=True)
class LiveFigures:
    campaign: str
    dialling: bool
    agents_logged_in: int
    agents_ready: int
    agents_talking: int
    agents_wrapping: int
    dials_in_flight: int
    customers_waiting: int
    calls_placed: int
    occupancy: float
    halted: str | None


def presented_caller_id(lead: DialLead, pool_caller_id: str) -> str:
    """The caller ID a call to ``lead`` presents (rule A.5, policy art. 35).

    Art. 35 (一): "根据客户来电线索开展回访、关怀等外呼活动时, 客户终端显示主叫号码应与客户
    之前拨打我公司客服电话号码一致": a lead that came from the customer's own call
    (``dialled_number``: the number they called us on) is only ever called back as a
    return or care call, so every call to it, first try, retry or scheduled callback,
    presents that number. A "callback" disposition on a lead we found ourselves (no
    dialled number) follows *our* call, not theirs: it presents the campaign's pool
    number, as every other call does. ``DialLead.is_callback`` carries exactly "this
    call follows the customer's own call" (``dial_lead`` sets it from the dialled
    number), which is what the gate checks the caller ID against.
    """
    if lead.is_callback and lead.dialled_number:
        return lead.dialled_number
    return pool_caller_id


def new_attempt_id() -> str:
    return uuid.uuid4().hex[:20]


@runtime_checkable
class DialplanHandoff(Protocol):
    """A ``CallControl`` that can hand a channel in the app to a dialplan context.

    The channel must keep sending its events to the app after it leaves Stasis (its
    ``ChannelDestroyed`` ends the call): implementations subscribe to it explicitly.
    """

    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str, priority: int
    ) -> None: ...


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
        recordings: RecordingSink | None = None,
        config: RunnerConfig | None = None,
        pacer_factory: Callable[[str, Mapping[str, float]], Pacer] | None = None,
    ) -> None:
        self.control = control
        self.gate = gate
        self.ledger = ledger
        self.leads = leads
        self.dnc = dnc
        self.attempts = attempts
        self.clock = clock
        self.recordings = recordings
        self.config = config or RunnerConfig()
        if self.config.abandon_context and not isinstance(control, DialplanHandoff):
            raise ValueError(
                f"abandon_context={self.config.abandon_context!r} needs a call control that "
                "can continue a channel in the dialplan (DialplanHandoff)"
            )
        self._pacer_factory = pacer_factory or _default_pacer
        self.campaigns: dict[str, CampaignRun] = {}
        self.calls: dict[str, LiveCall] = {}
        self._agent_campaign: dict[str, str] = {}
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._stopping = False
        self._inbound_waiting = 0
        self.halted: str | None = None
        self.events_handled = 0
        self.originates_sent = 0
        self._idle = asyncio.Event()
        self._pending_leads: dict[str, DialLead] = {}
        self._disp_leads: dict[str, DialLead] = {}
        self.session = uuid.uuid4().hex[:6]
        self._lanes = WriteLanes(self.config.write_lanes)

    # ------------------------------------------------------------ campaigns
    def add_campaign(self, plan_: CampaignPlan) -> CampaignRun:
        run = self.campaigns.get(plan_.name)
        if run is None:
            pacer = self._pacer_factory(plan_.pacing_method, plan_.pacing_params)
            run = CampaignRun(plan_, pacer, AgentPool(self.session))
            self.campaigns[plan_.name] = run
        else:
            run.plan = plan_
        return run

    def start_dialling(self, campaign: str) -> None:
        run = self._run(campaign)
        run.dialling = True
        run.drained = False
        self._wake.set()

    def pause_dialling(self, campaign: str) -> None:
        self._run(campaign).dialling = False

    def _run(self, campaign: str) -> CampaignRun:
        run = self.campaigns.get(campaign)
        if run is None:
            raise KeyError(f"campaign {campaign!r} is not loaded in this dialer")
        return run

    def set_inbound_waiting(self, count: int) -> None:
        """Inbound first (art. 43): calls waiting in inbound queues hold outbound pacing back."""
        self._inbound_waiting = max(0, count)
        self._wake.set()

    # ------------------------------------------------------------ event intake
    async def handle_event(self, event: AriEvent) -> None:
        """The ARI event handler: queue it for the dispatcher (never blocks the reader)."""
        self._queue.put_nowait(("ari", event))

    async def reconcile(self, channels: Sequence[Any], first: bool) -> None:
        """The ARI reconcile hook: queued behind every event already received."""
        states = {str(c.id): str(c.state) for c in channels}
        done = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(("reconcile", (states, done)))
        await done

    # ------------------------------------------------------------ main loops
    async def run(self, *, burst: bool = False) -> None:
        """Run until ``stop()`` (or, with ``burst``, until every dialling campaign is drained)."""
        async with asyncio.TaskGroup() as tg:
            dispatcher = tg.create_task(self._dispatch_loop(), name="dialer-dispatch")
            watcher = tg.create_task(self._wrapup_loop(), name="dialer-wrapup")
            writer = tg.create_task(self._lanes.run(), name="dialer-writes")
            await self._pacing_loop(burst=burst)
            # Drain: no new calls; wait for the live ones to end.
            try:
                async with asyncio.timeout(self.config.drain_timeout):
                    await self._drain_calls()
            except TimeoutError:
                logger.warning(
                    "dialer: %d calls still live after %.0fs; hanging them up",
                    len(self.calls),
                    self.config.drain_timeout,
                )
                await self.call_in_dispatcher(self._end_all_calls)
                await self._drain_calls(dispositions=False)
                # The drain time was the agents' time to give their dispositions too: the
                # wrap-ups still open end now ("no decision"), not after the wrap-up limit
                # (a stop bounded by drain_timeout, well inside a service manager's timeout).
                await self.call_in_dispatcher(self._end_all_wrapups)
                await self._drain_calls()
            if self.config.logout_agents_at_stop:
                await self.call_in_dispatcher(self._logout_all)
            self._queue.put_nowait(("stop", None))
            await dispatcher
            watcher.cancel()
            await self._lanes.join()
            self._lanes.close()
            await writer

    async def stop(self) -> None:
        """Graceful stop: no new calls; live calls run to their end."""
        self._stopping = True
        self._wake.set()

    async def _drain_calls(self, *, dispositions: bool = True) -> None:
        while self.calls or self._pending_leads or (dispositions and self._awaiting_any()):
            self._idle.clear()
            try:
                await asyncio.wait_for(self._idle.wait(), 0.2)
            except TimeoutError:
                continue

    async def _end_all_calls(self) -> None:
        for attempt in list(self.calls):
            await self._apply(attempt, fsm.EndRequested("dialer shutting down"))

    async def _end_all_wrapups(self) -> None:
        now = self.clock.now()
        for run in list(self.campaigns.values()):
            for agent_id in run.pool.wrap_expired(now, 0.0):
                await self._wrapup_timeout(agent_id, why="dialer shutting down")
        for run in self.campaigns.values():
            for attempt in list(run.awaiting_disposition):
                agent_id = run.awaiting_disposition[attempt]
                req = DispositionRequest(
                    "no_decision", note="dialer shut down before a disposition"
                )
                await self._disposition(agent_id, req, attempt)

    async def _logout_all(self) -> None:
        """Hang up every agent softphone and remove the agent bridges."""
        now = self.clock.now()
        for run in self.campaigns.values():
            for agent in run.pool.agents():
                if agent.status is AgentStatus.OFFLINE:
                    continue
                channel = agent.channel_id
                run.pool.channel_lost(channel, now)
                await self._safe_hangup(channel)
                try:
                    await self.control.destroy_bridge(agent.bridge_id)
                except AriError as exc:
                    logger.warning("agent %s: bridge %s: %s", agent.agent_id, agent.bridge_id, exc)

    def _awaiting_any(self) -> bool:
        return any(run.awaiting_disposition for run in self.campaigns.values())

    async def _dispatch_loop(self) -> None:
        while True:
            kind, item = await self._queue.get()
            if kind == "stop":
                return
            await self._dispatch(kind, item)
            if not self.calls:
                self._idle.set()

    async def _dispatch(self, kind: str, item: Any) -> None:
        try:
            await self._dispatch_one(kind, item)
        except Exception:
            # A failing handler drives its call to a safe end; the dialer goes on.
            logger.exception("dialer: handling %s failed", kind)
            if kind == "call":
                call = self.calls.get(item[0])
                if call is not None:
                    await self._safe_hangup(call.state.params.channel_id)

    async def _dispatch_one(self, kind: str, item: Any) -> None:
        if kind == "ari":
            self.events_handled += 1
            await self._on_ari(item)
        elif kind == "call":
            attempt_id, ev = item
            await self._apply(attempt_id, ev)
        elif kind == "recording_wait":
            await self._recording_wait_expired(item)
        elif kind == "dial_guard":
            await self._dial_guard_expired(item)
        elif kind == "reconcile":
            ids, done = item
            try:
                await self._reconcile(ids)
            finally:
                if not done.done():
                    done.set_result(None)
        elif kind == "fn":
            fn, fut = item
            try:
                result = await fn()
            except Exception as exc:
                fut.set_exception(exc)
            else:
                fut.set_result(result)

    async def call_in_dispatcher(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` (an async callable) in the dispatcher, in order with events."""
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(("fn", (fn, fut)))
        return await fut

    async def _wrapup_loop(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            now = self.clock.now()
            for run in self.campaigns.values():
                for agent_id in run.pool.wrap_expired(now, self.config.wrapup_limit):
                    await self.call_in_dispatcher(partial(self._wrapup_timeout, agent_id))

    async def _pacing_loop(self, *, burst: bool) -> None:
        while not self._stopping:
            self._wake.clear()
            if self.halted is None:
                for run in list(self.campaigns.values()):
                    if run.dialling and not self._stopping:
                        await self._pace(run)
            if burst and self._all_drained():
                return
            try:
                await asyncio.wait_for(self._wake.wait(), self.config.tick)
            except TimeoutError:
                pass

    def _all_drained(self) -> bool:
        active = [r for r in self.campaigns.values() if r.dialling]
        if self.halted is not None:
            return not self.calls and not self._pending_leads and self._lanes.idle()
        return (
            bool(active)
            and all(r.drained for r in active)
            and not self.calls
            and not self._pending_leads
            and not self._awaiting_any()
            and self._lanes.idle()
        )

    def snapshot(self, run: CampaignRun) -> PacingSnapshot:
        now = self.clock.now()
        in_flight = []
        waiting = 0
        for call in self.calls.values():
            if call.campaign != run.plan.name:
                continue
            st = call.state
            if st.phase in (fsm.Phase.RESERVED, fsm.Phase.DIALING, fsm.Phase.RINGING):
                in_flight.append(now - (st.placed_at if st.placed_at is not None else now))
            elif st.phase is fsm.Phase.ANSWERED:
                waiting += 1
        in_flight.extend(
            0.0 for lead in self._pending_leads.values() if lead.campaign == run.plan.name
        )
        return PacingSnapshot(
            now=now,
            agents_ready=run.pool.ready_count(),
            agents_talking=run.pool.talking_ages(now),
            agents_wrapping=run.pool.wrapping_ages(now),
            dials_in_flight=tuple(in_flight),
            customers_waiting=waiting,
        )

    async def _pace(self, run: CampaignRun) -> None:
        hours = run.plan.hours_allow
        if hours is not None and not hours(self.clock.wall()):
            return
        snap = self.snapshot(run)
        if self._inbound_waiting > 0:
            if self.config.inbound_policy is InboundPolicy.PAUSE:
                return
            n = max(0, snap.agents_ready - len(snap.dials_in_flight) - snap.customers_waiting)
        else:
            n = run.pacer.calls_to_place(snap)
        if n <= 0:
            return
        n = min(n, self.config.max_claim)
        try:
            leads = await self.leads.claim(run.plan.name, self.clock.wall(), n)
        except GateUnavailable as exc:
            self._halt(f"lead store unavailable, dialling stopped: {exc}")
            return
        if not leads:
            if not any(c.campaign == run.plan.name for c in self.calls.values()):
                run.drained = True
            return
        run.drained = False
        limit = asyncio.Semaphore(self.config.place_concurrency)

        async def place(lead: DialLead) -> None:
            async with limit:
                if self.halted is not None or self._stopping:
                    # Give back what we claimed but did not check: nothing dialled unchecked.
                    await self.leads.retry_at(
                        lead,
                        None,
                        ["dialling stopped before the check"],
                        counted=False,
                        now=self.clock.wall(),
                    )
                    return
                try:
                    await self._place(run, lead)
                except Exception as exc:
                    # A store failed outside the gate (database gone): stop dialling rather
                    # than crash; the claimed lead is given back by the next start-up.
                    logger.exception("placing a call failed")
                    self._halt(f"dialling stopped: {type(exc).__name__}: {exc}")

        async with asyncio.TaskGroup() as tg:
            for lead in leads:
                tg.create_task(place(lead))

    async def _place(self, run: CampaignRun, lead: DialLead) -> None:
        attempt_id = new_attempt_id()
        channel_id = CUSTOMER_PREFIX + attempt_id
        wall = self.clock.wall()
        caller_id = presented_caller_id(lead, run.plan.caller_id)
        self._pending_leads[attempt_id] = lead
        try:
            await self.attempts.insert(
                AttemptRecord(
                    attempt_id=attempt_id,
                    campaign=run.plan.name,
                    lead_id=lead.lead_id,
                    number=lead.number,
                    product=lead.product or run.plan.default_product,
                    channel_id=channel_id,
                    stage=Stage.RESERVING,
                    phase=fsm.Phase.RESERVED,
                    created_at=wall,
                    updated_at=wall,
                    try_no=lead.attempts + 1,
                )
            )
            try:
                decision = await self.gate.check_and_reserve(
                    lead.number,
                    run.plan.name,
                    lead.product or run.plan.default_product,
                    wall,
                    attempt_id=attempt_id,
                    caller_id=caller_id,
                    is_callback=lead.is_callback,
                    dialled_number=lead.dialled_number,
                    segment=lead.segment,
                    assigned_at=lead.assigned_at,
                )
            except GateUnavailable as exc:
                self._halt(f"compliance gate unavailable, dialling stopped: {exc}")
                await self.attempts.update(
                    attempt_id,
                    self.clock.wall(),
                    stage=Stage.DONE,
                    outcome=DialOutcome.CANCELLED.value,
                    reasons=f"gate unavailable: {exc}",
                )
                await self.leads.retry_at(
                    lead,
                    None,
                    ["compliance gate unavailable"],
                    counted=False,
                    now=self.clock.wall(),
                )
                return
            if not decision.allowed:
                await self._refused(lead, attempt_id, decision)
                return
            await self.attempts.update(attempt_id, self.clock.wall(), stage=Stage.ORIGINATING)
            params = fsm.CallParams(
                attempt_id=attempt_id,
                channel_id=channel_id,
                endpoint=self.config.customer_endpoint.format(number=lead.number),
                caller_id=caller_id,
                ring_timeout=run.plan.ring_timeout,
                amd=self.config.amd,
                connect_limit=self.config.connect_limit,
                amd_after_greeting=self.config.amd_after_greeting_ms / 1000.0,
                abandon_media=self.config.abandon_media,
                max_originate_tries=self.config.max_originate_tries,
                originate_backoff=self.config.originate_backoff,
                recording_format=self.config.recording_format,
            )
            if self.config.abandon_context:
                params = replace(params, abandon_message_limit=self.config.abandon_dialplan_limit)
            self.calls[attempt_id] = LiveCall(fsm.new_call(params), lead, run.plan.name, wall)
            run.calls_placed += 1
        finally:
            self._pending_leads.pop(attempt_id, None)
        logger.info(
            "attempt %s: dialling %s (campaign %s, try %d)",
            attempt_id,
            mask(lead.number),
            run.plan.name,
            lead.attempts + 1,
        )
        await self._apply(attempt_id, fsm.Start())

    async def _refused(self, lead: DialLead, attempt_id: str, decision: Decision) -> None:
        codes = [c.value for c in decision.codes]
        logger.info(
            "attempt %s: gate refused %s: %s", attempt_id, mask(lead.number), ",".join(codes)
        )
        now = self.clock.wall()
        await self.attempts.update(attempt_id, now, stage=Stage.REFUSED, reasons=",".join(codes))
        if decision.retry_at is not None:
            await self.leads.retry_at(lead, decision.retry_at, codes, counted=False, now=now)
        else:
            await self.leads.refuse(lead, codes, now=now)

    def _halt(self, message: str) -> None:
        if self.halted is None:
            logger.error("%s", message)
        self.halted = message
        for run in self.campaigns.values():
            run.dialling = False

    # ------------------------------------------------------------ ARI events -> calls
    async def _on_ari(self, ev: AriEvent) -> None:
        if isinstance(ev, Dial):
            attempt = _attempt_of(ev.peer.id)
            if attempt is not None:
                await self._apply(attempt, fsm.DialSeen(ev.dialstatus))
            return
        if isinstance(ev, (RecordingStarted, RecordingFinished, RecordingFailed)):
            await self._on_recording(ev)
            return
        if isinstance(ev, PlaybackFinished):
            pid = ev.playback.id
            if pid.startswith("ab-"):
                await self._apply(pid[3:], fsm.PlaybackDone(pid))
            return
        channel_id = ev.channel_id
        if channel_id is None:
            return
        if channel_id.startswith(AGENT_PREFIX):
            await self._on_agent_channel(ev, channel_id)
            return
        attempt = _attempt_of(channel_id)
        if attempt is None:
            return
        if isinstance(ev, StasisStart):
            await self._apply(attempt, fsm.StasisStarted(ev.args))
        elif isinstance(ev, ChannelHangupRequest):
            await self._apply(attempt, fsm.HangupRequested(ev.cause, ev.soft))
        elif isinstance(ev, ChannelDestroyed):
            await self._apply(attempt, fsm.ChannelGone(ev.cause))

    async def _on_recording(
        self, ev: RecordingStarted | RecordingFinished | RecordingFailed
    ) -> None:
        name = ev.recording.name
        if not name.startswith("rec-"):
            return
        attempt = name[4:]
        if isinstance(ev, RecordingStarted):
            await self._apply(attempt, fsm.RecordingStarted(name))
            return
        duration = float(ev.recording.duration) if ev.recording.duration is not None else None
        if isinstance(ev, RecordingFailed):
            logger.error("attempt %s: recording %s failed: %s", attempt, name, ev.recording.cause)
        await self._apply(attempt, fsm.RecordingFinished(name, duration))

    async def _on_agent_channel(self, ev: AriEvent, channel_id: str) -> None:
        agent_id = self._agent_of_channel(channel_id)
        if agent_id is None:
            return
        run = self.campaigns[self._agent_campaign[agent_id]]
        now = self.clock.now()
        if isinstance(ev, StasisStart):
            agent = run.pool.get(agent_id)
            if agent is None or agent.channel_id != channel_id:
                await self._safe_hangup(channel_id)
                return
            try:
                await self.control.add_to_bridge(agent.bridge_id, channel_id)
            except AriError as exc:
                logger.error(
                    "agent %s: cannot put the softphone in %s: %s", agent_id, agent.bridge_id, exc
                )
                await self._safe_hangup(channel_id)
                return
            run.pool.channel_answered(channel_id, now)
            logger.info("agent %s: softphone up in %s", agent_id, agent.bridge_id)
            await self._serve_waiting(run)
            self._wake.set()
        elif isinstance(ev, (ChannelDestroyed, StasisEnd)):
            agent = run.pool.agent_for_channel(channel_id)
            if agent is None or agent.channel_id != channel_id:
                return
            attempt = agent.attempt_id
            run.pool.channel_lost(channel_id, now)
            logger.info("agent %s: softphone gone", agent_id)
            if attempt is not None:
                await self._apply(attempt, fsm.AgentGone())

    def _agent_of_channel(self, channel_id: str) -> str | None:
        for run in self.campaigns.values():
            agent = run.pool.agent_for_channel(channel_id)
            if agent is not None:
                return agent.agent_id
        return None

    # ------------------------------------------------------------ FSM plumbing
    async def _apply(self, attempt_id: str, ev: fsm.Event) -> None:
        call = self.calls.get(attempt_id)
        if call is None:
            return
        now = self.clock.now()
        call.state, cmds = fsm.step(call.state, ev, now)
        for cmd in cmds:
            await self._execute(call, cmd)
        if call.state.terminal and call.finished:
            if not call.recording_expected or call.state.recording_done:
                self._forget(call)
            elif call.recording_guard is None:
                # RecordingFinished may be lost (socket gap): do not wait for it forever.
                call.recording_guard = asyncio.get_running_loop().call_later(
                    self.config.recording_wait,
                    self._queue.put_nowait,
                    ("recording_wait", attempt_id),
                )

    async def _dial_guard_expired(self, attempt_id: str) -> None:
        call = self.calls.get(attempt_id)
        if call is None or call.state.phase not in (fsm.Phase.DIALING, fsm.Phase.RINGING):
            return
        if not await self.control.channel_exists(call.state.params.channel_id):
            logger.warning("attempt %s: channel gone without its events; finalized", attempt_id)
            await self._apply(attempt_id, fsm.Vanished())

    async def _recording_wait_expired(self, attempt_id: str) -> None:
        call = self.calls.get(attempt_id)
        if call is None or call.state.recording_done:
            return
        name = call.state.params.recording_name
        logger.warning(
            "attempt %s: end of recording %s not seen; recorded by name", attempt_id, name
        )
        await self.attempts.update(
            attempt_id, self.clock.wall(), recording=name, reasons="recording end not seen"
        )
        self._forget(call)

    def _forget(self, call: LiveCall) -> None:
        if call.recording_guard is not None:
            call.recording_guard.cancel()
        if call.dial_guard is not None:
            call.dial_guard.cancel()
        for handle in call.timers.values():
            handle.cancel()
        call.timers.clear()
        self.calls.pop(call.state.params.attempt_id, None)
        if not self.calls:
            self._idle.set()

    async def _execute(self, call: LiveCall, cmd: fsm.Command) -> None:  # noqa: C901
        p = call.state.params
        if isinstance(cmd, fsm.Originate):
            await self._originate(call, cmd)
        elif isinstance(cmd, fsm.Hangup):
            logger.info("attempt %s: hangup (%s)", p.attempt_id, cmd.reason)
            await self._safe_hangup(cmd.channel_id)
        elif isinstance(cmd, fsm.AddToBridge):
            try:
                await self.control.add_to_bridge(cmd.bridge_id, cmd.channel_id)
            except AriError as exc:
                # Typically the customer hung up a moment ago.
                logger.info("attempt %s: addChannel failed: %s", p.attempt_id, exc)
                await self._apply(p.attempt_id, fsm.BridgeFailed(str(exc)))
            else:
                await self._apply(p.attempt_id, fsm.Bridged())
        elif isinstance(cmd, fsm.StartRecording):
            call.recording_expected = True
            try:
                await self.control.record_bridge(cmd.bridge_id, cmd.name, cmd.format)
            except AriError as exc:
                call.recording_expected = False
                # No recording, no call (art. 30): the evidence must exist.
                logger.error("attempt %s: recording failed, hanging up: %s", p.attempt_id, exc)
                await self._safe_hangup(p.channel_id)
        elif isinstance(cmd, fsm.StopRecording):
            if not call.recording_expected:
                return
            try:
                await self.control.stop_recording(cmd.name)
            except AriError as exc:
                logger.warning("attempt %s: stop recording %s: %s", p.attempt_id, cmd.name, exc)
        elif isinstance(cmd, fsm.PlayAbandonMessage):
            logger.info(
                "attempt %s: no agent within %.1fs, abandon message", p.attempt_id, p.connect_limit
            )
            try:
                if self.config.abandon_context:
                    # The dialplan plays the message and offers the opt-out; the call
                    # ends with its ChannelDestroyed (or the abandon_dialplan_limit).
                    assert isinstance(self.control, DialplanHandoff)
                    await self.control.continue_in_dialplan(
                        cmd.channel_id, self.config.abandon_context, "s", 1
                    )
                else:
                    await self.control.play(cmd.channel_id, cmd.media, cmd.playback_id)
            except AriError as exc:
                logger.warning("attempt %s: abandon message failed: %s", p.attempt_id, exc)
                await self._safe_hangup(cmd.channel_id)
        elif isinstance(cmd, fsm.StartTimer):
            self._start_timer(call, cmd)
        elif isinstance(cmd, fsm.CancelTimer):
            handle = call.timers.pop(cmd.timer, None)
            if handle is not None:
                handle.cancel()
        elif isinstance(cmd, fsm.RequestAgent):
            await self._request_agent(call)
        elif isinstance(cmd, fsm.CancelAgentRequest):
            run = self.campaigns[call.campaign]
            if p.attempt_id in run.waiting:
                run.waiting.remove(p.attempt_id)
        elif isinstance(cmd, fsm.ReleaseAgent):
            run = self.campaigns[call.campaign]
            run.pool.unassign(cmd.agent_id, p.attempt_id, self.clock.now())
            await self._serve_waiting(run)
        elif isinstance(cmd, fsm.DialEnded):
            await self._dial_ended(call, cmd)
        elif isinstance(cmd, fsm.TalkEnded):
            await self._talk_ended(call, cmd)
        elif isinstance(cmd, fsm.CallFinished):
            await self._call_finished(call, cmd)
        elif isinstance(cmd, fsm.RecordingDone):
            await self._recording_done(call, cmd)
        elif isinstance(cmd, fsm.Log):
            logger.info("attempt %s: %s", p.attempt_id, cmd.message)

    def _start_timer(self, call: LiveCall, cmd: fsm.StartTimer) -> None:
        old = call.timers.pop(cmd.timer, None)
        if old is not None:
            old.cancel()
        delay = max(0.0, cmd.at - self.clock.now())
        attempt = call.state.params.attempt_id
        call.timers[cmd.timer] = asyncio.get_running_loop().call_later(
            delay, self._queue.put_nowait, ("call", (attempt, fsm.TimerFired(cmd.timer)))
        )

    async def _originate(self, call: LiveCall, cmd: fsm.Originate) -> None:
        p = call.state.params
        self.originates_sent += 1
        try:
            await self.control.originate(
                channel_id=cmd.channel_id,
                endpoint=cmd.endpoint,
                caller_id=cmd.caller_id,
                ring_timeout=cmd.timeout,
                app_args=("customer", call.campaign, p.attempt_id),
                # Read by the dialplan: [dialer-abandon] passes them to the optout AGI,
                # [dialer-amd] logs the attempt. DIALER_ATTEMPT is the older name.
                variables={
                    "DIALER_CAMPAIGN": call.campaign,
                    "DIALER_ATTEMPT_ID": p.attempt_id,
                    "DIALER_ATTEMPT": p.attempt_id,
                    "DIALER_NUMBER": call.lead.number,
                    "DIALER_AMD_AFTER_GREETING_MS": str(self.config.amd_after_greeting_ms),
                },
                amd=cmd.amd,
            )
        except ChannelEndedEarly as exc:
            logger.info(
                "attempt %s: ended before its events could be followed: %s", p.attempt_id, exc
            )
            await self._apply(p.attempt_id, fsm.OriginateAccepted())
            await self._apply(p.attempt_id, fsm.Vanished())
            return
        except AriError as exc:
            status = exc.status if exc.status is not None else 0
            logger.warning("attempt %s: originate failed: %s", p.attempt_id, exc)
            await self._apply(p.attempt_id, fsm.OriginateFailed(status, exc.message))
            return
        await self._apply(p.attempt_id, fsm.OriginateAccepted())
        # Guard: a call whose end we never hear about (lost events) is checked after
        # its ring timeout, and finalized if Asterisk no longer has it.
        guard = cmd.timeout + self.config.dial_guard
        call.dial_guard = asyncio.get_running_loop().call_later(
            guard, self._queue.put_nowait, ("dial_guard", p.attempt_id)
        )

    async def _safe_hangup(self, channel_id: str) -> None:
        try:
            await self.control.hangup(channel_id)
        except AriError as exc:
            logger.warning("hangup %s failed: %s", channel_id, exc)

    async def _request_agent(self, call: LiveCall) -> None:
        run = self.campaigns[call.campaign]
        attempt = call.state.params.attempt_id
        agent = run.pool.assign(attempt, self.clock.now())
        if agent is None:
            run.waiting.append(attempt)
            return
        await self._connect(call, agent)

    async def _connect(self, call: LiveCall, agent: Agent) -> None:
        call.connected_wall = self.clock.wall()
        logger.info(
            "attempt %s: connected to agent %s", call.state.params.attempt_id, agent.agent_id
        )
        await self._apply(
            call.state.params.attempt_id, fsm.AgentAssigned(agent.agent_id, agent.bridge_id)
        )

    async def _serve_waiting(self, run: CampaignRun) -> None:
        while run.waiting:
            attempt = run.waiting[0]
            call = self.calls.get(attempt)
            if call is None or call.state.phase is not fsm.Phase.ANSWERED:
                run.waiting.popleft()
                continue
            agent = run.pool.assign(attempt, self.clock.now())
            if agent is None:
                return
            run.waiting.popleft()
            await self._connect(call, agent)

    async def _dial_ended(self, call: LiveCall, cmd: fsm.DialEnded) -> None:
        run = self.campaigns[call.campaign]
        run.pacer.on_dial(
            DialResult(
                at=self.clock.now(),
                ring_seconds=cmd.ring_seconds,
                answered=cmd.answered,
                abandoned=cmd.abandoned,
            )
        )
        # Written with the end of the call (one transaction per call, not per step),
        # except an answer: a restarted dialer must know a person was reached.
        call.ring_seconds = cmd.ring_seconds
        call.answered = cmd.answered
        if cmd.answered:
            self._lanes.submit(
                call.state.params.attempt_id,
                partial(
                    self.attempts.update,
                    call.state.params.attempt_id,
                    self.clock.wall(),
                    answered=True,
                    ring_seconds=cmd.ring_seconds,
                    phase=call.state.phase.value,
                ),
            )
        self._wake.set()

    async def _talk_ended(self, call: LiveCall, cmd: fsm.TalkEnded) -> None:
        run = self.campaigns[call.campaign]
        attempt = call.state.params.attempt_id
        agent = run.pool.get(cmd.agent_id)
        if agent is not None and agent.attempt_id == attempt:
            run.pool.call_ended(cmd.agent_id, attempt, self.clock.now())
        run.awaiting_disposition[attempt] = cmd.agent_id
        call.talk_seconds = cmd.talk_seconds

    async def _call_finished(self, call: LiveCall, cmd: fsm.CallFinished) -> None:
        call.finished = True
        if cmd.connected:
            # The agent's disposition closes the lead (it waits for this lane's writes).
            self._disp_leads[call.state.params.attempt_id] = call.lead
        snapshot = _Finish(
            phase=call.state.phase.value,
            agent_id=call.state.agent_id,
            connected_wall=call.connected_wall,
            ring_seconds=call.ring_seconds,
            talk_seconds=call.talk_seconds,
            answered=call.answered,
        )
        self._lanes.submit(
            call.state.params.attempt_id, partial(self._write_finish, call, cmd, snapshot)
        )
        self._wake.set()

    async def _write_finish(self, call: LiveCall, cmd: fsm.CallFinished, snap: _Finish) -> None:
        p = call.state.params
        wall = self.clock.wall()
        outcome = ledger_outcome(cmd.outcome)
        try:
            await self.ledger.resolve(p.attempt_id, outcome)
        except UnknownAttempt:
            logger.error("attempt %s: the ledger never reserved it", p.attempt_id)
        except GateUnavailable as exc:
            # The attempt stays RESERVED in the ledger (it still counts): safe.
            self._halt(f"contact ledger unavailable, dialling stopped: {exc}")
        await self.attempts.update(
            p.attempt_id,
            wall,
            stage=Stage.DONE,
            phase=snap.phase,
            outcome=cmd.outcome.value,
            connected=cmd.connected,
            abandoned=cmd.abandoned,
            agent_id=snap.agent_id,
            connected_at=snap.connected_wall,
            ended_at=wall,
            ring_seconds=snap.ring_seconds,
            talk_seconds=snap.talk_seconds,
            answered=snap.answered,
        )
        logger.info(
            "attempt %s: ended %s%s",
            p.attempt_id,
            cmd.outcome.value,
            " (abandoned)" if cmd.abandoned else "",
        )
        run = self.campaigns[call.campaign]
        nxt = after_dial(
            cmd.outcome,
            connected=cmd.connected,
            tries_before=call.lead.attempts,
            rules=run.plan.retry,
            now=wall,
        )
        if nxt.kind is NextKind.AWAIT_DISPOSITION:
            pass  # the agent's disposition closes the lead
        elif nxt.kind is NextKind.RETRY:
            await self.leads.retry_at(
                call.lead, nxt.at, [nxt.reason], counted=nxt.counted, now=wall
            )
        elif nxt.kind is NextKind.DONE:
            await self.leads.finish(call.lead, [nxt.reason], counted=nxt.counted, now=wall)
        else:
            await self.leads.refuse(call.lead, [nxt.reason], now=wall)
        self._wake.set()

    async def _recording_done(self, call: LiveCall, cmd: fsm.RecordingDone) -> None:
        ended = self.clock.wall()
        self._lanes.submit(
            call.state.params.attempt_id, partial(self._write_recording, call, cmd, ended)
        )

    async def _write_recording(
        self, call: LiveCall, cmd: fsm.RecordingDone, ended: datetime
    ) -> None:
        p = call.state.params
        await self.attempts.update(
            p.attempt_id, self.clock.wall(), recording=cmd.name, recording_seconds=cmd.duration
        )
        if self.recordings is not None:
            await self.recordings.recording_finished(
                FinishedRecording(
                    attempt_id=p.attempt_id,
                    name=cmd.name,
                    fmt=p.recording_format,
                    duration=cmd.duration,
                    campaign=call.campaign,
                    number=call.lead.number,
                    agent_id=call.state.agent_id,
                    started_at=call.connected_wall or call.started_wall,
                    ended_at=ended,
                )
            )

    # ------------------------------------------------------------ agents (API)
    async def agent_login(self, agent_id: str, campaign: str, endpoint: str | None = None) -> Agent:
        return await self.call_in_dispatcher(
            lambda: self._agent_login(agent_id, campaign, endpoint)
        )

    async def _agent_login(self, agent_id: str, campaign: str, endpoint: str | None) -> Agent:
        run = self._run(campaign)
        other = self._agent_campaign.get(agent_id)
        if other is not None and other != campaign:
            prev = self.campaigns[other].pool.get(agent_id)
            if prev is not None and prev.status is not AgentStatus.OFFLINE:
                raise ValueError(f"agent {agent_id} is logged in to campaign {other!r}")
        self._agent_campaign[agent_id] = campaign
        ep = endpoint or self.config.agent_endpoint.format(agent=agent_id)
        agent = run.pool.login(agent_id, ep, self.clock.now())
        if agent.status is AgentStatus.CONNECTING:
            try:
                await self._call_softphone(agent, run)
            except AriError:
                run.pool.logout(agent_id, self.clock.now())  # nothing half-done stays
                raise
        return agent

    async def _call_softphone(self, agent: Agent, run: CampaignRun) -> None:
        """Create the agent's bridge and call the softphone once (it stays up: nailed up)."""
        await self.control.ensure_bridge(agent.bridge_id)
        await self.control.originate(
            channel_id=agent.channel_id,
            endpoint=agent.endpoint,
            caller_id=run.plan.caller_id,
            ring_timeout=30,
            app_args=("agent", agent.agent_id),
            variables={"DIALER_AGENT": agent.agent_id},
            amd=False,
        )

    async def agent_ready(self, agent_id: str) -> AgentRefusal | None:
        async def go() -> AgentRefusal | None:
            run = self._agent_run(agent_id)
            if run is None:
                return AgentRefusal.UNKNOWN_AGENT
            res = run.pool.set_ready(agent_id, self.clock.now())
            await self._serve_waiting(run)
            self._wake.set()
            return res

        return await self.call_in_dispatcher(go)

    async def agent_pause(self, agent_id: str) -> AgentRefusal | None:
        async def go() -> AgentRefusal | None:
            run = self._agent_run(agent_id)
            if run is None:
                return AgentRefusal.UNKNOWN_AGENT
            return run.pool.pause(agent_id, self.clock.now())

        return await self.call_in_dispatcher(go)

    async def agent_logout(self, agent_id: str) -> AgentRefusal | None:
        async def go() -> AgentRefusal | None:
            run = self._agent_run(agent_id)
            if run is None:
                return AgentRefusal.UNKNOWN_AGENT
            res, channel = run.pool.logout(agent_id, self.clock.now())
            if channel is not None:
                await self._safe_hangup(channel)
            return res

        return await self.call_in_dispatcher(go)

    async def agent_hangup(self, agent_id: str) -> AgentRefusal | None:
        """The agent ends the current call (the softphone stays up in its bridge)."""

        async def go() -> AgentRefusal | None:
            run = self._agent_run(agent_id)
            agent = run.pool.get(agent_id) if run is not None else None
            if agent is None:
                return AgentRefusal.UNKNOWN_AGENT
            if agent.attempt_id is None:
                return AgentRefusal.NOT_LOGGED_IN if agent.status is AgentStatus.OFFLINE else None
            await self._apply(agent.attempt_id, fsm.EndRequested("agent ended the call"))
            return None

        return await self.call_in_dispatcher(go)

    def _agent_run(self, agent_id: str) -> CampaignRun | None:
        name = self._agent_campaign.get(agent_id)
        return self.campaigns.get(name) if name is not None else None

    async def disposition(
        self, agent_id: str, req: DispositionRequest, attempt_id: str | None = None
    ) -> DispositionPlan | DispositionRejected:
        """Validate and apply an agent's disposition; returns once it is stored."""

        async def go() -> tuple[DispositionPlan | DispositionRejected, asyncio.Future[None] | None]:
            return await self._disposition(agent_id, req, attempt_id)

        result, written = await self.call_in_dispatcher(go)
        if written is not None:
            await written
        return result

    async def _disposition(
        self, agent_id: str, req: DispositionRequest, attempt_id: str | None
    ) -> tuple[DispositionPlan | DispositionRejected, asyncio.Future[None] | None]:
        """In the dispatcher, without waiting for the database: validate, free the agent,
        and queue the writes behind the end-of-call writes of the same attempt."""
        run = self._agent_run(agent_id)
        if run is None:
            return DispositionRejected("agent", f"agent {agent_id} is not logged in"), None
        target = attempt_id
        if target is None:
            for att, ag in run.awaiting_disposition.items():
                if ag == agent_id:
                    target = att
                    break
        if target is None or run.awaiting_disposition.get(target) != agent_id:
            return DispositionRejected(
                "attempt", f"agent {agent_id} has no call awaiting a disposition"
            ), None
        lead = self._disp_leads.get(target)
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
        wall = self.clock.wall()
        result = plan(req, ctx, wall)
        if isinstance(result, DispositionRejected):
            return result, None
        written = self._lanes.submit(
            target, partial(self._apply_disposition, result, ctx, lead, target, wall)
        )
        run.awaiting_disposition.pop(target, None)
        self._disp_leads.pop(target, None)
        agent = run.pool.get(agent_id)
        if (
            agent is not None
            and agent.status is AgentStatus.WRAPUP
            and agent.last_attempt_id == target
        ):
            await self._wrap_done(run, agent_id)
        self._idle.set()
        return result, written

    async def _apply_disposition(
        self,
        result: DispositionPlan,
        ctx: CallContext,
        lead: DialLead,
        attempt_id: str,
        wall: datetime,
    ) -> None:
        if result.refusal_product is not None:
            await self.ledger.record_refusal(
                ctx.number, ctx.campaign, result.refusal_product, wall, attempt_id
            )
        if result.add_to_dnc:
            await self.dnc.add_do_not_call(ctx.number, result.dnc_reason, wall)
        await self.attempts.update(
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
            await self.leads.callback_at(lead, result.next_attempt_at, now=wall)
        elif result.lead_status in (LeadStatus.DO_NOT_CALL, LeadStatus.WRONG_NUMBER):
            await self.leads.refuse(lead, [reason], now=wall)
        else:
            await self.leads.finish(lead, [reason], counted=True, now=wall)
        logger.info("attempt %s: %s", attempt_id, reason)

    async def _wrap_done(self, run: CampaignRun, agent_id: str) -> None:
        agent = run.pool.get(agent_id)
        now = self.clock.now()
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
            await self._safe_hangup(channel)
        await self._serve_waiting(run)
        self._wake.set()

    async def _wrapup_timeout(self, agent_id: str, why: str = "wrap-up limit") -> None:
        run = self._agent_run(agent_id)
        if run is None:
            return
        agent = run.pool.get(agent_id)
        if agent is None or agent.status is not AgentStatus.WRAPUP:
            return
        attempt = agent.last_attempt_id
        if attempt is not None and run.awaiting_disposition.get(attempt) == agent_id:
            logger.warning("agent %s: %s without a disposition; no decision", agent_id, why)
            await self._disposition(agent_id, DispositionRequest("no_decision", note=why), attempt)
        else:
            await self._wrap_done(run, agent_id)

    # ------------------------------------------------------------ reconcile and recovery
    async def _reconcile(self, states: dict[str, str]) -> None:
        """Compare with the channels Asterisk has (after a reconnect or at start-up)."""
        ids = set(states)
        vanished = 0
        for attempt, call in list(self.calls.items()):
            st = call.state
            if st.terminal or st.phase is fsm.Phase.RESERVED:
                continue
            cid = st.params.channel_id
            if cid not in ids and (st.originate_accepted or st.saw_event):
                vanished += 1
                await self._apply(attempt, fsm.Vanished())
            elif states.get(cid) == "Up" and st.phase in (fsm.Phase.DIALING, fsm.Phase.RINGING):
                # Answered while we were not listening (its StasisStart is lost):
                # a person is waiting, connect them now or abandon within the limit.
                await self._apply(attempt, fsm.StasisStarted(("customer", "reconciled")))
        known_agents = {
            a.channel_id
            for run in self.campaigns.values()
            for a in run.pool.agents()
            if a.status is not AgentStatus.OFFLINE
        }
        for run in self.campaigns.values():
            for agent in run.pool.agents():
                if (
                    agent.status is not AgentStatus.OFFLINE
                    and agent.channel_up
                    and agent.channel_id not in ids
                ):
                    attempt2 = agent.attempt_id
                    run.pool.channel_lost(agent.channel_id, self.clock.now())
                    if attempt2 is not None:
                        await self._apply(attempt2, fsm.AgentGone())
        orphans = 0
        live_channels = {c.state.params.channel_id for c in self.calls.values()}
        for cid in ids:
            base = cid.split(";", 1)[0]
            if base.startswith(CUSTOMER_PREFIX) and base not in live_channels and cid == base:
                orphans += 1
                await self._safe_hangup(cid)
            elif base.startswith(AGENT_PREFIX) and base not in known_agents and cid == base:
                orphans += 1
                await self._safe_hangup(cid)
        if vanished or orphans:
            logger.warning(
                "reconcile: %d attempts finalized, %d orphan channels hung up", vanished, orphans
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
        ids = await self.control.channel_ids()
        count = 0
        for rec in await self.attempts.unfinished():
            count += 1
            wall = self.clock.wall()
            lead = _recovered_lead(rec)
            if rec.channel_id in ids:
                await self._safe_hangup(rec.channel_id)
            if rec.stage == Stage.RESERVING:
                outcome = DialOutcome.CANCELLED
            elif rec.answered:
                outcome = DialOutcome.ANSWERED
            else:
                outcome = DialOutcome.NO_ANSWER
            outcome = await self._resolve_recovered(rec.attempt_id, outcome)
            await self.attempts.update(
                rec.attempt_id,
                wall,
                stage=Stage.DONE,
                outcome=outcome.value,
                reasons="recovered after restart",
            )
            run = self.campaigns.get(rec.campaign)
            rules: Mapping[str, RuleLike] = run.plan.retry if run is not None else {}
            nxt = after_dial(
                outcome, connected=False, tries_before=lead.attempts, rules=rules, now=wall
            )
            if nxt.kind is NextKind.RETRY:
                await self.leads.retry_at(
                    lead,
                    nxt.at,
                    ["recovered after restart", nxt.reason],
                    counted=nxt.counted,
                    now=wall,
                )
            elif nxt.kind is NextKind.DONE:
                await self.leads.finish(
                    lead, ["recovered after restart", nxt.reason], counted=True, now=wall
                )
            else:
                await self.leads.refuse(lead, [nxt.reason], now=wall)
        for rec in await self.attempts.awaiting_disposition():
            # Talked to an agent, no disposition before the crash: close the lead, never redial.
            wall = self.clock.wall()
            await self.attempts.update(
                rec.attempt_id, wall, disposition="no_decision", note="recovered after restart"
            )
            lead = _recovered_lead(rec)
            await self.leads.finish(lead, ["disposition lost in a restart"], counted=True, now=wall)
            count += 1
        for name in self.campaigns:
            # Leads claimed but never checked (the crash came between claim and check).
            released = await self.leads.release_claims(name, self.clock.wall())
            if released:
                logger.warning(
                    "recovery: %d claimed, unchecked leads of %s released", released, name
                )
        for cid in ids:
            if (cid.startswith(CUSTOMER_PREFIX) or cid.startswith(AGENT_PREFIX)) and ";" not in cid:
                await self._safe_hangup(cid)
        if count:
            logger.warning("recovery: %d unfinished attempts from a previous run finalized", count)
        return count

    # ------------------------------------------------------------ figures
    def figures(self, campaign: str) -> LiveFigures:
        run = self._run(campaign)
        snap = self.snapshot(run)
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
            halted=self.halted,
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


def _attempt_of(channel_id: str) -> str | None:
    """``dl-<attempt>`` -> attempt; the ``;2`` half and other channels -> None."""
    if channel_id.startswith(CUSTOMER_PREFIX) and ";" not in channel_id:
        return channel_id[len(CUSTOMER_PREFIX) :]
    return None


_PACER_KEYS: dict[str, tuple[str, ...]] = {
    "progressive": ("target_abandon",),
    "ratio": ("lines_per_agent", "target_abandon"),
    "predictive": ("target_abandon", "max_lines_per_agent", "window_seconds", "day_seconds"),
}


def _default_pacer(method: str, params: Mapping[str, float]) -> Pacer:
    """The pacer of a campaign. ``preview`` dials like ``progressive`` (one call per ready
    agent); the campaign file's ``ratio`` key is the ratio pacer's ``lines_per_agent``."""
    name = "progressive" if method == "preview" else method
    options = dict(params)
    if "ratio" in options:
        ratio = options.pop("ratio")
        if name == "ratio":
            options.setdefault("lines_per_agent", ratio)
    unknown = set(options) - set(_PACER_KEYS.get(name, ()))
    if unknown:
        raise ValueError(f"pacing.{sorted(unknown)[0]}: not a parameter of the {name} pacer")
    return make_pacer(name, **options)


__all__ = [
    "AttemptOutcome",
    "CampaignPlan",
    "CampaignRun",
    "GateUnavailable",
    "InboundPolicy",
    "LiveFigures",
    "Runner",
    "RunnerConfig",
]
