"""SQL tables of identity and access, and the engine that serves them.

``access_users`` and ``access_tokens`` keep the names and rows they had in the
recordings area; ``access_users.password_hash`` (scrypt, ``identity.passwords``) is
empty for users who only use API tokens. ``access_sessions`` holds login sessions by
the SHA-256 of their id; ``access_sign_in_failures`` the lock-out counters, one row per
user name or client address. Tables sit in one ``MetaData`` without a schema (on
PostgreSQL the engine's search path decides). On SQLite writing transactions are
``BEGIN IMMEDIATE``; reads go through ``reader(engine)``.
"""

from __future__ import annotations

import os

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from compliance.database import UtcDateTime, is_sqlite, make_engine, sqlite_begin_immediate
from migrations import ensure_current

# SQLite autoincrements only an INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

users = Table(
    "access_users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("agent_id", String(64), nullable=False, default=""),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("password_hash", String(200), nullable=True),
    Column("password_changed_at", UtcDateTime(), nullable=True),
)

tokens = Table(
    "access_tokens",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_id", BigId, ForeignKey("access_users.id"), nullable=False, index=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("label", String(64), nullable=False, default=""),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
)

sessions = Table(
    "access_sessions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("session_sha256", String(64), nullable=False, unique=True),
    Column("user_id", BigId, ForeignKey("access_users.id"), nullable=False, index=True),
    Column("address", String(64), nullable=False, default=""),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
)

sign_in_failures = Table(
    "access_sign_in_failures",
    metadata,
    Column("scope", String(8), nullable=False),
    Column("key", String(128), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("window_start", UtcDateTime(), nullable=False),
    Column("locked_until", UtcDateTime(), nullable=True),
    PrimaryKeyConstraint("scope", "key", name="pk_access_sign_in_failures"),
)

READ_ONLY_OPTION = "identity_read_only"


def reader(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (and pool) for read-only work: no write lock on SQLite."""
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def open_engine(url: str, *, schema: str | None = None) -> AsyncEngine:
    """An engine for the identity store (no tables are created here)."""
    if is_sqlite(url):
        _, _, path = url.partition(":///")
        path = path.split("?", 1)[0]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = make_engine(url)
        sqlite_begin_immediate(engine, READ_ONLY_OPTION)
        return engine
    return make_engine(url, schema=schema)


async def create_tables(engine: AsyncEngine) -> None:
    """The tables are the migrations' (``0002``): a new empty database is brought to the
    head, an older one refused (``migrations.ensure_current``)."""
    await ensure_current(engine)
