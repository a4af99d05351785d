"""Lawful callbacks: is a callback time allowed for this customer and product, and if not,
which is the earliest time that is (asked of the compliance gate, nothing reserved).

The gate decides with every rule (calling windows and public holidays, monthly
and yearly caps, the quiet months, the product interval, refusals, recall), so
a callback promised to a customer is one the dialer will be allowed to make.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from compliance.model import Decision, Reason
from dialer.dispositions import CALLBACK_HORIZON_MONTHS, add_months

# Never propose a time closer than this (the agent still has to say it to the customer).
MIN_LEAD_TIME = timedelta(minutes=5)
MAX_STEPS = 24


class CallbackGate(Protocol):
    async def check(
        self,
        number: str,
        campaign: str,
        product: str | None = None,
        at: datetime | None = None,
        *,
        caller_id: str | None = None,
        is_callback: bool = False,
        dialled_number: str | None = None,
        segment: str | None = None,
        assigned_at: datetime | None = None,
    ) -> Decision: ...


@dataclass(frozen=True, slots=True)
class CallbackCustomer:
    """Who would be called back, as the gate needs it."""

    number: str
    campaign: str
    product: str
    caller_id: str
    segment: str | None = None
    assigned_at: datetime | None = None
    dialled_number: str | None = None


@dataclass(frozen=True, slots=True)
class CallbackCheck:
    at: datetime
    allowed: bool
    reasons: tuple[Reason, ...] = ()
    proposal: datetime | None = None  # the earliest allowed time, when ``at`` is refused


async def check_at(gate: CallbackGate, who: CallbackCustomer, at: datetime) -> Decision:
    return await gate.check(
        who.number,
        who.campaign,
        who.product,
        at,
        caller_id=who.dialled_number or who.caller_id,
        is_callback=who.dialled_number is not None,
        dialled_number=who.dialled_number,
        segment=who.segment,
        assigned_at=who.assigned_at,
    )


async def earliest(
    gate: CallbackGate, who: CallbackCustomer, now: datetime, *, within: datetime | None = None
) -> datetime | None:
    """The earliest time from ``now`` (plus a few minutes) the gate allows, up to ``within``
    (default: the 3 months a callback may be promised for); None when there is none."""
    limit = within or add_months(now, CALLBACK_HORIZON_MONTHS)
    at = _next_minute(now + MIN_LEAD_TIME)
    for _ in range(MAX_STEPS):
        if at > limit:
            return None
        decision = await check_at(gate, who, at)
        if decision.allowed:
            return at
        if decision.retry_at is None:
            return None
        at = _next_minute(max(decision.retry_at, at + timedelta(minutes=1)))
    return None


async def check(
    gate: CallbackGate, who: CallbackCustomer, at: datetime, now: datetime
) -> CallbackCheck:
    """May the customer be called back at ``at``? If not: why, and the earliest time."""
    if at <= now:
        return CallbackCheck(at, False, (), await earliest(gate, who, now))
    decision = await check_at(gate, who, at)
    if decision.allowed:
        return CallbackCheck(at, True)
    return CallbackCheck(at, False, decision.reasons, await earliest(gate, who, now))


def _next_minute(at: datetime) -> datetime:
    whole = at.replace(second=0, microsecond=0)
    return whole if whole == at else whole + timedelta(minutes=1)
