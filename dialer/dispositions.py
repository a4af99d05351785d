"""Agent dispositions (rules.md B): what each one means for the ledger, the lead and the lists.

Pure: ``plan(request, context, now)`` validates a disposition and returns the
effects to apply as one value (``DispositionPlan``), or a ``DispositionRejected``
naming the field that is wrong. The runner applies the plan (ledger refusal,
do-not-call list, lead update) in that order.

* order: requires the confirmation flag (product, price and payment method
  stated and accepted, art. 23); the recording is the evidence.
* refused: names the product; counts toward the 3-refusals rule (A.3).
* callback: at a time within 3 months (art. 27, 34); still goes through the
  gate, presenting the caller ID the rules require (A.5): the number the
  customer called us on when the contact began with their call, else the
  campaign's pool number.
* do-not-call: the number goes on the blacklist at once (A.1).
* wrong number: the lead is closed, never dialled again.
* no decision: the conversation ended without an answer; the lead is closed
  for this campaign (a hesitating customer gets a callback instead).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class DispositionKind(StrEnum):
    ORDER = "order"
    REFUSED = "refused"
    CALLBACK = "callback"
    DO_NOT_CALL = "do_not_call"
    WRONG_NUMBER = "wrong_number"
    NO_DECISION = "no_decision"


class LeadStatus(StrEnum):
    """What becomes of the lead after the call (mapped onto the lead store's statuses)."""

    DONE = "done"  # closed with a business result
    CALLBACK = "callback"  # due again at ``next_attempt_at``
    DO_NOT_CALL = "do_not_call"
    WRONG_NUMBER = "wrong_number"


CALLBACK_HORIZON_MONTHS = 3

# Dispositions that mean a real conversation took place (appendix 4 "effective conversation").
EFFECTIVE = frozenset({DispositionKind.ORDER, DispositionKind.REFUSED, DispositionKind.CALLBACK})


@dataclass(frozen=True, slots=True)
class DispositionRequest:
    kind: str
    product: str | None = None
    confirmed: bool = False
    callback_at: datetime | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class CallContext:
    """What the dialer knows of the call being dispositioned."""

    attempt_id: str
    number: str
    campaign: str
    campaign_products: tuple[str, ...]
    default_product: str
    pool_caller_id: str
    customer_dialled_number: str | None = None  # the number the customer called us on, if they did


@dataclass(frozen=True, slots=True)
class DispositionRejected:
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class DispositionPlan:
    kind: DispositionKind
    lead_status: LeadStatus
    product: str
    refusal_product: str | None = None  # write a REFUSAL to the ledger
    add_to_dnc: bool = False
    dnc_reason: str = ""
    order: bool = False
    next_attempt_at: datetime | None = None
    callback_caller_id: str | None = None
    callback_is_callback: bool = False
    callback_dialled_number: str | None = None
    effective: bool = False
    note: str = ""


def add_months(at: datetime, months: int) -> datetime:
    """The same wall-clock time ``months`` calendar months later (day clamped to the month)."""
    month0 = at.month - 1 + months
    year = at.year + month0 // 12
    month = month0 % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def plan(
    req: DispositionRequest, ctx: CallContext, now: datetime
) -> DispositionPlan | DispositionRejected:
    try:
        kind = DispositionKind(req.kind)
    except ValueError:
        allowed = ", ".join(k.value for k in DispositionKind)
        return DispositionRejected(
            "kind", f"unknown disposition {req.kind!r}; expected one of {allowed}"
        )
    product = req.product or ctx.default_product
    if (
        req.product is not None
        and ctx.campaign_products
        and req.product not in ctx.campaign_products
    ):
        return DispositionRejected(
            "product", f"product {req.product!r} is not sold by campaign {ctx.campaign!r}"
        )
    effective = kind in EFFECTIVE
    if kind is DispositionKind.ORDER:
        if not req.confirmed:
            return DispositionRejected(
                "confirmed",
                "an order needs the confirmation flag: product, price and payment method "
                "stated and accepted by the customer (art. 23)",
            )
        return DispositionPlan(
            kind, LeadStatus.DONE, product, order=True, effective=effective, note=req.note
        )
    if kind is DispositionKind.REFUSED:
        if not req.product:
            return DispositionRejected("product", "a refusal must name the refused product (A.3)")
        return DispositionPlan(
            kind,
            LeadStatus.DONE,
            product,
            refusal_product=req.product,
            effective=effective,
            note=req.note,
        )
    if kind is DispositionKind.CALLBACK:
        if req.callback_at is None:
            return DispositionRejected("callback_at", "a callback needs a time")
        if req.callback_at.tzinfo is None:
            return DispositionRejected("callback_at", "the callback time needs a time zone")
        if req.callback_at <= now:
            return DispositionRejected("callback_at", "the callback time is in the past")
        horizon = add_months(now, CALLBACK_HORIZON_MONTHS)
        if req.callback_at > horizon:
            return DispositionRejected(
                "callback_at",
                f"a callback must be within {CALLBACK_HORIZON_MONTHS} months (art. 27)",
            )
        their_call = ctx.customer_dialled_number is not None
        caller_id = ctx.customer_dialled_number if their_call else ctx.pool_caller_id
        return DispositionPlan(
            kind,
            LeadStatus.CALLBACK,
            product,
            next_attempt_at=req.callback_at,
            callback_caller_id=caller_id,
            callback_is_callback=their_call,
            callback_dialled_number=ctx.customer_dialled_number,
            effective=effective,
            note=req.note,
        )
    if kind is DispositionKind.DO_NOT_CALL:
        return DispositionPlan(
            kind,
            LeadStatus.DO_NOT_CALL,
            product,
            add_to_dnc=True,
            dnc_reason=(
                f"customer asked not to be called (campaign {ctx.campaign}, "
                f"attempt {ctx.attempt_id})"
            ),
            note=req.note,
        )
    if kind is DispositionKind.WRONG_NUMBER:
        return DispositionPlan(kind, LeadStatus.WRONG_NUMBER, product, note=req.note)
    return DispositionPlan(kind, LeadStatus.DONE, product, note=req.note)
