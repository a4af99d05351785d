"""The per-call state machine: ``step(state, event, now) -> (state, commands)``.

Pure: no I/O, no clock (``now`` is passed in), no asyncio. Commands are data
the runner executes (ARI requests, timers, agent requests, reports to the
pacer and the ledger). Timers are events too (``TimerFired``), so every path,
including the 2-second connect limit, is testable without a loop.

Phases::

    reserved -> dialing -> ringing -> [detecting ->] answered -> connecting -> connected -> ended
                   |          |                            |           |
                   |          |                            +-----------+-> abandoning -> abandoned
                   +----------+-> ended (busy, no answer...) / failed

Every call is originated into the Stasis application, so the app is subscribed
to the channel before it can produce an event (nothing is lost, AMD or not).
With AMD on, the answered channel is continued into the AMD dialplan context
(``detecting``) and comes back with ``StasisStart(amd, STATUS, CAUSE)``.

``answered`` means a live person is on the line waiting for an agent; the
connect limit (``connect_limit`` seconds) ends when the customer's channel
enters the agent's bridge (``ChannelEnteredBridge``), not when an agent is
chosen. Without an agent in time the call is abandoned: the information
message is played, the call is hung up and counted (``DialEnded(abandoned=True)``).
A call whose ``addChannel`` is still in flight at the limit is counted as an
abandon too (it still reaches its agent). An answering machine is hung up.

An originate whose HTTP answer was lost is never sent again: the runner asks
Asterisk whether the channel exists (``ResolveOriginate``); until proved
otherwise the attempt is a call that reached the network.

Every path emits ``DialEnded`` exactly once (the pacer's ``on_dial``) and
``CallFinished`` exactly once (ledger, lead, retries).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from dialer.outcomes import (
    DialEvidence,
    DialOutcome,
    DialStatus,
    classify_dial,
    hangup_request_cause,
    is_final_dialstatus,
    outcome_from_amd,
)


class Phase(StrEnum):
    RESERVED = "reserved"
    DIALING = "dialing"
    RINGING = "ringing"
    DETECTING = "detecting"  # answered, AMD() running in the dialplan
    ANSWERED = "answered"
    CONNECTING = "connecting"  # addChannel sent, not yet confirmed
    CONNECTED = "connected"
    ABANDONING = "abandoning"
    ENDED = "ended"
    ABANDONED = "abandoned"
    FAILED = "failed"


TERMINAL_PHASES = frozenset({Phase.ENDED, Phase.ABANDONED, Phase.FAILED})
LIVE_PHASES = frozenset(
    {
        Phase.DIALING,
        Phase.RINGING,
        Phase.DETECTING,
        Phase.ANSWERED,
        Phase.CONNECTING,
        Phase.CONNECTED,
        Phase.ABANDONING,
    }
)


class Timer(StrEnum):
    CONNECT = "connect"  # the 2 s limit to connect an answered person
    RETRY_ORIGINATE = "retry_originate"
    # An originate without an HTTP answer that Asterisk does not know (yet): how long
    # to wait for the channel's events before counting it as an unanswered call.
    RESOLVE_ORIGINATE = "resolve_originate"
    ABANDON_MESSAGE = "abandon_message"  # guard: the message must not run forever


@dataclass(frozen=True, slots=True)
class CallParams:
    """What the call is; fixed for its whole life."""

    attempt_id: str
    channel_id: str
    endpoint: str
    caller_id: str
    ring_timeout: int
    amd: bool = False
    connect_limit: float = 2.0
    # AMD() says HUMAN only after this much silence following the greeting: the
    # customer has been waiting that long already when the call comes back to us,
    # so the agent must be found within connect_limit minus it.
    amd_after_greeting: float = 0.0
    abandon_media: str = "sound:vm-nobodyavail"
    abandon_message_limit: float = 15.0
    max_originate_tries: int = 3
    originate_backoff: float = 0.5
    originate_resolve_grace: float = 5.0
    recording_format: str = "wav"

    @property
    def recording_name(self) -> str:
        return f"rec-{self.attempt_id}"

    @property
    def playback_id(self) -> str:
        return f"ab-{self.attempt_id}"


@dataclass(frozen=True, slots=True)
class CallState:
    params: CallParams
    phase: Phase = Phase.RESERVED
    placed_at: float | None = None
    answered_at: float | None = None
    connected_at: float | None = None
    ended_at: float | None = None
    agent_id: str | None = None
    bridge_id: str | None = None
    evidence: DialEvidence = field(default_factory=DialEvidence)
    outcome: DialOutcome | None = None
    abandoned: bool = False
    originate_tries: int = 0
    originate_accepted: bool = False
    saw_event: bool = False
    hangup_sent: bool = False
    dial_reported: bool = False
    recording: str | None = None
    recording_done: bool = False
    recording_stopped: bool = False
    amd_status: str | None = None
    agent_gone: bool = False
    assigned_at: float | None = None
    # When the person started waiting for an agent (the answer, or AMD's verdict).
    waiting_since: float | None = None
    # The connect limit passed before the customer was in the agent's bridge.
    late: bool = False
    originate_lost: bool = False

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Start:
    """Place the call (the attempt row is already written)."""


@dataclass(frozen=True, slots=True)
class OriginateAccepted:
    """``POST /channels`` answered 200 (or 409 on a retry: the channel exists)."""


@dataclass(frozen=True, slots=True)
class OriginateFailed:
    """``POST /channels`` failed: ``status`` is the HTTP status, 0 when the
    request never got an answer (connection error, timeout)."""

    status: int
    message: str


@dataclass(frozen=True, slots=True)
class OriginateFound:
    """After a lost originate answer: Asterisk has the channel (``GET /channels/{id}``)."""


@dataclass(frozen=True, slots=True)
class OriginateNotFound:
    """After a lost originate answer: Asterisk does not have the channel, or could not say.
    It may have been placed and ended already: its events decide, else the grace timer."""

    message: str


@dataclass(frozen=True, slots=True)
class AmdFailed:
    """The answered channel could not be handed to the AMD context: treated as a person."""

    message: str


@dataclass(frozen=True, slots=True)
class DialSeen:
    """ARI ``Dial`` whose ``peer`` is our channel."""

    dialstatus: str


@dataclass(frozen=True, slots=True)
class HangupRequested:
    """ARI ``ChannelHangupRequest`` on our ``;1`` channel."""

    cause: int | None
    soft: bool


@dataclass(frozen=True, slots=True)
class StasisStarted:
    """ARI ``StasisStart`` for our channel: answered and in the app.
    ``args`` are the application arguments (``["amd", STATUS, CAUSE]`` after AMD)."""

    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChannelGone:
    """ARI ``ChannelDestroyed`` for our ``;1`` channel."""

    cause: int | None


@dataclass(frozen=True, slots=True)
class Vanished:
    """Reconcile found no such channel in ARI: the call ended while we were not listening."""


@dataclass(frozen=True, slots=True)
class AgentAssigned:
    agent_id: str
    bridge_id: str


@dataclass(frozen=True, slots=True)
class Bridged:
    """``ChannelEnteredBridge``: the customer's channel is in the agent's bridge and talks
    to the agent (``bridge_id`` None: trust it is the assigned agent's)."""

    bridge_id: str | None = None


@dataclass(frozen=True, slots=True)
class BridgeFailed:
    """``addChannel`` failed (typically the customer hung up a moment before)."""

    message: str


@dataclass(frozen=True, slots=True)
class AgentGone:
    """The agent's nailed-up channel left while this call was connected to it."""


@dataclass(frozen=True, slots=True)
class EndRequested:
    """The agent (HTTP API), the supervisor or shutdown asks to end this call."""

    reason: str


@dataclass(frozen=True, slots=True)
class PlaybackDone:
    playback_id: str


@dataclass(frozen=True, slots=True)
class RecordingStarted:
    name: str


@dataclass(frozen=True, slots=True)
class RecordingFinished:
    name: str
    duration: float | None


@dataclass(frozen=True, slots=True)
class TimerFired:
    timer: Timer


Event = (
    Start
    | OriginateAccepted
    | OriginateFailed
    | OriginateFound
    | OriginateNotFound
    | AmdFailed
    | DialSeen
    | HangupRequested
    | StasisStarted
    | ChannelGone
    | Vanished
    | AgentAssigned
    | Bridged
    | BridgeFailed
    | AgentGone
    | EndRequested
    | PlaybackDone
    | RecordingStarted
    | RecordingFinished
    | TimerFired
)

# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Originate:
    """Into the Stasis application, AMD or not (AMD runs after the answer: ``RunAmd``)."""

    channel_id: str
    endpoint: str
    caller_id: str
    timeout: int


@dataclass(frozen=True, slots=True)
class ResolveOriginate:
    """The originate's answer was lost: ask Asterisk whether the channel exists
    (never send it again; answer with ``OriginateFound``/``OriginateNotFound``)."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class RunAmd:
    """Continue the answered channel into the AMD dialplan context."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class Connected:
    """The customer entered the agent's bridge: how long it took from the answer (the
    customer's wait) and from the agent's assignment (the PBX's part), for back-pressure."""

    answer_to_bridge: float
    assign_to_bridge: float
    late: bool


@dataclass(frozen=True, slots=True)
class Hangup:
    channel_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class AddToBridge:
    bridge_id: str
    channel_id: str


@dataclass(frozen=True, slots=True)
class StartRecording:
    bridge_id: str
    name: str
    format: str


@dataclass(frozen=True, slots=True)
class StopRecording:
    name: str


@dataclass(frozen=True, slots=True)
class PlayAbandonMessage:
    channel_id: str
    media: str
    playback_id: str


@dataclass(frozen=True, slots=True)
class StartTimer:
    timer: Timer
    at: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer: Timer


@dataclass(frozen=True, slots=True)
class RequestAgent:
    """Connect this answered person to the longest-idle ready agent, or queue."""


@dataclass(frozen=True, slots=True)
class CancelAgentRequest:
    pass


@dataclass(frozen=True, slots=True)
class ReleaseAgent:
    """An agent was assigned after the call could no longer use it: give it back, unused."""

    agent_id: str


@dataclass(frozen=True, slots=True)
class DialEnded:
    """The end of the dial phase (the pacer's ``on_dial``)."""

    ring_seconds: float
    answered: bool
    abandoned: bool


@dataclass(frozen=True, slots=True)
class TalkEnded:
    """The customer left the agent: the agent goes to wrap-up."""

    agent_id: str
    talk_seconds: float


@dataclass(frozen=True, slots=True)
class CallFinished:
    """The call is over: resolve the ledger attempt, update the lead, plan retries."""

    outcome: DialOutcome
    connected: bool
    abandoned: bool


@dataclass(frozen=True, slots=True)
class RecordingDone:
    name: str
    duration: float | None


@dataclass(frozen=True, slots=True)
class Log:
    """Something a person should see in the log (a protocol surprise, an ignored event)."""

    message: str


Command = (
    Originate
    | ResolveOriginate
    | RunAmd
    | Connected
    | Hangup
    | AddToBridge
    | StartRecording
    | StopRecording
    | PlayAbandonMessage
    | StartTimer
    | CancelTimer
    | RequestAgent
    | CancelAgentRequest
    | ReleaseAgent
    | DialEnded
    | TalkEnded
    | CallFinished
    | RecordingDone
    | Log
)

Step = tuple[CallState, tuple[Command, ...]]


def new_call(params: CallParams) -> CallState:
    return CallState(params=params)


def _originate(s: CallState) -> Originate:
    p = s.params
    return Originate(p.channel_id, p.endpoint, p.caller_id, p.ring_timeout)


def _ring_seconds(s: CallState, now: float) -> float:
    start = s.placed_at if s.placed_at is not None else now
    end = s.answered_at if s.answered_at is not None else now
    return max(0.0, end - start)


def _dial_ended(
    s: CallState, now: float, *, answered: bool, abandoned: bool
) -> tuple[CallState, tuple[Command, ...]]:
    if s.dial_reported:
        return s, ()
    return replace(s, dial_reported=True), (DialEnded(_ring_seconds(s, now), answered, abandoned),)


def _finish(
    s: CallState, now: float, phase: Phase, outcome: DialOutcome, *, answered: bool
) -> Step:
    """Move to a terminal phase and emit the reports every path owes."""
    cmds: list[Command] = []
    s, dial = _dial_ended(s, now, answered=answered, abandoned=s.abandoned)
    cmds.extend(dial)
    connected = s.connected_at is not None
    if connected and s.agent_id is not None:
        talk = now - (s.connected_at or now)
        cmds.append(TalkEnded(s.agent_id, max(0.0, talk)))
        if s.recording is not None and not s.recording_done:
            # The agent's channel stays in its bridge, so Asterisk would keep
            # recording: stop it explicitly when the customer leaves.
            cmds.append(StopRecording(s.recording))
            s = replace(s, recording_stopped=True)
    s = replace(s, phase=phase, outcome=outcome, ended_at=now)
    cmds.append(CallFinished(outcome, connected, s.abandoned))
    return s, tuple(cmds)


def step(s: CallState, ev: Event, now: float) -> Step:
    """Apply one event. Unknown combinations leave the state unchanged with a ``Log``."""
    if not isinstance(ev, _LOCAL_EVENTS):
        s = replace(s, saw_event=True)
    # Recording events may come after the customer's channel is gone.
    if isinstance(ev, RecordingStarted):
        if s.terminal and not s.recording_done and not s.recording_stopped:
            # The call ended before the recording's start was seen: stop it now,
            # or it would keep recording the agent's bridge.
            return replace(s, recording=ev.name), (StopRecording(ev.name),)
        return replace(s, recording=ev.name), ()
    if isinstance(ev, RecordingFinished):
        if s.recording_done:
            return s, ()
        done = RecordingDone(ev.name, ev.duration)
        return replace(s, recording=ev.name, recording_done=True), (done,)
    if s.terminal:
        if isinstance(ev, AgentAssigned):
            return s, (ReleaseAgent(ev.agent_id),)
        return s, ()
    handler = _HANDLERS.get(type(ev))
    if handler is None:
        return s, (Log(f"unhandled event {type(ev).__name__} in phase {s.phase}"),)
    return handler(s, ev, now)


# Events that come from the dialer itself, not from Asterisk.
_LOCAL_EVENTS = (
    Start,
    TimerFired,
    AgentAssigned,
    EndRequested,
    OriginateAccepted,
    OriginateFailed,
    OriginateFound,
    OriginateNotFound,
    AmdFailed,
)


def _on_start(s: CallState, ev: Event, now: float) -> Step:
    if s.phase is not Phase.RESERVED:
        return s, (Log(f"start ignored in phase {s.phase}"),)
    s = replace(s, phase=Phase.DIALING, placed_at=now, originate_tries=1)
    return s, (_originate(s),)


def _on_accepted(s: CallState, ev: Event, now: float) -> Step:
    return replace(s, originate_accepted=True), ()


def _on_originate_failed(s: CallState, ev: Event, now: float) -> Step:
    assert isinstance(ev, OriginateFailed)
    p = s.params
    if ev.status == 409:
        # Our channel id is unique per attempt: 409 on a retry means the
        # first request did create the call; never place a second one.
        return replace(s, originate_accepted=True), (Log("originate 409: channel already exists"),)
    if s.originate_accepted or s.saw_event:
        return s, (Log(f"originate error {ev.status} after the channel was seen; ignored"),)
    if ev.status == 0:
        # No answer (timeout, connection dropped): Asterisk may have placed the call.
        # Never send it again: ask, and count it as a contact until proved otherwise.
        s = replace(s, originate_lost=True)
        return s, (
            Log(f"originate answer lost ({ev.message}); asking Asterisk, not re-sending"),
            ResolveOriginate(p.channel_id),
        )
    # A 5xx is an answer: Asterisk did not create the channel (500 "Allocation failed").
    retryable = ev.status >= 500
    if retryable and s.originate_tries < p.max_originate_tries:
        at = now + p.originate_backoff * (2 ** (s.originate_tries - 1))
        return s, (
            Log(f"originate failed ({ev.status} {ev.message}); retry {s.originate_tries + 1}"),
            StartTimer(Timer.RETRY_ORIGINATE, at),
        )
    fin_state, cmds = _finish(s, now, Phase.FAILED, DialOutcome.FAILED, answered=False)
    return fin_state, (Log(f"originate failed: {ev.status} {ev.message}"), *cmds)


def _on_originate_found(s: CallState, ev: Event, now: float) -> Step:
    return replace(s, originate_accepted=True), (Log("lost originate resolved: the call exists"),)


def _on_originate_not_found(s: CallState, ev: Event, now: float) -> Step:
    assert isinstance(ev, OriginateNotFound)
    if s.phase is not Phase.DIALING or s.saw_event:
        return s, ()
    at = now + s.params.originate_resolve_grace
    return s, (
        Log(f"lost originate: no such channel now ({ev.message}); waiting for its events"),
        StartTimer(Timer.RESOLVE_ORIGINATE, at),
    )


def _on_amd_failed(s: CallState, ev: Event, now: float) -> Step:
    assert isinstance(ev, AmdFailed)
    if s.phase is not Phase.DETECTING:
        return s, ()
    # Never drop a person: without a verdict the call is one.
    s, cmds = _person_answered(replace(s, amd_status="NOTSURE"), now)
    return s, (Log(f"AMD not run ({ev.message}): treated as a person"), *cmds)


def _on_timer_event(s: CallState, ev: Event, now: float) -> Step:
    assert isinstance(ev, TimerFired)
    return _on_timer(s, ev.timer, now)


def _on_dial(s: CallState, ev: Event, now: float) -> Step:
    assert isinstance(ev, DialSeen)
    evidence = replace(s.evidence, saw_dial=True)
    if is_final_dialstatus(ev.dialstatus):
        evidence = replace(evidence, final_dialstatus=ev.dialstatus)
    s = replace(s, evidence=evidence, originate_accepted=True)
    if ev.dialstatus == DialStatus.RINGING and s.phase is Phase.DIALING:
        s = replace(s, phase=Phase.RINGING)
    return s, ()


def _on_hangup_request(s: CallState, ev: Event, now: float) -> Step:
    assert isinstance(ev, HangupRequested)
    cause = hangup_request_cause(ev.cause, ev.soft)
    if cause is None:
        return s, ()
    return replace(s, evidence=replace(s.evidence, hangup_cause=cause)), ()


def _on_stasis(s: CallState, ev: Event, now: float) -> Step:
    assert isinstance(ev, StasisStarted)
    return _on_answer(s, ev, now)


def _on_agent(s: CallState, ev: Event, now: float) -> Step:
    assert isinstance(ev, AgentAssigned)
    p = s.params
    if s.phase is not Phase.ANSWERED or s.outcome is DialOutcome.MACHINE or s.hangup_sent:
        return s, (ReleaseAgent(ev.agent_id),)
    s = replace(
        s, phase=Phase.CONNECTING, agent_id=ev.agent_id, bridge_id=ev.bridge_id, assigned_at=now
    )
    return s, (AddToBridge(ev.bridge_id, p.channel_id),)


def _on_bridged(s: CallState, ev: Event, now: float) -> Step:
    assert isinstance(ev, Bridged)
    p = s.params
    if ev.bridge_id is not None and ev.bridge_id != s.bridge_id:
        return s, ()  # another bridge (not the assigned agent's): not the connect
    if s.phase is not Phase.CONNECTING or s.bridge_id is None:
        return s, (Log(f"bridged in phase {s.phase} ignored"),)
    if s.hangup_sent:
        return s, ()  # being hung up: its ChannelGone gives the agent back
    s = replace(s, phase=Phase.CONNECTED, connected_at=now, recording=p.recording_name)
    since = s.waiting_since if s.waiting_since is not None else now
    waited = now - since
    if not s.late and waited > _connect_limit(s):
        # Past the limit though its timer has not fired yet (a busy loop): an abandon.
        s = replace(s, late=True, abandoned=True)
    # A late connect is reported to the pacer as an abandon (at the limit, or now).
    s, dial = _dial_ended(s, now, answered=True, abandoned=s.late)
    assigned = s.assigned_at if s.assigned_at is not None else now
    # The customer's wait as the rule counts it: after AMD, from the end of the greeting.
    wait = waited + (p.connect_limit - _connect_limit(s))
    measured = Connected(max(0.0, wait), max(0.0, now - assigned), s.late)
    return s, (
        CancelTimer(Timer.CONNECT),
        StartRecording(s.bridge_id or "", p.recording_name, p.recording_format),
        *dial,
        measured,
    )


def _on_bridge_failed(s: CallState, ev: Event, now: float) -> Step:
    assert isinstance(ev, BridgeFailed)
    p = s.params
    if s.phase is not Phase.CONNECTING or s.agent_id is None:
        return s, ()
    agent = s.agent_id
    # The person answered but never reached the agent: an abandon.
    s = replace(s, phase=Phase.ABANDONING, agent_id=None, bridge_id=None, abandoned=True)
    s, dial = _dial_ended(s, now, answered=True, abandoned=True)
    cmds: list[Command] = [
        CancelTimer(Timer.CONNECT),
        ReleaseAgent(agent),
        *dial,
        Log(f"connect failed: {ev.message}"),
    ]
    if not s.hangup_sent:
        s = replace(s, hangup_sent=True)
        cmds.append(Hangup(p.channel_id, "connect to agent failed"))
    return s, tuple(cmds)


def _on_agent_gone(s: CallState, ev: Event, now: float) -> Step:
    if s.phase is Phase.CONNECTED and not s.hangup_sent:
        hang = Hangup(s.params.channel_id, "agent hung up")
        return replace(s, agent_gone=True, hangup_sent=True), (hang,)
    return replace(s, agent_gone=True), ()


def _on_end(s: CallState, ev: Event, now: float) -> Step:
    assert isinstance(ev, EndRequested)
    return _on_end_requested(s, ev, now)


def _on_playback(s: CallState, ev: Event, now: float) -> Step:
    assert isinstance(ev, PlaybackDone)
    p = s.params
    if s.phase is Phase.ABANDONING and ev.playback_id == p.playback_id and not s.hangup_sent:
        return replace(s, hangup_sent=True), (
            CancelTimer(Timer.ABANDON_MESSAGE),
            Hangup(p.channel_id, "abandon message played"),
        )
    return s, ()


def _on_gone_event(s: CallState, ev: Event, now: float) -> Step:
    assert isinstance(ev, (ChannelGone, Vanished))
    return _on_gone(s, ev, now)


def _on_timer(s: CallState, timer: Timer, now: float) -> Step:
    p = s.params
    if timer is Timer.RETRY_ORIGINATE:
        if s.phase is not Phase.DIALING or s.originate_accepted or s.saw_event:
            return s, ()
        s = replace(s, originate_tries=s.originate_tries + 1)
        return s, (_originate(s),)
    if timer is Timer.RESOLVE_ORIGINATE:
        if s.phase is not Phase.DIALING or s.saw_event or s.originate_accepted:
            return s, ()
        # Asterisk neither confirmed nor denied the call with an event: it may have
        # rung and ended while we were not told. Counted as a contact (no answer).
        st, cmds = _finish(s, now, Phase.ENDED, DialOutcome.NO_ANSWER, answered=False)
        return st, (Log("lost originate: no event for it; counted as an unanswered call"), *cmds)
    if timer is Timer.CONNECT:
        if s.phase is Phase.CONNECTING and not s.late:
            # addChannel is in flight but the customer is not in the agent's bridge
            # yet: the limit is missed, so it is an abandon in every figure and for
            # the pacer; the call still reaches its agent.
            s = replace(s, late=True, abandoned=True)
            s, dial = _dial_ended(s, now, answered=True, abandoned=True)
            return s, (*dial, Log("not in the agent's bridge within the connect limit"))
        if s.phase is not Phase.ANSWERED:
            return s, ()
        s = replace(s, phase=Phase.ABANDONING, abandoned=True)
        s, dial = _dial_ended(s, now, answered=True, abandoned=True)
        return s, (
            CancelAgentRequest(),
            *dial,
            PlayAbandonMessage(p.channel_id, p.abandon_media, p.playback_id),
            StartTimer(Timer.ABANDON_MESSAGE, now + p.abandon_message_limit),
        )
    if timer is Timer.ABANDON_MESSAGE:
        if s.phase is Phase.ABANDONING and not s.hangup_sent:
            return replace(s, hangup_sent=True), (Hangup(p.channel_id, "abandon message limit"),)
        return s, ()
    return s, ()


def _on_answer(s: CallState, ev: StasisStarted, now: float) -> Step:
    p = s.params
    from_amd = bool(ev.args) and ev.args[0] == "amd"
    if s.phase is Phase.DETECTING and from_amd:
        pass  # back from [dialer-amd] with the verdict
    elif s.phase not in (Phase.DIALING, Phase.RINGING):
        return s, (Log(f"StasisStart in phase {s.phase} ignored"),)
    if s.answered_at is None:
        s = replace(s, answered_at=now)
    s = replace(s, originate_accepted=True)
    if p.amd and not from_amd:
        # Answered into the app, already subscribed: AMD runs in the dialplan and the
        # call comes back with StasisStart(amd, STATUS, CAUSE).
        return replace(s, phase=Phase.DETECTING), (RunAmd(p.channel_id),)
    if from_amd:
        status = ev.args[1] if len(ev.args) > 1 else ""
        s = replace(s, amd_status=status)
        if outcome_from_amd(status) is DialOutcome.MACHINE:
            # A machine is not a person: it never counts as answered for the pacer.
            s = replace(s, phase=Phase.ANSWERED, outcome=DialOutcome.MACHINE, hangup_sent=True)
            s, dial = _dial_ended(s, now, answered=False, abandoned=False)
            return s, (*dial, Hangup(p.channel_id, "answering machine"))
    return _person_answered(s, now)


def _connect_limit(s: CallState) -> float:
    """Seconds from the answer (or AMD's verdict) to the agent's bridge: after AMD the
    customer has already waited the after-greeting silence."""
    p = s.params
    return p.connect_limit - (p.amd_after_greeting if s.amd_status is not None else 0.0)


def _person_answered(s: CallState, now: float) -> Step:
    """A person waits for an agent: ask for one and start the connect limit."""
    s = replace(s, phase=Phase.ANSWERED, waiting_since=now)
    return s, (RequestAgent(), StartTimer(Timer.CONNECT, now + _connect_limit(s)))


def _on_end_requested(s: CallState, ev: EndRequested, now: float) -> Step:
    p = s.params
    if s.phase is Phase.RESERVED:
        return _finish(s, now, Phase.ENDED, DialOutcome.CANCELLED, answered=False)
    if s.hangup_sent:
        return s, ()
    s = replace(s, hangup_sent=True)
    cmds: list[Command] = []
    if s.phase in (Phase.DIALING, Phase.RINGING):
        s = replace(s, evidence=replace(s.evidence, cancelled_by_us=True))
        cmds.append(CancelTimer(Timer.RETRY_ORIGINATE))
    elif (
        s.phase in (Phase.DETECTING, Phase.ANSWERED, Phase.CONNECTING)
        and s.outcome is not DialOutcome.MACHINE
    ):
        # A person answered and is dropped before an agent: that is an abandon.
        s = replace(s, abandoned=True)
        s, dial = _dial_ended(s, now, answered=True, abandoned=True)
        cmds.extend((CancelTimer(Timer.CONNECT), CancelAgentRequest(), *dial))
    cmds.append(Hangup(p.channel_id, ev.reason))
    return s, tuple(cmds)


def _on_gone(s: CallState, ev: ChannelGone | Vanished, now: float) -> Step:
    cause = ev.cause if isinstance(ev, ChannelGone) else None
    s = replace(s, evidence=replace(s.evidence, destroyed_cause=cause))
    cancel: tuple[Command, ...] = (
        CancelTimer(Timer.CONNECT),
        CancelTimer(Timer.RETRY_ORIGINATE),
        CancelTimer(Timer.ABANDON_MESSAGE),
    )
    if s.phase in (Phase.DIALING, Phase.RINGING):
        if isinstance(ev, Vanished) and s.evidence.final_dialstatus is None:
            # We did not see how it ended; it may have reached the network, so it
            # is counted (conservatively) as an unanswered call.
            outcome = DialOutcome.NO_ANSWER
        else:
            outcome = classify_dial(s.evidence)
            if outcome is DialOutcome.ANSWERED:
                # Answered but gone before it reached the app (no StasisStart).
                s = replace(s, answered_at=now)
                st, cmds = _finish(s, now, Phase.ENDED, outcome, answered=False)
                return st, cancel + cmds
        phase = Phase.FAILED if outcome is DialOutcome.FAILED else Phase.ENDED
        st, cmds = _finish(s, now, phase, outcome, answered=False)
        return st, cancel + cmds
    if s.phase is Phase.DETECTING:
        # Answered, and gone while AMD listened: reached, but nobody waited for an agent
        # (unless the dialer itself ended it, which counted it as an abandon already).
        st, cmds = _finish(s, now, Phase.ENDED, DialOutcome.ANSWERED, answered=s.abandoned)
        return st, cancel + cmds
    if s.phase is Phase.ANSWERED:
        if s.outcome is DialOutcome.MACHINE:
            st, cmds = _finish(s, now, Phase.ENDED, DialOutcome.MACHINE, answered=False)
            return st, cancel + cmds
        # The person hung up (or vanished) while waiting for an agent.
        s = replace(s, abandoned=True)
        st, cmds = _finish(s, now, Phase.ABANDONED, DialOutcome.ANSWERED, answered=True)
        return st, (*cancel, CancelAgentRequest(), *cmds)
    if s.phase is Phase.ABANDONING:
        st, cmds = _finish(s, now, Phase.ABANDONED, DialOutcome.ANSWERED, answered=True)
        return st, cancel + cmds
    if s.phase is Phase.CONNECTING:
        # Gone while addChannel was in flight: the agent goes back, unused.
        agent = s.agent_id
        s = replace(s, abandoned=True, agent_id=None, bridge_id=None)
        st, cmds = _finish(s, now, Phase.ABANDONED, DialOutcome.ANSWERED, answered=True)
        release: tuple[Command, ...] = (ReleaseAgent(agent),) if agent is not None else ()
        return st, cancel + release + cmds
    if s.phase is Phase.CONNECTED:
        st, cmds = _finish(s, now, Phase.ENDED, DialOutcome.ANSWERED, answered=True)
        return st, cancel + cmds
    # RESERVED: never originated.
    return _finish(s, now, Phase.ENDED, DialOutcome.CANCELLED, answered=False)


_HANDLERS: dict[type, Callable[[CallState, Event, float], Step]] = {
    Start: _on_start,
    OriginateAccepted: _on_accepted,
    OriginateFailed: _on_originate_failed,
    OriginateFound: _on_originate_found,
    OriginateNotFound: _on_originate_not_found,
    AmdFailed: _on_amd_failed,
    TimerFired: _on_timer_event,
    DialSeen: _on_dial,
    HangupRequested: _on_hangup_request,
    StasisStarted: _on_stasis,
    AgentAssigned: _on_agent,
    Bridged: _on_bridged,
    BridgeFailed: _on_bridge_failed,
    AgentGone: _on_agent_gone,
    EndRequested: _on_end,
    PlaybackDone: _on_playback,
    ChannelGone: _on_gone_event,
    Vanished: _on_gone_event,
}
