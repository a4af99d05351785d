"""The per-call state machine, driven by event sequences (no loop, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from dialer import fsm
from dialer.fsm import (
    AddToBridge,
    AgentAssigned,
    AgentGone,
    Bridged,
    BridgeFailed,
    CallFinished,
    CallParams,
    CancelAgentRequest,
    ChannelGone,
    Command,
    DialEnded,
    DialSeen,
    EndRequested,
    Event,
    Hangup,
    HangupRequested,
    Originate,
    OriginateAccepted,
    OriginateFailed,
    Phase,
    PlayAbandonMessage,
    PlaybackDone,
    RecordingDone,
    RecordingFinished,
    RecordingStarted,
    ReleaseAgent,
    RequestAgent,
    Start,
    StartRecording,
    StartTimer,
    StasisStarted,
    StopRecording,
    TalkEnded,
    Timer,
    TimerFired,
    Vanished,
)
from dialer.outcomes import DialOutcome

PARAMS = CallParams("a1", "dl-a1", "Local/13800138001@sim-customers", "5551000", 30)


def run(
    events: Sequence[tuple[float, Event]], params: CallParams = PARAMS
) -> tuple[fsm.CallState, list[Command]]:
    state = fsm.new_call(params)
    out: list[Command] = []
    for at, ev in events:
        state, cmds = fsm.step(state, ev, at)
        out.extend(cmds)
    return state, out


def of(cmds: list[Command], kind: type) -> list[Command]:
    return [c for c in cmds if isinstance(c, kind)]


def finished(cmds: list[Command]) -> CallFinished:
    done = of(cmds, CallFinished)
    assert len(done) == 1, cmds
    f = done[0]
    assert isinstance(f, CallFinished)
    return f


def dial_ended(cmds: list[Command]) -> DialEnded:
    d = of(cmds, DialEnded)
    assert len(d) == 1, cmds
    x = d[0]
    assert isinstance(x, DialEnded)
    return x


ANSWER: list[tuple[float, Event]] = [
    (0.0, Start()),
    (0.01, OriginateAccepted()),
    (0.02, DialSeen("")),
    (0.5, DialSeen("RINGING")),
    (2.5, DialSeen("ANSWER")),
    (2.5, StasisStarted(("customer", "camp"))),
]


@pytest.mark.parametrize(
    ("events", "phase", "outcome", "answered", "abandoned"),
    [
        (  # busy: Dial BUSY, ;1 destroyed with cause 0
            [(0, Start()), (0.1, DialSeen("")), (0.1, DialSeen("BUSY")), (0.1, ChannelGone(0))],
            Phase.ENDED,
            DialOutcome.BUSY,
            False,
            False,
        ),
        (  # originate timeout: no final Dial, cause 19
            [
                (0, Start()),
                (0.1, DialSeen("")),
                (1, DialSeen("RINGING")),
                (30, HangupRequested(19, False)),
                (30, ChannelGone(19)),
            ],
            Phase.ENDED,
            DialOutcome.NO_ANSWER,
            False,
            False,
        ),
        (  # reject: the non-soft hangup request carries 21
            [
                (0, Start()),
                (0.1, DialSeen("RINGING")),
                (4, HangupRequested(16, True)),
                (4, HangupRequested(21, False)),
                (4, DialSeen("NOANSWER")),
                (4, ChannelGone(21)),
            ],
            Phase.ENDED,
            DialOutcome.REJECTED,
            False,
            False,
        ),
        (  # unknown context: no Dial, cause 0
            [(0, Start()), (0.1, ChannelGone(0))],
            Phase.FAILED,
            DialOutcome.FAILED,
            False,
            False,
        ),
        (  # customer answers and hangs up before the agent: abandoned
            [*ANSWER, (3.0, ChannelGone(16))],
            Phase.ABANDONED,
            DialOutcome.ANSWERED,
            True,
            True,
        ),
    ],
)
def test_dial_phase_table(
    events: list[tuple[float, Event]],
    phase: Phase,
    outcome: DialOutcome,
    answered: bool,
    abandoned: bool,
) -> None:
    state, cmds = run(events)
    assert state.phase is phase
    f = finished(cmds)
    assert f.outcome is outcome
    assert f.abandoned is abandoned
    d = dial_ended(cmds)
    assert d.answered is answered
    assert d.abandoned is abandoned


def test_start_originates_with_our_channel_id() -> None:
    state, cmds = run([(0, Start())])
    assert state.phase is Phase.DIALING
    assert cmds == [Originate("dl-a1", PARAMS.endpoint, "5551000", 30)]


def test_answer_connect_record_customer_hangs_up_first() -> None:
    state, cmds = run(
        [
            *ANSWER,
            (2.6, AgentAssigned("201", "agent-201")),
            (2.6, Bridged()),
            (2.7, RecordingStarted("rec-a1")),
            (40.0, HangupRequested(16, False)),
            (40.0, ChannelGone(16)),
            (40.1, RecordingFinished("rec-a1", 37)),
        ]
    )
    assert state.phase is Phase.ENDED
    assert of(cmds, RequestAgent) == [RequestAgent()]
    assert StartTimer(Timer.CONNECT, 4.5) in cmds
    assert AddToBridge("agent-201", "dl-a1") in cmds
    assert StartRecording("agent-201", "rec-a1", "wav") in cmds
    d = dial_ended(cmds)
    assert (d.answered, d.abandoned, d.ring_seconds) == (True, False, 2.5)
    talk = of(cmds, TalkEnded)
    assert len(talk) == 1 and isinstance(talk[0], TalkEnded)
    assert talk[0].agent_id == "201" and abs(talk[0].talk_seconds - 37.4) < 1e-9
    assert StopRecording("rec-a1") in cmds
    assert of(cmds, RecordingDone) == [RecordingDone("rec-a1", 37)]
    f = finished(cmds)
    assert f.connected and not f.abandoned and f.outcome is DialOutcome.ANSWERED


def test_agent_hangs_up_first() -> None:
    state, cmds = run(
        [*ANSWER, (2.6, AgentAssigned("201", "agent-201")), (2.6, Bridged()), (10, AgentGone())]
    )
    assert state.phase is Phase.CONNECTED
    assert cmds[-1] == Hangup("dl-a1", "agent hung up")
    state, more = fsm.step(state, ChannelGone(16), 10.1)
    assert state.phase is Phase.ENDED
    assert finished(list(more)).connected


def test_connect_timeout_abandons_with_message() -> None:
    state, cmds = run([*ANSWER, (4.5, TimerFired(Timer.CONNECT))])
    assert state.phase is Phase.ABANDONING
    assert CancelAgentRequest() in cmds
    assert PlayAbandonMessage("dl-a1", "sound:vm-nobodyavail", "ab-a1") in cmds
    d = dial_ended(cmds)
    assert d.answered and d.abandoned
    # A late agent is given back, never connected.
    state, late = fsm.step(state, AgentAssigned("201", "agent-201"), 4.6)
    assert late == (ReleaseAgent("201"),)
    state, hang = fsm.step(state, PlaybackDone("ab-a1"), 8.0)
    assert Hangup("dl-a1", "abandon message played") in hang
    state, end = fsm.step(state, ChannelGone(16), 8.1)
    assert state.phase is Phase.ABANDONED
    f = finished(list(end))
    assert f.abandoned and not f.connected
    assert not of(list(end), DialEnded), "the dial phase is reported once"


def test_connect_timer_after_connect_is_ignored() -> None:
    state, cmds = run(
        [
            *ANSWER,
            (2.6, AgentAssigned("201", "agent-201")),
            (2.6, Bridged()),
            (4.5, TimerFired(Timer.CONNECT)),
        ]
    )
    assert state.phase is Phase.CONNECTED
    assert not of(cmds, PlayAbandonMessage)


def test_amd_machine_is_hung_up_and_not_a_person() -> None:
    state, cmds = run(
        [
            (0, Start()),
            (0.1, DialSeen("RINGING")),
            (3, StasisStarted(("amd", "MACHINE", "LONGGREETING-1500-1500"))),
        ]
    )
    assert Hangup("dl-a1", "answering machine") in cmds
    assert not of(cmds, RequestAgent)
    state, end = fsm.step(state, ChannelGone(16), 3.1)
    assert finished(list(end)).outcome is DialOutcome.MACHINE
    d = dial_ended(cmds + list(end))
    assert not d.answered


def test_amd_human_is_connected() -> None:
    _, cmds = run([(0, Start()), (3, StasisStarted(("amd", "HUMAN", "HUMAN-800-800")))])
    assert RequestAgent() in cmds


def test_after_amd_the_connect_limit_counts_from_the_end_of_the_greeting() -> None:
    # AMD said HUMAN after 0.8 s of silence following the greeting: 1.2 s are left.
    params = replace(PARAMS, amd=True, amd_after_greeting=0.8)
    _, cmds = run([(0, Start()), (3, StasisStarted(("amd", "HUMAN", "HUMAN-800-800")))], params)
    assert StartTimer(Timer.CONNECT, 3 + 2.0 - 0.8) in cmds
    # without AMD the whole limit counts from the answer
    _, cmds = run([(0, Start()), (3, StasisStarted(("customer", "camp")))], PARAMS)
    assert StartTimer(Timer.CONNECT, 3 + 2.0) in cmds


def test_originate_5xx_retries_same_channel_then_409_is_accepted() -> None:
    state, cmds = run([(0, Start()), (0.1, OriginateFailed(500, "Allocation failed"))])
    assert StartTimer(Timer.RETRY_ORIGINATE, 0.6) in cmds
    state, again = fsm.step(state, TimerFired(Timer.RETRY_ORIGINATE), 0.6)
    assert again == (Originate("dl-a1", PARAMS.endpoint, "5551000", 30),)
    state, c409 = fsm.step(
        state, OriginateFailed(409, "Channel with given unique ID already exists"), 0.7
    )
    assert state.originate_accepted and state.phase is Phase.DIALING
    assert not of(list(c409), Originate)


def test_originate_5xx_gives_up_after_max_tries() -> None:
    state, cmds = run(
        [
            (0, Start()),
            (0.1, OriginateFailed(503, "x")),
            (0.6, TimerFired(Timer.RETRY_ORIGINATE)),
            (0.7, OriginateFailed(503, "x")),
            (1.7, TimerFired(Timer.RETRY_ORIGINATE)),
            (1.8, OriginateFailed(503, "x")),
        ]
    )
    assert len(of(cmds, Originate)) == 3
    assert state.phase is Phase.FAILED
    assert finished(cmds).outcome is DialOutcome.FAILED


def test_no_retry_once_the_channel_was_seen() -> None:
    # The HTTP reply was lost but the call exists: events arrived first.
    state, cmds = run([(0, Start()), (0.05, DialSeen("")), (0.1, OriginateFailed(0, "timeout"))])
    assert not of(cmds, StartTimer)
    state, again = fsm.step(state, TimerFired(Timer.RETRY_ORIGINATE), 1)
    assert again == ()


def test_4xx_fails_at_once() -> None:
    state, cmds = run([(0, Start()), (0.1, OriginateFailed(400, "bad endpoint"))])
    assert state.phase is Phase.FAILED
    assert len(of(cmds, Originate)) == 1


def test_vanished_while_ringing_counts_as_no_answer() -> None:
    _, cmds = run([(0, Start()), (1, DialSeen("RINGING")), (5, Vanished())])
    assert finished(cmds).outcome is DialOutcome.NO_ANSWER


def test_vanished_while_connected_ends_the_talk() -> None:
    state, cmds = run(
        [*ANSWER, (2.6, AgentAssigned("201", "agent-201")), (2.6, Bridged()), (9, Vanished())]
    )
    assert state.phase is Phase.ENDED
    assert of(cmds, TalkEnded)


def test_end_requested_while_ringing_cancels() -> None:
    state, cmds = run([(0, Start()), (1, DialSeen("RINGING")), (2, EndRequested("shutdown"))])
    assert Hangup("dl-a1", "shutdown") in cmds
    state, end = fsm.step(state, DialSeen("NOANSWER"), 2.1)
    state, end = fsm.step(state, ChannelGone(16), 2.1)
    assert finished(list(end)).outcome is DialOutcome.NO_ANSWER


def test_end_requested_while_waiting_for_agent_is_an_abandon() -> None:
    state, cmds = run([*ANSWER, (3, EndRequested("shutdown"))])
    d = dial_ended(cmds)
    assert d.abandoned
    state, _ = fsm.step(state, ChannelGone(16), 3.1)
    assert state.phase is Phase.ABANDONED


def test_events_after_the_end_are_ignored() -> None:
    state, _ = run([(0, Start()), (0.1, DialSeen("BUSY")), (0.1, ChannelGone(0))])
    for ev in (
        ChannelGone(0),
        DialSeen("ANSWER"),
        StasisStarted(("x",)),
        TimerFired(Timer.CONNECT),
    ):
        state2, more = fsm.step(state, ev, 1)
        assert more == ()
        assert state2.phase is state.phase


def test_connect_failed_is_an_abandon_and_frees_the_agent() -> None:
    state, cmds = run([*ANSWER, (2.6, AgentAssigned("201", "agent-201"))])
    assert state.phase is Phase.CONNECTING
    assert AddToBridge("agent-201", "dl-a1") in cmds
    assert not of(cmds, StartRecording)
    state, more = fsm.step(state, BridgeFailed("400 Channel not found"), 2.7)
    assert ReleaseAgent("201") in more
    assert Hangup("dl-a1", "connect to agent failed") in more
    state, end = fsm.step(state, ChannelGone(16), 2.8)
    assert state.phase is Phase.ABANDONED
    f = finished(list(end))
    assert f.abandoned and not f.connected
    assert not of(list(end), TalkEnded)


def test_gone_while_connecting_releases_the_agent() -> None:
    state, _ = run([*ANSWER, (2.6, AgentAssigned("201", "agent-201"))])
    state, end = fsm.step(state, ChannelGone(16), 2.7)
    assert ReleaseAgent("201") in end
    assert state.phase is Phase.ABANDONED


def test_recording_started_after_the_end_is_stopped() -> None:
    state, _ = run([*ANSWER, (2.6, AgentAssigned("201", "agent-201")), (2.6, Bridged())])
    state, end = fsm.step(state, ChannelGone(16), 3.0)
    assert StopRecording("rec-a1") in end
    state, late = fsm.step(state, RecordingStarted("rec-a1"), 3.1)
    assert late == ()  # already stopped at the end


# ---------------------------------------------------------------- issue 13


def test_originate_without_answer_is_resolved_by_asking_never_resent() -> None:
    state, cmds = run([(0, Start()), (10, OriginateFailed(0, "timeout"))])
    assert fsm.ResolveOriginate("dl-a1") in cmds
    assert len(of(cmds, Originate)) == 1 and not of(cmds, StartTimer)
    # Asterisk has it: the call goes on as if the answer had come.
    found, _ = fsm.step(state, fsm.OriginateFound(), 10.1)
    assert found.originate_accepted and found.phase is Phase.DIALING
    # Asterisk does not have it: wait for its events; none came -> counted as no answer.
    state, cmds2 = fsm.step(state, fsm.OriginateNotFound("404"), 10.1)
    assert StartTimer(Timer.RESOLVE_ORIGINATE, 10.1 + PARAMS.originate_resolve_grace) in cmds2
    state, cmds3 = fsm.step(state, TimerFired(Timer.RESOLVE_ORIGINATE), 15.1)
    assert finished(list(cmds3)).outcome is DialOutcome.NO_ANSWER
    assert not of(list(cmds3), Originate)


def test_lost_originate_whose_events_come_is_classified_by_them() -> None:
    _state, cmds = run(
        [
            (0, Start()),
            (10, OriginateFailed(0, "timeout")),
            (10.1, fsm.OriginateNotFound("404")),
            (10.2, DialSeen("")),
            (10.2, DialSeen("BUSY")),
            (10.2, ChannelGone(0)),
            (15.1, TimerFired(Timer.RESOLVE_ORIGINATE)),
        ]
    )
    assert finished(cmds).outcome is DialOutcome.BUSY
    assert len(of(cmds, Originate)) == 1


def test_amd_runs_after_the_answer_into_the_app() -> None:
    params = replace(PARAMS, amd=True, amd_after_greeting=0.8)
    state, cmds = run(
        [(0, Start()), (2, DialSeen("ANSWER")), (2, StasisStarted(("customer",)))], params
    )
    assert state.phase is Phase.DETECTING and fsm.RunAmd("dl-a1") in cmds
    assert not of(cmds, RequestAgent)
    state, cmds = fsm.step(state, StasisStarted(("amd", "MACHINE", "LONGGREETING")), 4.4)
    assert state.outcome is DialOutcome.MACHINE and Hangup("dl-a1", "answering machine") in cmds
    # a person: the agent is requested, the limit shortened by the after-greeting silence
    state, _ = run([(0, Start()), (2, StasisStarted(("customer",)))], params)
    state, cmds = fsm.step(state, StasisStarted(("amd", "HUMAN", "HUMAN-800-800")), 5)
    assert RequestAgent() in cmds and StartTimer(Timer.CONNECT, 5 + 1.2) in cmds
    assert state.answered_at == 2


def test_amd_gone_during_detection_is_answered_not_abandoned() -> None:
    params = replace(PARAMS, amd=True)
    _state, cmds = run(
        [(0, Start()), (2, StasisStarted(("customer",))), (3, ChannelGone(16))], params
    )
    f = finished(cmds)
    assert f.outcome is DialOutcome.ANSWERED and not f.abandoned and not f.connected
    assert not dial_ended(cmds).answered


def test_amd_that_cannot_start_treats_the_call_as_a_person() -> None:
    params = replace(PARAMS, amd=True)
    _, cmds = run(
        [(0, Start()), (2, StasisStarted(("customer",))), (2.1, fsm.AmdFailed("409"))], params
    )
    assert RequestAgent() in cmds


def test_connect_limit_ends_at_the_bridge_entry_late_connect_is_an_abandon() -> None:
    _state, cmds = run(
        [
            *ANSWER,
            (2.6, AgentAssigned("201", "agent-201")),
            (4.5, TimerFired(Timer.CONNECT)),  # addChannel still in flight at the limit
            (6.0, Bridged("agent-201")),
            (20, ChannelGone(16)),
        ]
    )
    d = dial_ended(cmds)
    assert d.answered and d.abandoned
    f = finished(cmds)
    assert f.connected and f.abandoned
    measured = of(cmds, fsm.Connected)
    assert measured == [fsm.Connected(6.0 - 2.5, 6.0 - 2.6, True)]


def test_bridge_entry_into_another_bridge_is_not_the_connect() -> None:
    state, _ = run(
        [*ANSWER, (2.6, AgentAssigned("201", "agent-201")), (2.7, Bridged("rec-bridge"))]
    )
    assert state.phase is Phase.CONNECTING
    state, cmds = fsm.step(state, Bridged("agent-201"), 2.8)
    assert state.phase is Phase.CONNECTED
    assert of(list(cmds), fsm.Connected) == [fsm.Connected(2.8 - 2.5, 2.8 - 2.6, False)]


def test_bridge_entry_past_the_limit_before_its_timer_fired_is_still_an_abandon() -> None:
    # A busy event loop: the CONNECT timer has not run yet when the entry is seen at 4.6 s.
    _, cmds = run(
        [
            *ANSWER,
            (2.6, AgentAssigned("201", "agent-201")),
            (4.6, Bridged("agent-201")),
            (20, ChannelGone(16)),
        ]
    )
    assert dial_ended(cmds).abandoned
    f = finished(cmds)
    assert f.connected and f.abandoned
    assert of(cmds, fsm.Connected) == [fsm.Connected(4.6 - 2.5, 4.6 - 2.6, True)]
