"""How a dial attempt ended, in words every package shares: the outcome vocabularies
and the one DIALSTATUS table (pure, no I/O).

``AttemptOutcome`` (``compliance.model``) is the ledger's: what the caps need,
with RESERVED for an attempt not yet ended. ``DialOutcome`` is the dialer's finer
view (the retry rules tell an unallocated number from a rejected call); it is
folded onto the ledger's by ``ledger_outcome`` and read back by ``dial_outcome``.
``DIALSTATUS_OUTCOME`` is the one DIALSTATUS table, for ARI's ``Dial`` events of
the dialer's own calls (``dialer.outcomes.classify_dial``) and for Dial()'s
``${DIALSTATUS}`` of the agents' manual calls (the ``dialer_result`` AGI).
Q.850 causes, AMD and the evidence of one call stay in ``dialer.outcomes``.
"""

from __future__ import annotations

from enum import StrEnum

from compliance.model import AttemptOutcome


class DialStatus(StrEnum):
    """``Dial.dialstatus`` values as ARI sends them, verbatim."""

    DIALING = ""
    RINGING = "RINGING"
    PROGRESS = "PROGRESS"
    ANSWER = "ANSWER"
    BUSY = "BUSY"
    CONGESTION = "CONGESTION"
    NOANSWER = "NOANSWER"
    CANCEL = "CANCEL"
    CHANUNAVAIL = "CHANUNAVAIL"
    DONTCALL = "DONTCALL"
    TORTURE = "TORTURE"
    INVALIDARGS = "INVALIDARGS"


class DialOutcome(StrEnum):
    """The dialer's own, finer view of a dial phase (retry rules need it).

    ``ledger_outcome`` folds it onto the ledger's ``AttemptOutcome``.
    """

    ANSWERED = "answered"
    MACHINE = "machine"
    BUSY = "busy"
    CONGESTION = "congestion"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    UNALLOCATED = "unallocated"  # the number does not exist: never retry
    FAILED = "failed"  # never reached the network
    CANCELLED = "cancelled"  # reserved, never originated


_LEDGER: dict[DialOutcome, AttemptOutcome] = {
    DialOutcome.ANSWERED: AttemptOutcome.ANSWERED,
    DialOutcome.MACHINE: AttemptOutcome.MACHINE,
    DialOutcome.BUSY: AttemptOutcome.BUSY,
    DialOutcome.CONGESTION: AttemptOutcome.CONGESTION,
    DialOutcome.NO_ANSWER: AttemptOutcome.NO_ANSWER,
    DialOutcome.REJECTED: AttemptOutcome.REJECTED,
    # The far end answered the setup with "no such number": the attempt reached
    # the network, so it counts like a rejected call for the caps.
    DialOutcome.UNALLOCATED: AttemptOutcome.REJECTED,
    DialOutcome.FAILED: AttemptOutcome.FAILED,
    DialOutcome.CANCELLED: AttemptOutcome.CANCELLED,
}


def ledger_outcome(outcome: DialOutcome) -> AttemptOutcome:
    """The ledger's outcome for a dialer outcome."""
    return _LEDGER[outcome]


# The other way, for an attempt whose ledger entry is all that is left of its end.
# REJECTED stands for both rejected and unallocated: read back as rejected.
_FROM_LEDGER: dict[AttemptOutcome, DialOutcome] = {
    ledger: dial for dial, ledger in _LEDGER.items() if dial is not DialOutcome.UNALLOCATED
}


def dial_outcome(outcome: AttemptOutcome) -> DialOutcome | None:
    """The dialer outcome a final ledger outcome stands for (None for RESERVED)."""
    return _FROM_LEDGER.get(outcome)


# A final DIALSTATUS -> outcome (``classify_dial`` refines NOANSWER by the Q.850 cause).
# CANCEL (the caller gave up while it rang) reached the network: like no answer.
# CHANUNAVAIL (the channel could not be had: endpoint unreachable, trunk down) counts as
# congestion, conservatively: the ledger counts it and its retries stay capped.
# DONTCALL / TORTURE: the callee's privacy manager refused the call, a rejection.
DIALSTATUS_OUTCOME: dict[str, DialOutcome] = {
    DialStatus.ANSWER: DialOutcome.ANSWERED,
    DialStatus.BUSY: DialOutcome.BUSY,
    DialStatus.CONGESTION: DialOutcome.CONGESTION,
    DialStatus.CHANUNAVAIL: DialOutcome.CONGESTION,
    DialStatus.NOANSWER: DialOutcome.NO_ANSWER,
    DialStatus.CANCEL: DialOutcome.NO_ANSWER,
    DialStatus.DONTCALL: DialOutcome.REJECTED,
    DialStatus.TORTURE: DialOutcome.REJECTED,
    DialStatus.INVALIDARGS: DialOutcome.FAILED,
}


def outcome_from_dialstatus(status: str) -> DialOutcome | None:
    """The outcome a final DIALSTATUS says (None for a status that is not final)."""
    return DIALSTATUS_OUTCOME.get(status.upper())


def dialstatus_ledger_outcome(status: str) -> AttemptOutcome:
    """Dial()'s DIALSTATUS -> how a reserved attempt ended, for the ledger.

    An empty DIALSTATUS means Dial() never ran (hung up before): the reservation is
    released; a value Dial() does not document is a failure.
    """
    if not status:
        return AttemptOutcome.CANCELLED
    outcome = outcome_from_dialstatus(status)
    return ledger_outcome(outcome) if outcome is not None else AttemptOutcome.FAILED
