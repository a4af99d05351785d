"""Placement: how many calls to place (the pacer), which leads, the gate, the originate.

The pacing loop asks each dialling campaign's pacer for a number of calls,
claims that many leads and places each: the attempt row is written first
(``dl-<attempt>`` channel id, so events that beat the HTTP reply still route
and a restarted process knows every call it may have placed), then the gate
checks and reserves, then the call's state machine starts and its
``Originate`` command comes back here. An originate 5xx (Asterisk answered: no
channel) is retried by the FSM with the same channel id; an originate whose
answer was lost is never sent again: Asterisk is asked whether the channel
exists (``ResolveOriginate``). A call we hear nothing about is checked after
its ring timeout (the dial guard). Dial results feed the pacer; the PBX's
delays (originate answers, customers entering the agent's bridge) hold back
what the pacer asks for (``dialer.backpressure``), with the reason logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from agi_scripts import variables as var
from compliance.model import Decision
from compliance.numbers import mask
from dialer import fsm
from dialer.agent_pool import AgentRefusal
from dialer.ari.errors import AriError
from dialer.attempts import AttemptRecord, Stage
from dialer.calls.book import CallBook, CampaignRun, InboundPolicy, LiveCall
from dialer.calls.control import CallFlow, CommandHandler
from dialer.calls.messages import DialGuardExpired
from dialer.ids import CUSTOMER_PREFIX, new_attempt_id
from dialer.legs import CustomerLeg, OriginateRefused
from dialer.outcomes import DialOutcome
from dialer.pacing import DialResult, Pacer, PacingSnapshot, make_pacer
from dialer.ports import DialLead, GateUnavailable

logger = logging.getLogger(__name__)
PREVIEW = "preview"

# What a call without the gate's decision carries: the call-control port refuses it.
NO_DECISION = Decision(allowed=False)


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


def snapshot(book: CallBook, run: CampaignRun) -> PacingSnapshot:
    """What the pacer sees of one campaign now."""
    now = book.clock.now()
    in_flight = []
    waiting = 0
    for call in book.calls.values():
        if call.campaign != run.plan.name:
            continue
        st = call.state
        if st.phase in (fsm.Phase.RESERVED, fsm.Phase.DIALING, fsm.Phase.RINGING):
            in_flight.append(now - (st.placed_at if st.placed_at is not None else now))
        elif st.phase in (fsm.Phase.ANSWERED, fsm.Phase.DETECTING):
            # A call in AMD may be a person who needs an agent in a moment.
            waiting += 1
    in_flight.extend(0.0 for lead in book.pending_leads.values() if lead.campaign == run.plan.name)
    return PacingSnapshot(
        now=now,
        agents_ready=run.pool.ready_count(),
        agents_talking=run.pool.talking_ages(now),
        agents_wrapping=run.pool.wrapping_ages(now),
        dials_in_flight=tuple(in_flight),
        customers_waiting=waiting,
    )


class Placement:
    """Pacing, lead claims, the gate's check-and-reserve, originate and its guard."""

    def __init__(self, book: CallBook, flow: CallFlow) -> None:
        self.book = book
        self.flow = flow

    def commands(self) -> dict[type[Any], CommandHandler]:
        return {
            fsm.Originate: self._originate,
            fsm.ResolveOriginate: self._resolve_originate,
            fsm.DialEnded: self._dial_ended,
            fsm.Connected: self._connected,
        }

    async def pacing_loop(self, *, burst: bool, drained: Callable[[], bool]) -> None:
        """Place calls until stopped (with ``burst``: until ``drained()`` says all is done)."""
        book = self.book
        while not book.stopping:
            book.wake.clear()
            if book.halted is None:
                for run in list(book.campaigns.values()):
                    if run.dialling and not book.stopping:
                        await self.pace(run)
            if burst and drained():
                return
            try:
                await asyncio.wait_for(book.wake.wait(), book.config.tick)
            except TimeoutError:
                pass

    def _how_many(self, run: CampaignRun) -> int:
        book = self.book
        snap = snapshot(book, run)
        if book.inbound_waiting > 0:
            if book.config.inbound_policy is InboundPolicy.PAUSE:
                return 0
            wanted = snap.agents_ready - len(snap.dials_in_flight) - snap.customers_waiting
        else:
            wanted = run.pacer.calls_to_place(snap)
        throttle = book.backpressure.limit(wanted)
        was_throttled = book.throttled is not None
        book.throttled = throttle.reason
        if throttle.reason is not None and not was_throttled:
            logger.warning("campaign %s: %s", run.plan.name, throttle.reason)
        elif throttle.reason is None and was_throttled:
            logger.info("campaign %s: PBX delays back to normal, pacing as the pacer asks",
                        run.plan.name)
        return max(0, throttle.allowed)

    async def pace(self, run: CampaignRun) -> None:
        book = self.book
        if run.plan.pacing_method == PREVIEW:
            return  # agents choose each call themselves (place_for_agent)
        hours = run.plan.hours_allow
        if hours is not None and not hours(book.clock.wall()):
            return
        n = self._how_many(run)
        if n <= 0:
            return
        n = min(n, book.config.max_claim)
        try:
            leads = await book.ports.leads.claim(run.plan.name, book.clock.wall(), n)
        except GateUnavailable as exc:
            book.halt(f"lead store unavailable, dialling stopped: {exc}")
            return
        if not leads:
            if not any(c.campaign == run.plan.name for c in book.calls.values()):
                run.drained = True
            return
        run.drained = False
        limit = asyncio.Semaphore(book.config.place_concurrency)
        async with asyncio.TaskGroup() as tg:
            for lead in leads:
                tg.create_task(self._place_guarded(run, lead, limit))

    async def _place_guarded(
        self, run: CampaignRun, lead: DialLead, limit: asyncio.Semaphore
    ) -> None:
        book = self.book
        async with limit:
            if book.halted is not None or book.stopping:
                # Give back what we claimed but did not check: nothing dialled unchecked.
                await book.ports.leads.retry_at(
                    lead,
                    None,
                    ["dialling stopped before the check"],
                    counted=False,
                    now=book.clock.wall(),
                )
                return
            try:
                await self._place(run, lead)
            except Exception as exc:
                # A store failed outside the gate (database gone): stop dialling rather
                # than crash; the claimed lead is given back by the next start-up.
                logger.exception("placing a call failed")
                book.halt(f"dialling stopped: {type(exc).__name__}: {exc}")

    async def _place(self, run: CampaignRun, lead: DialLead) -> None:
        book = self.book
        attempt_id = new_attempt_id()
        book.pending_leads[attempt_id] = lead
        try:
            call = await self._check(run, lead, attempt_id)
            if not isinstance(call, LiveCall):
                return
            book.calls[attempt_id] = call
            run.calls_placed += 1
            book.placed(attempt_id, lead)
        finally:
            book.pending_leads.pop(attempt_id, None)
        logger.info(
            "attempt %s: dialling %s (campaign %s, try %d)",
            attempt_id,
            mask(lead.number),
            run.plan.name,
            lead.attempts + 1,
        )
        await self.flow.apply(attempt_id, fsm.Start())

    async def place_for_agent(
        self, run: CampaignRun, lead: DialLead, agent_id: str
    ) -> str | Decision | AgentRefusal:
        """An agent's own call to a lead they were given (preview, manual dial, their
        callback), through the same gate: the attempt id, or the gate's refusal, or why
        the agent cannot take it. The lead must be claimed; it is settled either way."""
        book = self.book
        attempt_id = new_attempt_id()
        book.pending_leads[attempt_id] = lead  # before the reserve: the screen-pop reads it
        refusal = run.pool.reserve(agent_id, attempt_id, book.clock.now())
        if refusal is not None:
            book.pending_leads.pop(attempt_id, None)
            await book.ports.leads.retry_at(
                lead,
                None,
                [f"agent {agent_id}: {refusal.value}"],
                counted=False,
                now=book.clock.wall(),
            )
            return refusal
        try:
            call = await self._check(run, lead, attempt_id)
            if not isinstance(call, LiveCall):
                run.pool.unassign(agent_id, attempt_id, book.clock.now())
                return call
            call.reserved_agent = agent_id
            book.calls[attempt_id] = call
            run.calls_placed += 1
            book.placed(attempt_id, lead)
        finally:
            book.pending_leads.pop(attempt_id, None)
        logger.info(
            "attempt %s: agent %s dials %s (campaign %s)",
            attempt_id,
            agent_id,
            mask(lead.number),
            run.plan.name,
        )
        await self.flow.apply(attempt_id, fsm.Start())
        return attempt_id

    async def _check(
        self, run: CampaignRun, lead: DialLead, attempt_id: str
    ) -> LiveCall | Decision:
        """Write the attempt row, ask the gate; the new call, or the decision that refused it
        (a gate that cannot answer refuses too, and halts dialling)."""
        book = self.book
        attempts = book.ports.attempts
        channel_id = CUSTOMER_PREFIX + attempt_id
        wall = book.clock.wall()
        caller_id = presented_caller_id(lead, run.plan.caller_id)
        product = lead.product or run.plan.default_product
        await attempts.insert(
            AttemptRecord(
                attempt_id=attempt_id,
                campaign=run.plan.name,
                lead_id=lead.lead_id,
                number=lead.number,
                product=product,
                channel_id=channel_id,
                stage=Stage.RESERVING,
                phase=fsm.Phase.RESERVED,
                created_at=wall,
                updated_at=wall,
                try_no=lead.attempts + 1,
            )
        )
        try:
            decision = await book.ports.gate.check_and_reserve(
                lead.number,
                run.plan.name,
                product,
                wall,
                attempt_id=attempt_id,
                caller_id=caller_id,
                is_callback=lead.is_callback,
                dialled_number=lead.dialled_number,
                segment=lead.segment,
                assigned_at=lead.assigned_at,
            )
        except GateUnavailable as exc:
            await self._gate_unavailable(lead, attempt_id, exc)
            return Decision(allowed=False)
        if not decision.allowed:
            await self._refused(lead, attempt_id, decision)
            return decision
        await attempts.update(attempt_id, book.clock.wall(), stage=Stage.ORIGINATING)
        params = self._params(run, lead, attempt_id, channel_id, caller_id)
        return LiveCall(fsm.new_call(params), lead, run.plan.name, wall, decision=decision)

    def _params(
        self, run: CampaignRun, lead: DialLead, attempt_id: str, channel_id: str, caller_id: str
    ) -> fsm.CallParams:
        config = self.book.config
        params = fsm.CallParams(
            attempt_id=attempt_id,
            channel_id=channel_id,
            endpoint=config.customer_endpoint.format(number=lead.number),
            caller_id=caller_id,
            ring_timeout=run.plan.ring_timeout,
            amd=config.amd,
            connect_limit=config.connect_limit,
            amd_after_greeting=config.amd_after_greeting_ms / 1000.0,
            abandon_media=config.abandon_media,
            max_originate_tries=config.max_originate_tries,
            originate_backoff=config.originate_backoff,
            originate_resolve_grace=config.originate_resolve_grace,
            recording_format=config.recording_format,
        )
        if config.abandon_context:
            params = replace(params, abandon_message_limit=config.abandon_dialplan_limit)
        return params

    async def _gate_unavailable(
        self, lead: DialLead, attempt_id: str, exc: GateUnavailable
    ) -> None:
        book = self.book
        book.halt(f"compliance gate unavailable, dialling stopped: {exc}")
        await book.ports.attempts.update(
            attempt_id,
            book.clock.wall(),
            stage=Stage.DONE,
            outcome=DialOutcome.CANCELLED.value,
            reasons=f"gate unavailable: {exc}",
        )
        await book.ports.leads.retry_at(
            lead,
            None,
            ["compliance gate unavailable"],
            counted=False,
            now=book.clock.wall(),
        )

    async def _refused(self, lead: DialLead, attempt_id: str, decision: Decision) -> None:
        book = self.book
        codes = [c.value for c in decision.codes]
        logger.info(
            "attempt %s: gate refused %s: %s", attempt_id, mask(lead.number), ",".join(codes)
        )
        now = book.clock.wall()
        await book.ports.attempts.update(
            attempt_id, now, stage=Stage.REFUSED, reasons=",".join(codes)
        )
        if decision.retry_at is not None:
            await book.ports.leads.retry_at(lead, decision.retry_at, codes, counted=False, now=now)
        else:
            await book.ports.leads.refuse(lead, codes, now=now)

    # ------------------------------------------------------------ commands
    async def _originate(self, call: LiveCall, cmd: fsm.Originate) -> None:
        book = self.book
        p = call.state.params
        book.originates_sent += 1
        leg = CustomerLeg(p.attempt_id, call.lead.number, p.caller_id, call.decision or NO_DECISION)
        book.backpressure.originate_sent()
        sent = time.monotonic()
        try:
            await book.control.originate(
                leg=leg,
                channel_id=cmd.channel_id,
                endpoint=cmd.endpoint,
                caller_id=cmd.caller_id,
                ring_timeout=cmd.timeout,
                app_args=("customer", call.campaign, p.attempt_id),
                # Read by the dialplan: [dialer-abandon] passes them to the optout AGI,
                # [dialer-amd] logs the attempt. DIALER_ATTEMPT is the older name.
                variables={
                    var.DIALER_CAMPAIGN: call.campaign,
                    var.DIALER_ATTEMPT_ID: p.attempt_id,
                    var.DIALER_ATTEMPT: p.attempt_id,
                    var.DIALER_NUMBER: call.lead.number,
                    var.DIALER_AMD_AFTER_GREETING_MS: str(book.config.amd_after_greeting_ms),
                },
            )
        except OriginateRefused as exc:
            # A broken invariant (no allowed decision for this attempt): nothing was
            # sent; the call ends as a refused originate and dialling stops.
            book.backpressure.originate_not_sent()
            logger.error("attempt %s: originate refused: %s", p.attempt_id, exc)
            book.halt(f"originate refused, dialling stopped: {exc}")
            await self.flow.apply(p.attempt_id, fsm.OriginateFailed(400, str(exc)))
            return
        except AriError as exc:
            book.backpressure.originate_answered(time.monotonic() - sent)
            status = exc.status if exc.status is not None else 0
            logger.warning("attempt %s: originate failed: %s", p.attempt_id, exc)
            await self.flow.apply(p.attempt_id, fsm.OriginateFailed(status, exc.message))
            return
        book.backpressure.originate_answered(time.monotonic() - sent)
        await self.flow.apply(p.attempt_id, fsm.OriginateAccepted())
        self._guard(call, cmd.timeout)

    def _guard(self, call: LiveCall, ring_timeout: int) -> None:
        """A call whose end we never hear about (lost events) is checked after its ring
        timeout, and finalized if Asterisk no longer has it."""
        if call.dial_guard is None:
            call.dial_guard = self.book.later(
                ring_timeout + self.book.config.dial_guard,
                DialGuardExpired(call.state.params.attempt_id),
            )

    async def _resolve_originate(self, call: LiveCall, cmd: fsm.ResolveOriginate) -> None:
        """The originate's answer was lost: ask Asterisk (GET /channels/{id}); never re-send."""
        attempt = call.state.params.attempt_id
        try:
            exists = await self.book.control.channel_exists(cmd.channel_id)
        except AriError as exc:
            await self.flow.apply(attempt, fsm.OriginateNotFound(f"cannot ask Asterisk: {exc}"))
            return
        if exists:
            await self.flow.apply(attempt, fsm.OriginateFound())
            self._guard(call, call.state.params.ring_timeout)
        else:
            await self.flow.apply(attempt, fsm.OriginateNotFound("404 from GET /channels"))

    async def _connected(self, call: LiveCall, cmd: fsm.Connected) -> None:
        book = self.book
        book.connect_waits.append((cmd.answer_to_bridge, cmd.late))
        book.backpressure.connected(
            cmd.assign_to_bridge, late=cmd.late, limit=call.state.params.connect_limit
        )
        if cmd.late:
            logger.warning(
                "attempt %s: entered the agent's bridge %.2f s after the answer, over the "
                "%.1f s limit: counted as abandoned",
                call.state.params.attempt_id,
                cmd.answer_to_bridge,
                call.state.params.connect_limit,
            )

    async def _dial_ended(self, call: LiveCall, cmd: fsm.DialEnded) -> None:
        book = self.book
        book.campaigns[call.campaign].pacer.on_dial(
            DialResult(
                at=book.clock.now(),
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
            attempt = call.state.params.attempt_id
            book.lanes.submit(
                attempt,
                partial(
                    book.ports.attempts.update,
                    attempt,
                    book.clock.wall(),
                    answered=True,
                    ring_seconds=cmd.ring_seconds,
                    phase=call.state.phase.value,
                ),
            )
        book.wake.set()


_PACER_KEYS: dict[str, tuple[str, ...]] = {
    "progressive": ("target_abandon",),
    "ratio": ("lines_per_agent", "target_abandon"),
    "predictive": ("target_abandon", "max_lines_per_agent", "window_seconds", "day_seconds"),
}


def default_pacer(method: str, params: Mapping[str, float]) -> Pacer:
    """The pacer of a campaign (a ``preview`` campaign is never paced: its agents choose
    each call; it keeps a progressive pacer for the figures); the campaign file's ``ratio``
    key is the ratio pacer's ``lines_per_agent``."""
    name = "progressive" if method == PREVIEW else method
    options = dict(params)
    if "ratio" in options:
        ratio = options.pop("ratio")
        if name == "ratio":
            options.setdefault("lines_per_agent", ratio)
    unknown = set(options) - set(_PACER_KEYS.get(name, ()))
    if unknown:
        raise ValueError(f"pacing.{sorted(unknown)[0]}: not a parameter of the {name} pacer")
    return make_pacer(name, **options)
