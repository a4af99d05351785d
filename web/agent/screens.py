"""The agents' screens: what each one shows now, and the pushes when it changes.

``AgentScreens`` follows the dialer's agent pool (``Runner.agent_listeners``:
told of every agent state change, in the dispatcher) and publishes typed
messages on the topic ``agent:<id>``: the agent's state at once, and the
screen-pop when a customer is put through to the agent. The pop needs the
lead, the customer's contact history and the campaign's script (database
reads), so the listener only queues it; ``run`` (started and stopped with the
web app) builds and pushes it. When the wrap-up ends the customer's data
leaves the screen: an empty ``Customer`` replaces it, in the browser and in
the outbox of a page that has not received it yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aiohttp import web

from compliance.model import ContactEvent, ContactKind
from compliance.numbers import mask
from dialer.agent_pool import Agent, AgentStatus
from dialer.desk_records import PauseCode
from dialer.ports import DialLead
from web.agent.messages import AgentState, Callbacks, Customer, Preview
from web.agent.script import PARTS, Script, ScriptError, filled_parts, parse_script
from web.hub import Hub, Message
from web.i18n import I18n

if TYPE_CHECKING:
    from dialer.app import DialerStack

logger = logging.getLogger(__name__)
POP_WORKERS = 4
PREPARED_LIMIT = 2000  # pops prepared for ringing calls, at most
CALLBACK_SCAN = 10.0  # seconds between looks for callbacks that became due
HISTORY_SHOWN = 10
# A pause asked for without a code (the JSON API, an older client) is recorded as such.
UNSPECIFIED_PAUSE = ("unspecified", "未说明")


def topic(agent_id: str) -> str:
    return f"agent:{agent_id}"


@dataclass(frozen=True, slots=True)
class Seat:
    """Where an agent is: the campaign and the pool's record (None: never logged in)."""

    campaign: str
    agent: Agent | None


