"""Values shared by the compliance engine, the ledger and everything that asks them.

Pure data: no I/O, no clock. Times are timezone-aware ``datetime`` values; the
engine converts them to the policy's time zone itself. A ``Decision`` is a
business outcome and is returned, never raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ReasonCode(StrEnum):
    """Stable codes for why a call is refused. Scripts and the dialplan branch on them."""

    INVALID_NUMBER = "invalid_number"
    BLACKLISTED = "blacklisted"  # A.1
    SPECIAL_NUMBER = "special_number"  # A.2
    MONTHLY_CAP = "monthly_cap"  # A.3 part 1 §1.3
    QUIET_PERIOD = "quiet_period"  # A.3 part 1 §1.3, 3 months after a capped month
    YEARLY_CAP = "yearly_cap"  # A.3 art. 37.1
    PRODUCT_INTERVAL = "product_interval"  # A.3 art. 37.2
    PRODUCT_REFUSED = "product_refused"  # A.3 art. 37.3
    SEGMENT_MONTHLY_CAP = "segment_monthly_cap"  # A.4 stricter per-segment caps
    SEGMENT_YEARLY_CAP = "segment_yearly_cap"
    OUTSIDE_CALLING_HOURS = "outside_calling_hours"  # A.4
    UNKNOWN_SEGMENT = "unknown_segment"
    CALLER_ID_MUST_BE_DIALLED_NUMBER = "caller_id_must_be_dialled_number"  # A.5 callbacks
    CALLER_ID_NOT_IN_POOL = "caller_id_not_in_pool"  # A.5 other calls
    DATA_RECALLED = "data_recalled"  # A.6
    NO_SCRIPT = "campaign_without_script"  # A.7
    UNKNOWN_CAMPAIGN = "unknown_campaign"


class ContactKind(StrEnum):
    """What a ledger entry records about a customer."""

    ATTEMPT = "attempt"  # a dial attempt (reserved before origination)
    REFUSAL = "refusal"  # the customer refused a product (disposition "refused")


class AttemptOutcome(StrEnum):
    """How a dial attempt ended, as far as the caps care.

    ``RESERVED`` is the state between check-and-reserve and the end of the dial;
    it counts as a call (conservatively) until it is resolved.
    """

    RESERVED = "reserved"
    ANSWERED = "answered"  # a person answered (connected or abandoned)
    MACHINE = "machine"  # answering machine detected
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    CONGESTION = "congestion"
    REJECTED = "rejected"
    FAILED = "failed"  # never reached the network (bad context, originate error)
    CANCELLED = "cancelled"  # reserved but never originated (released)


@dataclass(frozen=True, slots=True)
class ContactEvent:
    """One entry of a customer's contact history."""

    at: datetime
    kind: ContactKind
    campaign: str
    product: str
    outcome: AttemptOutcome = AttemptOutcome.RESERVED
    attempt_id: str = ""


@dataclass(frozen=True, slots=True)
class CallRequest:
    """Everything the gate needs to know about one call someone wants to place.

    ``number`` is the customer's number as the lead list or agent gave it; the
    engine normalizes it. ``dialled_number`` is the number the customer called
    us on, for callbacks and care calls (A.5). ``assigned_at`` is when the lead
    was handed to the outbound team (A.6).
    """

    number: str
    campaign: str
    product: str
    at: datetime
    caller_id: str
    segment: str = "default"
    is_callback: bool = False
    dialled_number: str | None = None
    assigned_at: datetime | None = None
    campaign_has_script: bool = True


@dataclass(frozen=True, slots=True)
class ListStatus:
    """What the do-not-call and special-number lists say about one number."""

    blacklisted: bool = False
    blacklist_reason: str = ""
    special: bool = False
    special_reason: str = ""


@dataclass(frozen=True, slots=True)
class Reason:
    """One failing rule: a code, the rule it comes from and the figures, for people."""

    code: ReasonCode
    rule: str
    message: str
    retry_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The gate's answer. ``retry_at`` is the earliest time the number could
    become callable again, or None when it never will (or it is allowed now)."""

    allowed: bool
    reasons: tuple[Reason, ...] = field(default=())
    retry_at: datetime | None = None
    policy_version: str = ""

    @property
    def codes(self) -> tuple[ReasonCode, ...]:
        return tuple(r.code for r in self.reasons)
