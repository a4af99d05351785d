"""SQL engine construction shared by every SQL adapter (ledger, lists, recordings).

SQLite (``sqlite+aiosqlite:///path``) is the embedded default; PostgreSQL
(``postgresql+asyncpg://...``) is for production. A PostgreSQL ``schema`` puts
every table of the process in that schema (tests use one schema each).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///var/dialer.sqlite3"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


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
