"""SQL engine construction shared by every SQL adapter (ledger, lists, recordings).

SQLite (``sqlite+aiosqlite:///path``) is the embedded default; PostgreSQL
(``postgresql+asyncpg://...``) is for production. A PostgreSQL ``schema`` puts
every table of the process in that schema (tests use one schema each).

``UtcDateTime`` is the one column type for instants in every SQL table of the
project: aware datetimes in (a naive one raises ``ValueError``: its zone is
unknown, and guessing would shift it silently), aware UTC datetimes out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///var/dialer.sqlite3"


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes only; stored in UTC, returned as aware UTC datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; times must be aware")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite has no time zone type and stores text; one fixed UTC rendering without
            # an offset keeps ORDER BY and <= comparisons right.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_begin_immediate(engine: AsyncEngine, read_only_option: str) -> None:
    """Make every transaction on this SQLite engine start with ``BEGIN IMMEDIATE``.

    pysqlite/aiosqlite otherwise emit a deferred BEGIN lazily before the first DML;
    taking over transaction control makes each transaction take the write lock up
    front and wait (busy_timeout) instead of failing later with SQLITE_BUSY on the
    read-to-write upgrade. Connections whose execution options set
    ``read_only_option`` (the store's ``reader(engine)``) open no transaction: each
    of their statements is its own snapshot and, in WAL mode, never queues behind
    the writer, where BEGIN IMMEDIATE would.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _no_implicit_begin(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin_immediate(conn: Any) -> None:
        if not conn.get_execution_options().get(read_only_option):
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, schema: str | None = None, **kwargs: Any) -> AsyncEngine:
    """Create an async engine; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    if is_sqlite(url):
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", 30)
        engine = create_async_engine(url, connect_args=connect_args, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers run beside the one writer; foreign keys are off by default.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if schema is not None:
        connect_args = dict(kwargs.pop("connect_args", {}))
        settings = dict(connect_args.get("server_settings", {}))
        settings["search_path"] = schema
        connect_args["server_settings"] = settings
        return create_async_engine(url, connect_args=connect_args, **kwargs)
    return create_async_engine(url, **kwargs)
