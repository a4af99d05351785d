"""Values of the recordings area: recording metadata, complaints, audit entries.

Users, roles and principals are ``identity.model``'s.

Pure data, no I/O. Times are timezone-aware UTC ``datetime`` values. Phone numbers
never appear here in plaintext except in ``AttemptMeta.number`` (the machine input
at ingest) and ``Complaint.number`` (only filled for the compliance role's export).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class Origin(StrEnum):
    """Where a recording came from."""

    DIALER = "dialer"  # ARI RecordingFinished of a dialer call
    DESK = "desk"  # desk-phone dialplan hook


class ComplaintChannel(StrEnum):
    CALL = "call"
    LETTER = "letter"
    VISIT = "visit"


class ComplaintStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Outcome(StrEnum):
    """How an audited access ended."""

    OK = "ok"
    DENIED = "denied"


@dataclass(frozen=True, slots=True)
class AttemptMeta:
    """What the dialer (or a desk-phone hook) knows about the call a recording belongs to."""

    number: str
    started_at: datetime
    attempt_id: str = ""
    campaign: str = ""
    agent: str = ""
    duration_s: float | None = None
    format: str = "wav"
    origin: Origin = Origin.DIALER


@dataclass(frozen=True, slots=True)
class Recording:
    """One row of the recording index, as people may see it (number masked)."""

    id: int
    name: str
    attempt_id: str
    campaign: str
    agent: str
    origin: Origin
    number_masked: str
    started_at: datetime
    duration_ms: int | None
    format: str
    size: int
    sha256: str
    path: str
    retain_until: datetime
    legal_hold: bool
    ingested_at: datetime


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """Filters of a recording search; every field is optional, all given ones must match."""

    number_hmac: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    agent: str | None = None
    campaign: str | None = None
    complaint_id: int | None = None
    limit: int = 100
    before: tuple[datetime, int] | None = None  # keyset cursor: (started_at, id) of the last row


@dataclass(frozen=True, slots=True)
class SearchPage:
    items: tuple[Recording, ...]
    next_cursor: tuple[datetime, int] | None


@dataclass(frozen=True, slots=True)
class Judgement:
    """Compliance staff's finding on a complaint and the actions taken."""

    company_at_fault: bool
    note: str = ""
    penalty_note: str = ""
    order_cancelled: bool = False
    refund: Decimal | None = None
    reply: str = ""


@dataclass(frozen=True, slots=True)
class Complaint:
    id: int
    number_masked: str
    channel: ComplaintChannel
    text: str
    received_at: datetime
    registered_by: str
    status: ComplaintStatus
    judgement: Judgement | None
    judged_by: str
    judged_at: datetime | None
    reply: str
    closed_by: str
    closed_at: datetime | None
    recording_ids: tuple[int, ...] = field(default=())
    number: str = ""  # plaintext: only filled for the compliance role's evidence export


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    reason: str
    outcome: Outcome
    detail: str  # canonical JSON text
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of a verification (store, audit log or evidence bundle)."""

    kind: str  # e.g. "missing", "altered", "edited", "gap", "head"
    where: str
    message: str
