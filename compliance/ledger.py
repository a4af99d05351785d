"""The contact ledger port: atomic check-and-reserve against a customer's contact history.

Every dial attempt the dialer places, on any host, goes through one
``ContactLedger``. ``check_and_reserve`` reads the customer's history,
evaluates the policy with the pure engine (``compliance.engine.evaluate``) and,
only when the call is allowed, appends a RESERVED attempt, as one atomic step
per customer: two processes racing on the same customer can never both get a
slot the caps allow only once. Every decision (allowed or refused) is written
to a decisions log with its reasons and the policy version.

Implementations: ``compliance.sql_ledger.SqlLedger`` (SQLite embedded default,
PostgreSQL in production; the system of record) and
``compliance.redis_ledger.RedisLedger`` (hot state for many processes and
hosts). This module holds what they share: the Protocol, the decision record,
the errors and the (de)serialization of reasons.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from compliance.clock import utcnow as utcnow
from compliance.engine import evaluate
from compliance.model import (
    AttemptOutcome,
    CallRequest,
    ContactEvent,
    Decision,
    ListStatus,
    Reason,
    ReasonCode,
)
from compliance.numbers import InvalidNumber, NumberPlan
from compliance.policy import Policy


class LedgerError(Exception):
    """A ledger invariant was broken by the caller (not a business refusal)."""


class DuplicateAttempt(LedgerError):
    """``check_and_reserve`` was given an attempt id the ledger already holds."""


class UnknownAttempt(LedgerError, LookupError):
    """``resolve`` was given an attempt id the ledger never reserved."""


class AttemptAlreadyResolved(LedgerError):
    """``resolve`` tried to change the final outcome of an attempt to another one."""

    def __init__(self, attempt_id: str, current: AttemptOutcome, new: AttemptOutcome) -> None:
        super().__init__(
            f"attempt {attempt_id} already ended as {current.value}; cannot set {new.value}"
        )
        self.attempt_id = attempt_id
        self.current = current


class LedgerContention(LedgerError):
    """Optimistic reservation lost the race too many times in a row (Redis ledger)."""


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One line of the decisions log."""

    number_key: str
    at: datetime  # the time the call was asked for
    decided_at: datetime  # wall-clock time the ledger decided
    campaign: str
    product: str
    attempt_id: str  # "" for a plain check
    allowed: bool
    reserved: bool
    reasons: tuple[Reason, ...]
    retry_at: datetime | None
    policy_version: str

    @property
    def codes(self) -> tuple[ReasonCode, ...]:
        return tuple(r.code for r in self.reasons)


class ContactLedger(Protocol):
    """The port the gate, the dialer and the AGI checks use."""

    @property
    def policy(self) -> Policy: ...

    async def check(self, request: CallRequest, lists: ListStatus) -> Decision:
        """Evaluate without reserving; the decision is logged (attempt id "")."""

    async def check_and_reserve(
        self, request: CallRequest, *, attempt_id: str, lists: ListStatus
    ) -> Decision:
        """Evaluate and, only when allowed, append a RESERVED attempt, atomically per customer.

        Raises ``DuplicateAttempt`` if ``attempt_id`` was already reserved.
        """

    async def resolve(self, attempt_id: str, outcome: AttemptOutcome) -> None:
        """Set the outcome of a reserved attempt (``UnknownAttempt`` if never reserved)."""

    async def record_refusal(
        self, number: str, campaign: str, product: str, at: datetime, attempt_id: str = ""
    ) -> None:
        """The customer refused ``product`` (disposition "refused"): counts toward A.3."""

    async def record_decision(
        self, request: CallRequest, decision: Decision, attempt_id: str = ""
    ) -> None:
        """Log a decision taken before the ledger was asked (the gate's unknown campaign)."""

    async def history(self, number: str) -> list[ContactEvent]:
        """The customer's contact history, oldest first."""

    async def decisions(self, number: str) -> list[DecisionRecord]:
        """The decisions taken for the customer, oldest first."""

    async def decisions_for_attempt(self, attempt_id: str) -> list[DecisionRecord]:
        """The decisions logged with ``attempt_id``, oldest first ([] for "" or unknown)."""

    async def history_for_attempt(self, attempt_id: str) -> list[ContactEvent]:
        """The contact events carrying ``attempt_id``, oldest first ([] for "" or unknown)."""

    async def close(self) -> None: ...


# --- shared logic ---------------------------------------------------------------------------


def number_key(number: str, plan: NumberPlan) -> str:
    """The storage key of a customer number (raises ``InvalidNumber``)."""
    return plan.parse(number).key


def try_number_key(number: str, plan: NumberPlan) -> str | None:
    try:
        return plan.parse(number).key
    except InvalidNumber:
        return None


def invalid_key(number: str) -> str:
    """Where decisions about an unparseable number are logged (never a customer key)."""
    return ("?" + number)[:64]


def decide(
    policy: Policy, request: CallRequest, history: Sequence[ContactEvent], lists: ListStatus
) -> Decision:
    """The pure engine, with the policy version filled in when the engine left it empty."""
    decision = evaluate(policy, request, history, lists)
    if not decision.policy_version:
        decision = Decision(
            allowed=decision.allowed,
            reasons=decision.reasons,
            retry_at=decision.retry_at,
            policy_version=str(policy.version),
        )
    return decision


def check_resolution(attempt_id: str, current: AttemptOutcome, new: AttemptOutcome) -> bool:
    """True when the outcome must be written; raises when it would rewrite a final one."""
    if current == new:
        return False
    if current != AttemptOutcome.RESERVED:
        raise AttemptAlreadyResolved(attempt_id, current, new)
    return True




def reasons_to_json(reasons: Sequence[Reason]) -> str:
    return json.dumps([reason_to_dict(r) for r in reasons], ensure_ascii=False)


def reason_to_dict(r: Reason) -> dict[str, Any]:
    return {
        "code": r.code.value,
        "rule": r.rule,
        "message": r.message,
        "retry_at": r.retry_at.isoformat() if r.retry_at else None,
    }


def reasons_from_json(text: str) -> tuple[Reason, ...]:
    out = []
    for item in json.loads(text):
        retry = item.get("retry_at")
        out.append(
            Reason(
                code=ReasonCode(item["code"]),
                rule=str(item["rule"]),
                message=str(item["message"]),
                retry_at=datetime.fromisoformat(retry) if retry else None,
            )
        )
    return tuple(out)


def decision_to_dict(decision: Decision) -> dict[str, Any]:
    """JSON-ready form for the CLI, the HTTP API and the AGI scripts."""
    return {
        "allowed": decision.allowed,
        "codes": [c.value for c in decision.codes],
        "reasons": [reason_to_dict(r) for r in decision.reasons],
        "retry_at": decision.retry_at.isoformat() if decision.retry_at else None,
        "policy_version": decision.policy_version,
    }
