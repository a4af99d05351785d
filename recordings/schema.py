"""SQL tables of the recordings area and the engine that serves them.

Tables (prefix ``rec_`` for recordings and complaints, ``access_`` for the audit
log; users, tokens and sessions are ``identity.schema``'s) live in one ``MetaData``
without a schema: on PostgreSQL the engine's search path decides where they are. Times are
``UtcDateTime`` (aware in, aware UTC out, on SQLite too). Phone numbers are held
as an HMAC digest and a masked form; the plaintext exists only encrypted in
``rec_complaints.number_enc``.

On SQLite every writing transaction is ``BEGIN IMMEDIATE``: the audit chain's head
row is read and advanced inside one transaction, and a deferred transaction that
reads first and writes later fails with SQLITE_BUSY instead of waiting. Read-only
work goes through ``reader(engine)`` and takes no write lock.
"""

from __future__ import annotations

import os

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from compliance.database import (
    DEFAULT_SQLITE_URL,
    UtcDateTime,
    is_sqlite,
    make_engine,
    sqlite_begin_immediate,
)
from migrations import ensure_current

DB_URL_ENV = "DIALER_DB_URL"
DB_SCHEMA_ENV = "DIALER_DB_SCHEMA"


# SQLite autoincrements only an INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

recordings = Table(
    "rec_recordings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("attempt_id", String(64), nullable=False, default=""),
    Column("campaign", String(64), nullable=False, default=""),
    Column("agent", String(64), nullable=False, default=""),
    Column("origin", String(16), nullable=False),
    Column("number_hmac", String(64), nullable=False),
    Column("number_masked", String(32), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("duration_ms", BigInteger, nullable=True),
    Column("format", String(16), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("path", String(200), nullable=False),
    Column("retain_until", UtcDateTime(), nullable=False),
    Column("legal_hold", Boolean, nullable=False, default=False),
    Column("ingested_at", UtcDateTime(), nullable=False),
    Index("ix_rec_number_time", "number_hmac", "started_at"),
    Index("ix_rec_time", "started_at"),
    Index("ix_rec_agent_time", "agent", "started_at"),
    Index("ix_rec_campaign_time", "campaign", "started_at"),
    Index("ix_rec_retain", "retain_until"),
    Index("ix_rec_attempt", "attempt_id"),
    Index("ix_rec_sha", "sha256"),
)

complaints = Table(
    "rec_complaints",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("number_hmac", String(64), nullable=False, index=True),
    Column("number_masked", String(32), nullable=False),
    Column("number_enc", LargeBinary, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("registered_by", String(64), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("company_at_fault", Boolean, nullable=True),
    Column("judgement_note", Text, nullable=False, default=""),
    Column("penalty_note", Text, nullable=False, default=""),
    Column("order_cancelled", Boolean, nullable=False, default=False),
    Column("refund", Numeric(12, 2), nullable=True),
    Column("judged_by", String(64), nullable=False, default=""),
    Column("judged_at", UtcDateTime(), nullable=True),
    Column("reply", Text, nullable=False, default=""),
    Column("closed_by", String(64), nullable=False, default=""),
    Column("closed_at", UtcDateTime(), nullable=True),
)

complaint_recordings = Table(
    "rec_complaint_recordings",
    metadata,
    Column(
        "complaint_id",
        BigId,
        ForeignKey("rec_complaints.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "recording_id",
        BigId,
        ForeignKey("rec_recordings.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)

audit_log = Table(
    "access_audit",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("outcome", String(8), nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

#: One row (id 1): the last sequence number and hash. Appenders lock it, which serializes
#: the chain; a trigger advances it on every insert; verification compares it with the last
#: entry, so a deleted tail is found too.
audit_head = Table(
    "access_audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

GENESIS_HASH = "0" * 64


def default_db_url() -> str:
    return os.environ.get(DB_URL_ENV) or DEFAULT_SQLITE_URL


READ_ONLY_OPTION = "recordings_read_only"


def reader(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (and pool) for read-only work: no write lock on SQLite."""
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def _ensure_dir(path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


# The audit tables are append-only by the database's own guards (triggers), and the head
# row follows the log: both are made by the migrations (``migrations/versions``: 0001, and
# 0003 for the complete guards). A schema change here is a new revision there.


async def open_engine(url: str, *, schema: str | None = None, create: bool = True) -> AsyncEngine:
    """The engine of the recordings stores; a new empty database is brought to the schema's
    head when ``create``, an older one refused (``migrations.ensure_current``)."""
    if is_sqlite(url):
        _, _, path = url.partition(":///")
        path = path.split("?", 1)[0]
        if path and path != ":memory:":
            _ensure_dir(path)
        engine = make_engine(url)
        sqlite_begin_immediate(engine, READ_ONLY_OPTION)
    else:
        engine = make_engine(url, schema=schema)
    try:
        await ensure_current(engine, create_empty=create)
    except Exception:
        await engine.dispose()
        raise
    return engine
