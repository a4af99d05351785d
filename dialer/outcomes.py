"""How a dial attempt ended: ARI ``Dial.dialstatus``, Q.850 causes and AMDSTATUS -> outcome.

Pure: no I/O. Built from the real Asterisk 22 captures in
``asterisk-reference/`` (README, "Behaviour a simulator must reproduce"):

* ``Dial.dialstatus`` is the authority. The final values are ANSWER, BUSY,
  CONGESTION and NOANSWER. NOANSWER covers three different things: a remote
  reject (Q.850 21), an unallocated number (Q.850 1) and the dialer's own
  DELETE of a ringing channel; the non-soft ``ChannelHangupRequest`` on ``;1``
  carries the real cause that tells them apart.
* ``ChannelDestroyed.cause`` of the ``;1`` half is 0 ("Unknown") for busy and
  congestion, and can be 0 even after a normal answered call, so it is only a
  fallback when no final Dial event came.
* When the originate ``timeout`` expires there is NO final Dial event; the
  channel is destroyed with cause 19 -> no answer.
* A context or extension that does not exist gives no Dial event at all and
  ``ChannelDestroyed`` cause 0 -> the call never reached the network (failed).
* ``ChannelHangupRequest`` with ``soft: true`` carries Asterisk's soft-hangup
  flag (32 explicit, 16 dialplan ended), not a Q.850 cause: never read it as one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from compliance.outcomes import DIALSTATUS_OUTCOME as DIALSTATUS_OUTCOME
from compliance.outcomes import DialOutcome as DialOutcome
from compliance.outcomes import DialStatus as DialStatus
from compliance.outcomes import dial_outcome as dial_outcome
from compliance.outcomes import ledger_outcome as ledger_outcome
from compliance.outcomes import outcome_from_dialstatus as outcome_from_dialstatus


class Q850(IntEnum):
    """The Q.850 causes the dialer distinguishes."""

    UNKNOWN = 0  # what ARI puts in ChannelDestroyed for busy / congestion on ;1
    UNALLOCATED = 1
    NO_ROUTE_TRANSIT_NET = 2
    NO_ROUTE_DESTINATION = 3
    NORMAL_CLEARING = 16
    USER_BUSY = 17
    NO_USER_RESPONSE = 18
    NO_ANSWER = 19
    SUBSCRIBER_ABSENT = 20
    CALL_REJECTED = 21
    NUMBER_CHANGED = 22
    DESTINATION_OUT_OF_ORDER = 27
    INVALID_NUMBER_FORMAT = 28
    NORMAL_UNSPECIFIED = 31
    NORMAL_CIRCUIT_CONGESTION = 34
    NETWORK_OUT_OF_ORDER = 38
    TEMPORARY_FAILURE = 41
    SWITCH_CONGESTION = 42


FINAL_DIAL_STATUSES = frozenset(
    {
        DialStatus.ANSWER,
        DialStatus.BUSY,
        DialStatus.CONGESTION,
        DialStatus.NOANSWER,
        DialStatus.CANCEL,
        DialStatus.CHANUNAVAIL,
        DialStatus.DONTCALL,
        DialStatus.TORTURE,
        DialStatus.INVALIDARGS,
    }
)


class AmdStatus(StrEnum):
    """``AMDSTATUS`` as set by Asterisk's AMD() application."""

    HUMAN = "HUMAN"
    MACHINE = "MACHINE"
    NOTSURE = "NOTSURE"
    HANGUP = "HANGUP"


_CAUSE_OUTCOME: dict[int, DialOutcome] = {
    Q850.UNALLOCATED: DialOutcome.UNALLOCATED,
    Q850.NO_ROUTE_TRANSIT_NET: DialOutcome.UNALLOCATED,
    Q850.NO_ROUTE_DESTINATION: DialOutcome.UNALLOCATED,
    Q850.NUMBER_CHANGED: DialOutcome.UNALLOCATED,
    Q850.INVALID_NUMBER_FORMAT: DialOutcome.UNALLOCATED,
    Q850.USER_BUSY: DialOutcome.BUSY,
    Q850.NO_USER_RESPONSE: DialOutcome.NO_ANSWER,
    Q850.NO_ANSWER: DialOutcome.NO_ANSWER,
    Q850.SUBSCRIBER_ABSENT: DialOutcome.NO_ANSWER,
    Q850.CALL_REJECTED: DialOutcome.REJECTED,
    Q850.DESTINATION_OUT_OF_ORDER: DialOutcome.CONGESTION,
    Q850.NORMAL_CIRCUIT_CONGESTION: DialOutcome.CONGESTION,
    Q850.NETWORK_OUT_OF_ORDER: DialOutcome.CONGESTION,
    Q850.TEMPORARY_FAILURE: DialOutcome.CONGESTION,
    Q850.SWITCH_CONGESTION: DialOutcome.CONGESTION,
}