class AgentScreens:
    def __init__(self, stack: DialerStack, hub: Hub, i18n: I18n) -> None:
        self.stack = stack
        self.hub = hub
        self.i18n = i18n
        self._pause_codes: dict[str, tuple[str, str]] = {}  # agent -> (code, label)
        self._since: dict[str, tuple[AgentStatus, float]] = {}
        self._shown: dict[str, str] = {}  # agent -> attempt on screen ("" none)
        self._pops: dict[str, Customer] = {}  # agent -> the pop built for that attempt
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._prepared: dict[str, _Prepared] = {}
        self._prepare_queue: asyncio.Queue[str] = asyncio.Queue()
        self._status: dict[str, AgentStatus] = {}
        self._waiters: dict[str, list[asyncio.Event]] = {}
        self._pause_writes: asyncio.Queue[tuple[str, str, str, str, datetime]] = asyncio.Queue()
        self.pops_sent = 0
        stack.runner.agent_listeners.append(self._on_agent)
        stack.runner.placed_listeners.append(self._placed)

    # ------------------------------------------------------------ reading the dialer
    def seat(self, agent_id: str) -> Seat:
        found: Seat | None = None
        for run in self.stack.runner.campaigns.values():
            agent = run.pool.get(agent_id)
            if agent is None:
                continue
            if agent.status is not AgentStatus.OFFLINE:
                return Seat(run.plan.name, agent)
            found = found or Seat(run.plan.name, agent)
        return found or Seat("", None)

    def campaigns(self) -> list[str]:
        return sorted(self.stack.runner.campaigns)

    def _state_started(self, agent: Agent, now: float) -> float:
        """When the agent entered its current state (the pool keeps it for some states)."""
        if agent.status is AgentStatus.TALKING:
            return agent.call_started
        if agent.status is AgentStatus.WRAPUP:
            return agent.wrap_started
        if agent.status is AgentStatus.READY:
            return agent.idle_since
        seen = self._since.get(agent.agent_id)
        if seen is None or seen[0] is not agent.status:
            self._since[agent.agent_id] = (agent.status, now)
            return now
        return seen[1]

    def _state_of(self, campaign: str, a: Agent | None, agent_id: str) -> AgentState:
        if a is None:
            return AgentState(agent_id, AgentStatus.OFFLINE.value, 0.0, "", False)
        now = self.stack.runner.clock.now()
        code, label = self._pause_codes.get(agent_id, ("", ""))
        if a.status is not AgentStatus.PAUSED:
            code, label = "", ""
        pending = "logout" if a.wants_logout else "pause" if a.wants_pause else ""
        return AgentState(
            agent_id,
            a.status.value,
            round(max(0.0, now - self._state_started(a, now)), 1),
            campaign,
            a.channel_up,
            pause_code=code,
            pause_label=label,
            calls=a.calls,
            talk_seconds=int(a.talk_seconds),
            pending=pending,
        )

    def state(self, agent_id: str) -> AgentState:
        seat = self.seat(agent_id)
        return self._state_of(seat.campaign, seat.agent, agent_id)

    @staticmethod
    def on_screen(a: Agent | None) -> str:
        """The attempt whose customer the agent's screen shows: the call, then its wrap-up."""
        if a is None:
            return ""
        if a.status is AgentStatus.TALKING and a.attempt_id:
            return a.attempt_id
        if a.status is AgentStatus.WRAPUP and a.last_attempt_id:
            return a.last_attempt_id
        return ""

    # ------------------------------------------------------------ pushes
    def set_pause_code(self, agent_id: str, code: str, label: str) -> None:
        self._pause_codes[agent_id] = (code, label)

    def agent_changed(self, agent_id: str) -> None:
        seat = self.seat(agent_id)
        self._on_agent(seat.campaign, seat.agent) if seat.agent is not None else None

    def _on_agent(self, campaign: str, agent: Agent) -> None:
        """The pool's listener (in the dispatcher): push the state, queue or clear the pop."""
        agent_id = agent.agent_id
        self.hub.publish(topic(agent_id), self._state_of(campaign, agent, agent_id))
        self._note_pause(campaign, agent)
        for event in self._waiters.pop(agent_id, ()):
            event.set()
        attempt = self.on_screen(agent)
        if attempt == self._shown.get(agent_id, ""):
            return
        self._shown[agent_id] = attempt
        if attempt:
            prepared = self._prepared.pop(attempt, None)
            if prepared is not None:
                self._publish_pop(agent_id, prepared.pop(agent_id, _phase(agent)))
            else:
                self._queue.put_nowait((agent_id, attempt))
        else:
            self._pops.pop(agent_id, None)
            self.hub.publish(topic(agent_id), Customer(agent_id))

    async def wait_until(self, agent_id: str, condition: Callable[[Agent], bool]) -> None:
        """Wait until the agent's state satisfies ``condition`` (the caller bounds the wait)."""
        while True:
            agent = self.seat(agent_id).agent
            if agent is None or condition(agent):
                return
            event = asyncio.Event()
            self._waiters.setdefault(agent_id, []).append(event)
            await event.wait()

    def _note_pause(self, campaign: str, agent: Agent) -> None:
        """Queue the record of a pause starting (with its code) or ending."""
        before = self._status.get(agent.agent_id)
        self._status[agent.agent_id] = agent.status
        paused_now = agent.status is AgentStatus.PAUSED
        if (before is AgentStatus.PAUSED) == paused_now:
            return
        code, label = self._pause_codes.get(agent.agent_id, ("", ""))
        if paused_now and not code:
            code, label = UNSPECIFIED_PAUSE
        kind = "start" if paused_now else "end"
        wall = self.stack.runner.clock.wall()
        self._pause_writes.put_nowait((kind, agent.agent_id, campaign, f"{code}\t{label}", wall))

    async def _pause_writer(self) -> None:
        desk = self.stack.desk
        while True:
            kind, agent_id, campaign, code_label, at = await self._pause_writes.get()
            if desk is None:
                continue
            if kind == "start":
                code, label = code_label.split("\t", 1)
                await desk.pause_started(agent_id, campaign, PauseCode(code, label), at)
            else:
                await desk.pause_ended(agent_id, at)

    async def snapshot(self, agent_id: str) -> list[Message]:
        """What rebuilds the screen now (a reload or a reconnect in the middle of a call)."""
        seat = self.seat(agent_id)
        messages: list[Message] = [self.state(agent_id)]
        attempt = self.on_screen(seat.agent)
        if attempt:
            pop = self._pops.get(agent_id)
            if pop is None or pop.attempt_id != attempt:
                pop = await self.build_pop(agent_id, attempt, seat.agent)
            messages.append(pop)
        else:
            messages.append(Customer(agent_id))
        messages.append(await self.callbacks(agent_id))
        messages.append(self.preview(agent_id))
        return messages

    async def callbacks(self, agent_id: str) -> Callbacks:
        """The agent's open "me only" callbacks (masked), for the screen."""
        desk = self.stack.desk
        if desk is None:
            return Callbacks(agent_id)
        now = self.stack.runner.clock.wall()
        items: list[dict[str, Any]] = []
        for cb in await desk.callbacks_for(agent_id):
            name, number = "", ""
            if cb.lead_id.isdigit():
                lead = await self.stack.stores.leads.get(int(cb.lead_id))
                name, number = lead.name, lead.masked
            items.append(
                {
                    "id": cb.id,
                    "name": name,
                    "number": number,
                    "product": cb.product,
                    "campaign": cb.campaign,
                    "due": self.i18n.when(cb.due_at),
                    "due_now": cb.due_at <= now,
                    "grace_until": self.i18n.when(cb.grace_until, "time"),
                }
            )
        return Callbacks(agent_id, items)

    async def push_callbacks(self, agent_id: str) -> None:
        self.hub.publish(topic(agent_id), await self.callbacks(agent_id))

    def preview(self, agent_id: str) -> Preview:
        seat = self.seat(agent_id)
        run = self.stack.runner.campaigns.get(seat.campaign)
        is_preview = run is not None and run.plan.pacing_method == "preview"
        lead = self.stack.runner.held_preview(agent_id)
        if lead is None:
            return Preview(agent_id, is_preview)
        return Preview(
            agent_id,
            is_preview,
            {
                "lead_id": lead.lead_id,
                "number": mask(lead.number),
                "segment": lead.segment,
                "product": lead.product,
            },
        )

    async def _callback_scan(self) -> None:
        """Push each logged-in agent's callbacks now and then: due ones appear by themselves."""
        while True:
            await asyncio.sleep(CALLBACK_SCAN)
            for run in list(self.stack.runner.campaigns.values()):
                for agent in run.pool.agents():
                    if agent.status is not AgentStatus.OFFLINE and self.hub.subscribers(
                        topic(agent.agent_id)
                    ):
                        await self.push_callbacks(agent.agent_id)

    async def run(self) -> None:
        """Build and push the queued screen-pops (a few at a time) until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._callback_scan(), name="agent-callbacks")
            for n in range(POP_WORKERS):
                group.create_task(self._pop_worker(), name=f"agent-pop-{n}")
            group.create_task(self._pause_writer(), name="agent-pauses")
            for n in range(2):
                group.create_task(self._prepare_worker(), name=f"agent-prepare-{n}")

    async def _pop_worker(self) -> None:
        while True:
            agent_id, attempt = await self._queue.get()
            if self._shown.get(agent_id) != attempt:
                continue  # the call ended before its pop was built
            seat = self.seat(agent_id)
            pop = await self.build_pop(agent_id, attempt, seat.agent)
            if self._shown.get(agent_id) == attempt:
                self._publish_pop(agent_id, pop)

    def _publish_pop(self, agent_id: str, pop: Customer) -> None:
        self._pops[agent_id] = pop
        self.hub.publish(topic(agent_id), pop)
        self.pops_sent += 1

    async def build_pop(self, agent_id: str, attempt_id: str, agent: Agent | None) -> Customer:
        """The screen-pop: who the customer is (masked), history, the filled script."""
        prepared = self._prepared.get(attempt_id) or await self.prepare(attempt_id)
        return prepared.pop(agent_id, _phase(agent))

    async def prepare(self, attempt_id: str) -> _Prepared:
        """Everything of the pop but the agent (database reads): done while the phone
        rings (``placed_listeners``), so the pop leaves the moment the agent is assigned."""
        stack = self.stack
        call = await self._call_of(attempt_id)
        if call is None:
            return _Prepared(Customer("", attempt_id), parse_script(""), {})
        lead_id, campaign_name, number, product = call
        name, segment = "", ""
        if lead_id.isdigit():
            lead = await stack.stores.leads.get(int(lead_id))
            name, segment = lead.name, lead.segment
        history = [
            e for e in await stack.stores.ledger.history(number) if e.attempt_id != attempt_id
        ]
        campaign = await stack.stores.campaigns.find_cached(campaign_name)
        script_text = campaign.spec.script if campaign is not None else ""
        products = campaign.products if campaign is not None else (product,)
        script_error = ""
        try:
            script = _script(script_text)
        except ScriptError as exc:
            script, script_error = _script(""), str(exc)
        terms = script.terms(product)
        values = {
            "customer.name": name,
            "customer.segment": segment,
            "product.name": product,
            "product.price": terms.price,
            "product.payment": terms.payment,
            "campaign.name": campaign_name,
        }
        customer = Customer(
            "",
            attempt_id,
            name=name,
            number=mask(number),
            segment=segment,
            product=product,
            products=[
                {"name": p, "price": script.terms(p).price, "payment": script.terms(p).payment}
                for p in products
            ],
            history=[await self._contact(e) for e in reversed(history[-HISTORY_SHOWN:])],
            questionnaire=[
                {"id": q.id, "text": q.text, "choices": list(q.choices)}
                for q in script.questionnaire
            ],
        )
        return _Prepared(customer, script, values, script_error)

    def _placed(self, attempt_id: str, lead: DialLead) -> None:
        """The runner placed a call: prepare its pop while it rings."""
        if len(self._prepared) >= PREPARED_LIMIT:
            # Calls that were never answered: drop the oldest.
            for old in list(self._prepared)[: PREPARED_LIMIT // 10]:
                del self._prepared[old]
        self._prepare_queue.put_nowait(attempt_id)

    async def _prepare_worker(self) -> None:
        while True:
            attempt_id = await self._prepare_queue.get()
            if attempt_id in self._prepared:
                continue
            self._prepared[attempt_id] = await self.prepare(attempt_id)

    async def _call_of(self, attempt_id: str) -> tuple[str, str, str, str] | None:
        """(lead id, campaign, number, product) of a call: from memory while it is live,
        else from the attempt log (a reload during the wrap-up after a restart)."""
        lead = self.stack.runner.live_lead(attempt_id)
        if lead is not None:
            return lead.lead_id, lead.campaign, lead.number, lead.product
        rec = await self.stack.attempts.get(attempt_id)
        if rec is None:
            return None
        return rec.lead_id, rec.campaign, rec.number, rec.product

    async def _contact(self, e: ContactEvent) -> dict[str, str]:
        """One earlier contact: when, what, and how it ended (the agent's disposition when
        there was one, else the dial's outcome)."""
        disposition = ""
        if e.kind is ContactKind.REFUSAL:
            disposition = "refused"
        elif e.attempt_id:
            rec = await self.stack.attempts.get(e.attempt_id)
            disposition = rec.disposition or "" if rec is not None else ""
        return {
            "when": self.i18n.when(e.at, "medium"),
            "campaign": e.campaign,
            "product": e.product,
            "outcome": e.outcome.value,
            "disposition": disposition,
        }

    async def running(self, app: web.Application) -> AsyncIterator[None]:
        """``cleanup_ctx``: the pop workers live as long as the web app."""
        task = asyncio.create_task(self.run(), name="agent-screens")
        yield
        task.cancel()
        await asyncio.wait([task])
        if not task.cancelled() and task.exception() is not None:
            logger.error("agent screen-pop workers failed", exc_info=task.exception())

    def detach(self) -> None:
        if self._on_agent in self.stack.runner.agent_listeners:
            self.stack.runner.agent_listeners.remove(self._on_agent)


def _phase(agent: Agent | None) -> str:
    return agent.status.value if agent is not None else ""


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A screen-pop without its agent: the customer, the script and its field values."""

    customer: Customer
    script: Script
    values: dict[str, str]
    script_error: str = ""

    def pop(self, agent_id: str, phase: str) -> Customer:
        values = {**self.values, "agent.name": agent_id}
        titles = {key: (zh, en) for key, zh, en in PARTS}
        parts = [
            {"part": key, "title_zh": titles[key][0], "title_en": titles[key][1], "text": text}
            for key, text in filled_parts(self.script, values)
        ]
        if self.script_error:
            parts.append(
                {
                    "part": "error",
                    "title_zh": "话术错误",
                    "title_en": "Script error",
                    "text": self.script_error,
                }
            )
        return replace(self.customer, agent_id=agent_id, script=parts, phase=phase)


@lru_cache(maxsize=64)
def _script(text: str) -> Script:
    """A campaign's script, parsed once per text."""
    return parse_script(text)
