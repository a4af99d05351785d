"""One attempt as a value: its stages and the row the attempt log keeps (pure, no I/O).

``dialer.attempts`` stores it; the runner and its pure recovery read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Stage(StrEnum):
    RESERVING = "reserving"
    REFUSED = "refused"
    ORIGINATING = "originating"
    LIVE = "live"
    DONE = "done"


UNFINISHED = (Stage.RESERVING, Stage.ORIGINATING, Stage.LIVE)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    attempt_id: str
    campaign: str
    lead_id: str
    number: str
    product: str
    channel_id: str
    stage: str
    phase: str
    created_at: datetime
    updated_at: datetime
    outcome: str | None = None
    reasons: str = ""
    answered: bool = False
    connected: bool = False
    abandoned: bool = False
    agent_id: str | None = None
    recording: str | None = None
    recording_seconds: float | None = None
    ring_seconds: float | None = None
    talk_seconds: float | None = None
    disposition: str | None = None
    disposition_product: str | None = None
    order_confirmed: bool = False
    note: str = ""
    try_no: int = 1
    connected_at: datetime | None = None
    ended_at: datetime | None = None