def outcome_from_cause(cause: int | None) -> DialOutcome | None:
    """The outcome a Q.850 cause alone implies before answer, or None when it says nothing."""
    if cause is None:
        return None
    return _CAUSE_OUTCOME.get(cause)


@dataclass(frozen=True, slots=True)
class DialEvidence:
    """What was seen of one originated channel before it was answered or destroyed.

    ``final_dialstatus`` is the last final ``Dial.dialstatus`` for our ``;1``
    channel (None when none came); ``saw_dial`` says whether any Dial event came
    at all; ``hangup_cause`` is the Q.850 cause of the last NON-soft
    ``ChannelHangupRequest`` on ``;1``; ``destroyed_cause`` the cause of its
    ``ChannelDestroyed``; ``cancelled_by_us`` is True when the dialer itself
    DELETEd the channel while it was ringing.
    """

    final_dialstatus: str | None = None
    saw_dial: bool = False
    hangup_cause: int | None = None
    destroyed_cause: int | None = None
    cancelled_by_us: bool = False


def classify_dial(ev: DialEvidence) -> DialOutcome:
    """The outcome of a dial phase that ended without the call being answered into the app
    (or the ANSWERED outcome when the final Dial status says so)."""
    status = ev.final_dialstatus
    if status == DialStatus.NOANSWER:
        # NOANSWER is also what a reject, an unallocated number and our own DELETE give.
        if ev.cancelled_by_us:
            return DialOutcome.NO_ANSWER
        by_cause = outcome_from_cause(ev.hangup_cause) or outcome_from_cause(ev.destroyed_cause)
        if by_cause in (DialOutcome.REJECTED, DialOutcome.UNALLOCATED):
            return by_cause
        return DialOutcome.NO_ANSWER
    by_status = outcome_from_dialstatus(status) if status is not None else None
    if by_status is not None:
        return by_status
    # No final Dial event.
    if not ev.saw_dial:
        # No Dial at all: the dialplan never dialled (no such context/extension),
        # unless a real cause says the network answered. ChannelDestroyed's cause is
        # a fact too: 19 after an originate timeout whose Dial events were not seen
        # (a late subscription) is a no answer that the caps count, not a failure.
        by_cause = outcome_from_cause(ev.hangup_cause) or outcome_from_cause(ev.destroyed_cause)
        return by_cause if by_cause is not None else DialOutcome.FAILED
    if ev.cancelled_by_us:
        return DialOutcome.NO_ANSWER
    # Originate timeout: cause 19 and no final Dial.
    by_cause = outcome_from_cause(ev.hangup_cause) or outcome_from_cause(ev.destroyed_cause)
    return by_cause if by_cause is not None else DialOutcome.NO_ANSWER


def outcome_from_amd(status: str) -> DialOutcome:
    """AMDSTATUS -> outcome. NOTSURE is treated as a person (never drop a human);
    HANGUP means a person or machine answered and hung up during detection."""
    try:
        amd = AmdStatus(status.upper())
    except ValueError:
        return DialOutcome.ANSWERED
    return DialOutcome.MACHINE if amd is AmdStatus.MACHINE else DialOutcome.ANSWERED


def is_final_dialstatus(status: str) -> bool:
    return status in FINAL_DIAL_STATUSES


def hangup_request_cause(cause: int | None, soft: bool | None) -> int | None:
    """The Q.850 cause of a ``ChannelHangupRequest``, or None for a soft request
    (whose ``cause`` is a soft-hangup flag: 32 explicit, 16 dialplan ended)."""
    if soft:
        return None
    return cause
