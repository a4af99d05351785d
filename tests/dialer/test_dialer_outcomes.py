"""Outcome classification, table-driven, and replayed from the real Asterisk 22 captures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compliance.model import AttemptOutcome
from dialer.outcomes import (
    DialEvidence,
    DialOutcome,
    classify_dial,
    hangup_request_cause,
    is_final_dialstatus,
    ledger_outcome,
    outcome_from_amd,
)

CAPTURES = Path("/work/shared/asterisk-reference/ari-events")


@pytest.mark.parametrize(
    ("evidence", "expected"),
    [
        (DialEvidence("ANSWER", True, 16, 0), DialOutcome.ANSWERED),
        (DialEvidence("BUSY", True, None, 0), DialOutcome.BUSY),
        (DialEvidence("CONGESTION", True, None, 0), DialOutcome.CONGESTION),
        (DialEvidence("NOANSWER", True, 21, 21), DialOutcome.REJECTED),
        (DialEvidence("NOANSWER", True, 1, 1), DialOutcome.UNALLOCATED),
        (DialEvidence("NOANSWER", True, None, 16, cancelled_by_us=True), DialOutcome.NO_ANSWER),
        (DialEvidence("NOANSWER", True, None, 16), DialOutcome.NO_ANSWER),
        # originate timeout: no final Dial, cause 19
        (DialEvidence(None, True, None, 19), DialOutcome.NO_ANSWER),
        # no such context: no Dial at all, cause 0
        (DialEvidence(None, False, None, 0), DialOutcome.FAILED),
        # busy with cause 0 on ;1 and no final Dial would otherwise look like nothing
        (DialEvidence(None, True, None, 0), DialOutcome.NO_ANSWER),
        (DialEvidence(None, True, 17, 0), DialOutcome.BUSY),
        (DialEvidence(None, True, None, 34), DialOutcome.CONGESTION),
        (DialEvidence("CHANUNAVAIL", True, None, 0), DialOutcome.CONGESTION),
        (DialEvidence("INVALIDARGS", True, None, 0), DialOutcome.FAILED),
        # the callee's privacy manager refused the call
        (DialEvidence("DONTCALL", True, None, 0), DialOutcome.REJECTED),
        (DialEvidence("CANCEL", True, None, 0), DialOutcome.NO_ANSWER),
        (DialEvidence(None, False, 21, 21), DialOutcome.REJECTED),
    ],
)
def test_classify_dial_table(evidence: DialEvidence, expected: DialOutcome) -> None:
    assert classify_dial(evidence) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("HUMAN", DialOutcome.ANSWERED),
        ("MACHINE", DialOutcome.MACHINE),
        ("machine", DialOutcome.MACHINE),
        ("NOTSURE", DialOutcome.ANSWERED),
        ("HANGUP", DialOutcome.ANSWERED),
        ("garbage", DialOutcome.ANSWERED),
    ],
)
def test_amd_table(status: str, expected: DialOutcome) -> None:
    assert outcome_from_amd(status) is expected


def test_soft_hangup_request_is_not_a_cause() -> None:
    assert hangup_request_cause(32, True) is None
    assert hangup_request_cause(16, True) is None
    assert hangup_request_cause(21, False) == 21
    assert hangup_request_cause(21, None) == 21


def test_ledger_mapping_is_total() -> None:
    for outcome in DialOutcome:
        assert isinstance(ledger_outcome(outcome), AttemptOutcome)
    assert ledger_outcome(DialOutcome.UNALLOCATED) is AttemptOutcome.REJECTED
    assert ledger_outcome(DialOutcome.ANSWERED) is AttemptOutcome.ANSWERED


def test_final_statuses() -> None:
    assert not is_final_dialstatus("")
    assert not is_final_dialstatus("RINGING")
    assert is_final_dialstatus("NOANSWER")


def evidence_from_capture(
    name: str, channel: str, *, cancelled: bool = False
) -> tuple[DialEvidence, bool]:
    """Fold one capture's frames for our ;1 channel the way the runner does."""
    ev = DialEvidence(cancelled_by_us=cancelled)
    answered = False
    for line in (CAPTURES / f"scenario_{name}_events.jsonl").read_text().splitlines():
        frame = json.loads(line)
        kind = frame["type"]
        ch = (frame.get("channel") or {}).get("id")
        if kind == "Dial" and (frame.get("peer") or {}).get("id") == channel:
            status = frame.get("dialstatus", "")
            ev = DialEvidence(
                status if is_final_dialstatus(status) else ev.final_dialstatus,
                True,
                ev.hangup_cause,
                ev.destroyed_cause,
                ev.cancelled_by_us,
            )
        elif kind == "ChannelHangupRequest" and ch == channel:
            cause = hangup_request_cause(frame.get("cause"), frame.get("soft"))
            if cause is not None:
                ev = DialEvidence(
                    ev.final_dialstatus, ev.saw_dial, cause, ev.destroyed_cause, ev.cancelled_by_us
                )
        elif kind == "ChannelDestroyed" and ch == channel:
            ev = DialEvidence(
                ev.final_dialstatus,
                ev.saw_dial,
                ev.hangup_cause,
                frame.get("cause"),
                ev.cancelled_by_us,
            )
        elif kind == "StasisStart" and ch == channel:
            answered = True
    return ev, answered


@pytest.mark.parametrize(
    ("scenario", "channel", "cancelled", "expected"),
    [
        ("busy", "cust-busy", False, DialOutcome.BUSY),
        ("congestion", "cust-congestion", False, DialOutcome.CONGESTION),
        ("noanswer", "cust-noanswer", False, DialOutcome.NO_ANSWER),
        ("rejected", "cust-rejected", False, DialOutcome.REJECTED),
        ("unallocated", "cust-unallocated", False, DialOutcome.UNALLOCATED),
        ("cancel_while_ringing", "cust-cancel", True, DialOutcome.NO_ANSWER),
        ("customer_hangup_first", "cust-custhup", False, DialOutcome.ANSWERED),
    ],
)
def test_real_captures(scenario: str, channel: str, cancelled: bool, expected: DialOutcome) -> None:
    if not CAPTURES.exists():
        pytest.skip("asterisk-reference captures not present")
    ev, answered = evidence_from_capture(scenario, channel, cancelled=cancelled)
    assert classify_dial(ev) is expected, ev
    assert answered == (expected is DialOutcome.ANSWERED)
