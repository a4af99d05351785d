"""The call book every slice of the runner shares: settings, live calls, campaigns, ports.

One ``CallBook`` per process. It holds what the slices (placement, call
control, agents) read and write, all of it touched only from the dispatcher
task (or from the pacing loop, which the dispatcher never races: both run on
one event loop and neither awaits while the book is half-updated), plus the
ports they talk through and the few helpers every slice needs (hang up
safely, halt dialling, settle a lead after a call).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from compliance.model import Decision
from dialer import fsm
from dialer.agent_pool import AgentPool
from dialer.ari.errors import AriError
from dialer.attempts import AttemptLog
from dialer.backpressure import Backpressure, BackpressureLimits
from dialer.calls.messages import Message
from dialer.lanes import WriteLanes
from dialer.pacing import Pacer
from dialer.ports import (
    AgentDirectory,
    CallControl,
    CampaignPlan,
    Clock,
    DialLead,
    DncList,
    Gate,
    LeadSource,
    Ledger,
    RecordingSink,
)
from dialer.retry import LeadNext, NextKind

logger = logging.getLogger(__name__)

class InboundPolicy(StrEnum):
    PAUSE = "pause"  # no outbound call while inbound calls wait
    PROGRESSIVE = "progressive"  # at most one call per ready agent


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    customer_endpoint: str = "Local/{number}@sim-customers"
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
    # The dialplan context that runs AMD() on an answered channel and hands it back with
    # Stasis(<app>,amd,STATUS,CAUSE) ([dialer-amd] in asterisk_conf/extensions.conf).
    amd_context: str = "dialer-amd"
    # AMD()'s afterGreetingSilence (ms), passed to [dialer-amd] and taken off the
    # connect limit: the 2 s count from the end of the customer's greeting.
    amd_after_greeting_ms: int = 800
    recording_format: str = "wav"
    inbound_policy: InboundPolicy = InboundPolicy.PAUSE
    claimer: str = "dialer"
    max_claim: int = 20
    recording_wait: float = 10.0  # after a call ends, how long to wait for RecordingFinished
    dial_guard: float = 30.0  # after the ring timeout, check a call we heard nothing about
    # An originate without an HTTP answer, unknown to Asterisk: wait this long for its
    # events before counting it as an unanswered call (it is never sent again).
    originate_resolve_grace: float = 5.0
    # Hold back new calls while the PBX answers slowly (dialer.backpressure).
    backpressure: BackpressureLimits = field(default_factory=BackpressureLimits)
    drain_timeout: float = 30.0  # graceful stop: live calls get this long, then are hung up
    logout_agents_at_stop: bool = True
    write_lanes: int = 8  # parallel ordered lanes for per-call database writes
    place_concurrency: int = 8  # leads checked and originated at once


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
    # The gate's decision for this attempt: the customer leg carries it to the
    # originate (dialer.legs); a call recovered after a restart has none.
    decision: Decision | None = None
    # The agent who placed this call themselves (preview, manual dial, their callback):
    # the customer goes to them, and they are freed if the customer is never reached.
    reserved_agent: str | None = None


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
class Ports:
    """What the runner talks through; only the composition root knows what is behind."""

    control: CallControl
    gate: Gate
    ledger: Ledger
    leads: LeadSource
    dnc: DncList
    attempts: AttemptLog
    clock: Clock
    directory: AgentDirectory
    recordings: RecordingSink | None = None


class CallBook:
    """The state the slices share, and the dispatcher's inbox."""

    def __init__(self, ports: Ports, config: RunnerConfig) -> None:
        self.ports = ports
        self.control = ports.control
        self.clock = ports.clock
        self.config = config
        self.campaigns: dict[str, CampaignRun] = {}
        self.calls: dict[str, LiveCall] = {}
        self.agent_campaign: dict[str, str] = {}
        # Leads between claim and their LiveCall (counted as dials in flight).
        self.pending_leads: dict[str, DialLead] = {}
        # Told of every call placed (after the gate allowed it): the agents' screens prepare
        # the customer's screen-pop while the phone rings. Each must return at once.
        self.placed_hooks: list[Callable[[str, DialLead], None]] = []
        # Leads of connected calls: the agent's disposition closes them.
        self.disp_leads: dict[str, DialLead] = {}
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self.wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.lanes = WriteLanes(config.write_lanes)
        self.stopping = False
        self.inbound_waiting = 0
        self.halted: str | None = None
        self.originates_sent = 0
        self.session = uuid.uuid4().hex[:6]
        self.backpressure = Backpressure(config.backpressure)
        # Why fewer calls than the pacers want are placed now (None: not held back).
        self.throttled: str | None = None
        # The last customers' waits from the answer to the agent's bridge (seconds, and
        # whether counted as an abandon), for the figures and the load bench.
        self.connect_waits: deque[tuple[float, bool]] = deque(maxlen=10_000)

    def post(self, message: Message) -> None:
        """Queue a message for the dispatcher (from a timer or an event reader)."""
        self.queue.put_nowait(message)

    def later(self, delay: float, message: Message) -> asyncio.TimerHandle:
        """Post ``message`` after ``delay`` seconds (a timer handle the caller cancels)."""
        return asyncio.get_running_loop().call_later(delay, self.queue.put_nowait, message)

    def placed(self, attempt_id: str, lead: DialLead) -> None:
        for hook in self.placed_hooks:
            hook(attempt_id, lead)

    def run_of(self, campaign: str) -> CampaignRun:
        run = self.campaigns.get(campaign)
        if run is None:
            raise KeyError(f"campaign {campaign!r} is not loaded in this dialer")
        return run

    def agent_run(self, agent_id: str) -> CampaignRun | None:
        name = self.agent_campaign.get(agent_id)
        return self.campaigns.get(name) if name is not None else None

    def awaiting_any(self) -> bool:
        return any(run.awaiting_disposition for run in self.campaigns.values())

    def halt(self, message: str) -> None:
        if self.halted is None:
            logger.error("%s", message)
        self.halted = message
        for run in self.campaigns.values():
            run.dialling = False

    def forget(self, call: LiveCall) -> None:
        if call.recording_guard is not None:
            call.recording_guard.cancel()
        if call.dial_guard is not None:
            call.dial_guard.cancel()
        for handle in call.timers.values():
            handle.cancel()
        call.timers.clear()
        self.calls.pop(call.state.params.attempt_id, None)
        if not self.calls:
            self.idle.set()

    async def safe_hangup(self, channel_id: str) -> None:
        try:
            await self.control.hangup(channel_id)
        except AriError as exc:
            logger.warning("hangup %s failed: %s", channel_id, exc)


async def settle_lead(
    leads: LeadSource,
    lead: DialLead,
    nxt: LeadNext,
    *,
    now: datetime,
    why: Sequence[str] = (),
) -> None:
    """The one mapping from "what next for this lead" (``retry.after_dial``) to the lead store.

    ``counted`` is always the decision's own: ``after_dial`` knows which outcomes reached
    the network (rules.md A.3: a call that never reached it does not count).
    """
    reasons = [*why, nxt.reason]
    if nxt.kind is NextKind.AWAIT_DISPOSITION:
        return  # the agent's disposition closes the lead
    if nxt.kind is NextKind.RETRY:
        await leads.retry_at(lead, nxt.at, reasons, counted=nxt.counted, now=now)
    elif nxt.kind is NextKind.DONE:
        await leads.finish(lead, reasons, counted=nxt.counted, now=now)
    else:
        await leads.refuse(lead, reasons, now=now)


PacerFactory = Callable[[str, Mapping[str, float]], Pacer]
