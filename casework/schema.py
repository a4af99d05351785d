"""SQL tables of complaint cases and quality checks (prefixes ``case_`` and ``qa_``).

They sit beside the recordings tables (``rec_complaints`` stays the complaint's
record: number, channel, text, judgement, reply, status; the steps of a case add to
it). ``case_steps`` is the case's history, one row per step taken; ``case_cases``
holds where each case stands and when its next step is due (the overdue list reads
it through an index). Made by the migrations (revision 0004).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from compliance.database import UtcDateTime
from migrations import ensure_current
from recordings.schema import BigId, complaints, recordings

metadata = MetaData()

cases = Table(
    "case_cases",
    metadata,
    Column(
        "complaint_id", BigId, ForeignKey(complaints.c.id, ondelete="CASCADE"), primary_key=True
    ),
    Column("step", String(16), nullable=False),
    Column("category", String(32), nullable=False, default=""),
    Column("telemarketing", Boolean, nullable=True),
    Column("at_fault", Boolean, nullable=True),
    Column("due_at", UtcDateTime(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_case_due", "step", "due_at"),
)

case_steps = Table(
    "case_steps",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "complaint_id",
        BigId,
        ForeignKey(complaints.c.id, ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("step", String(16), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("data", Text, nullable=False),  # canonical JSON of the step's fields
)

case_penalties = Table(
    "case_penalties",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "complaint_id",
        BigId,
        ForeignKey(complaints.c.id, ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("target_kind", String(16), nullable=False),
    Column("target", String(64), nullable=False),
    Column("item", String(32), nullable=False, default=""),
    Column("points", Numeric(8, 2), nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("month", String(7), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Index("ix_case_penalty_target", "target_kind", "target", "month"),
)

qa_samples = Table(
    "qa_samples",
    metadata,
    Column("month", String(7), primary_key=True),
    Column(
        "recording_id",
        BigId,
        ForeignKey(recordings.c.id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("agent", String(64), nullable=False),
    Column("source", String(16), nullable=False),  # sampled | flagged
    Column("flagged_by", String(64), nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
    Column("at", UtcDateTime(), nullable=False),
    Index("ix_qa_sample_agent", "agent", "month"),
)

qa_reviews = Table(
    "qa_reviews",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("recording_id", BigId, ForeignKey(recordings.c.id, ondelete="CASCADE"), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("team", String(64), nullable=False, default=""),
    Column("month", String(7), nullable=False),
    Column("source", String(16), nullable=False),
    Column("reviewer", String(64), nullable=False),
    Column("reviewed_at", UtcDateTime(), nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("deduction", Numeric(8, 2), nullable=False),
    Column("complaint_id", BigId, ForeignKey(complaints.c.id), nullable=True),
    Column("voided", Boolean, nullable=False, default=False),
    UniqueConstraint("recording_id", "reviewer", name="uq_qa_review_once"),
    Index("ix_qa_review_agent", "agent", "month"),
    Index("ix_qa_review_team", "team", "month"),
)

qa_findings = Table(
    "qa_findings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "review_id",
        BigId,
        ForeignKey(qa_reviews.c.id, ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("item", String(32), nullable=False),
    Column("count", Integer, nullable=False),
    Column("note", Text, nullable=False, default=""),
)

qa_disputes = Table(
    "qa_disputes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "review_id",
        BigId,
        ForeignKey(qa_reviews.c.id, ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("agent", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("opened_at", UtcDateTime(), nullable=False),
    Column("answer", Text, nullable=False, default=""),
    Column("answered_by", String(64), nullable=False, default=""),
    Column("answered_at", UtcDateTime(), nullable=True),
    Column("resolution", String(16), nullable=False, default=""),
    Column("resolution_note", Text, nullable=False, default=""),
    Column("resolved_by", String(64), nullable=False, default=""),
    Column("resolved_at", UtcDateTime(), nullable=True),
    Index("ix_qa_dispute_status", "status"),
)


async def ensure_tables(engine: AsyncEngine) -> None:
    """The tables are the migrations' (revision 0004): a new empty database is brought to
    the head, an older one refused (``migrations.ensure_current``)."""
    await ensure_current(engine)
