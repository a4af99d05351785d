"""Reconcile and recovery as pure decisions (tables: what we know x what Asterisk has)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from dialer import fsm
from dialer.attempt_model import AttemptRecord, Stage
from dialer.calls.reconcile import AgentLine, ReconcileActions, reconcile, recovery
from dialer.outcomes import DialOutcome

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def call(
    attempt: str, phase: fsm.Phase, *, accepted: bool = True, seen: bool = False
) -> fsm.CallState:
    params = fsm.CallParams(attempt, f"dl-{attempt}", "Local/x@y", "100", 25)
    return replace(
        fsm.new_call(params), phase=phase, originate_accepted=accepted, saw_event=seen
    )


AG1 = AgentLine("c", "a1", "ag-a1", True, None)
AG2_TALKING = AgentLine("c", "a2", "ag-a2", True, "t1")
AG3_CONNECTING = AgentLine("c", "a3", "ag-a3", False, None)


@pytest.mark.parametrize(
    ("calls", "agents", "channels", "expected"),
    [
        pytest.param({}, [], {}, ReconcileActions(), id="nothing"),
        pytest.param(
            {"v1": call("v1", fsm.Phase.RINGING)},
            [],
            {},
            ReconcileActions(vanished=("v1",)),
            id="accepted call whose channel is gone: vanished",
        ),
        pytest.param(
            {"v2": call("v2", fsm.Phase.DIALING, accepted=False, seen=False)},
            [],
            {},
            ReconcileActions(),
            id="originate not answered yet: not vanished (it may still come)",
        ),
        pytest.param(
            {"v3": call("v3", fsm.Phase.DIALING, accepted=False, seen=True)},
            [],
            {},
            ReconcileActions(vanished=("v3",)),
            id="seen by an event, then gone: vanished",
        ),
        pytest.param(
            {"r": call("r", fsm.Phase.RESERVED)},
            [],
            {},
            ReconcileActions(),
            id="reserved (gate still asked): left alone",
        ),
        pytest.param(
            {"e": call("e", fsm.Phase.ENDED)},
            [],
            {},
            ReconcileActions(),
            id="ended: left alone",
        ),
        pytest.param(
            {"u": call("u", fsm.Phase.RINGING)},
            [],
            {"dl-u": "Up", "dl-u;2": "Up"},
            ReconcileActions(answered=("u",)),
            id="ringing but Up: answered while we were away",
        ),
        pytest.param(
            {"k": call("k", fsm.Phase.RINGING)},
            [],
            {"dl-k": "Ring"},
            ReconcileActions(),
            id="still ringing: nothing",
        ),
        pytest.param(
            {"c": call("c", fsm.Phase.CONNECTED)},
            [],
            {"dl-c": "Up"},
            ReconcileActions(),
            id="connected and Up: nothing",
        ),
        pytest.param(
            {},
            [AG1, AG2_TALKING, AG3_CONNECTING],
            {"ag-a1": "Up"},
            ReconcileActions(agents_lost=(AG2_TALKING,)),
            id="softphone gone: agent lost (a connecting one is not)",
        ),
        pytest.param(
            {"k": call("k", fsm.Phase.RINGING)},
            [AG1],
            {"dl-k": "Ring", "ag-a1": "Up", "dl-zz": "Up", "dl-zz;2": "Up", "ag-old": "Up",
             "PJSIP/100-0001": "Up"},
            ReconcileActions(orphans=("dl-zz", "ag-old")),
            id="our channels nobody knows: orphans (never a ;2 half or a foreign channel)",
        ),
    ],
)
def test_reconcile(
    calls: dict[str, fsm.CallState],
    agents: list[AgentLine],
    channels: dict[str, str],
    expected: ReconcileActions,
) -> None:
    assert reconcile(calls, agents, channels) == expected


def record(attempt: str, stage: Stage, *, answered: bool = False) -> AttemptRecord:
    return AttemptRecord(
        attempt_id=attempt,
        campaign="c",
        lead_id="1",
        number="13800138000",
        product="p",
        channel_id=f"dl-{attempt}",
        stage=stage,
        phase="dialing",
        created_at=T0,
        updated_at=T0,
        answered=answered,
    )


@pytest.mark.parametrize(
    ("rec", "channels", "outcome", "hang_up"),
    [
        (record("a", Stage.RESERVING), set(), DialOutcome.CANCELLED, False),
        (record("b", Stage.ORIGINATING), {"dl-b"}, DialOutcome.NO_ANSWER, True),
        (record("c", Stage.LIVE), set(), DialOutcome.NO_ANSWER, False),
        (record("d", Stage.LIVE, answered=True), {"dl-d", "dl-d;2"}, DialOutcome.ANSWERED, True),
    ],
)
def test_recovery_outcome_per_attempt(
    rec: AttemptRecord, channels: set[str], outcome: DialOutcome, hang_up: bool
) -> None:
    plan = recovery([rec], channels)
    assert [(r.record.attempt_id, r.outcome, r.hang_up) for r in plan.attempts] == [
        (rec.attempt_id, outcome, hang_up)
    ]


def test_recovery_hangs_up_every_channel_of_ours_and_nothing_else() -> None:
    plan = recovery([], {"dl-x", "dl-x;2", "ag-7", "PJSIP/100-1", "Local/a@b-1;1"})
    assert plan.orphans == ("ag-7", "dl-x")
