"""Shared SQL schema pieces.

The one ``UtcDateTime`` column type (aware in, aware UTC out, naive refused) on SQLite
(naive UTC text underneath) and PostgreSQL (timestamptz), used by every SQL table of
the project. (The decisions' attempt-id index added to an older database:
tests/migrations.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.types import TypeEngine

from compliance.database import UtcDateTime, make_engine
from tests.conftest import PgTarget

SHANGHAI = timezone(timedelta(hours=8))


def _table() -> tuple[MetaData, Table]:
    md = MetaData()
    t = Table("utc_probe", md, Column("id", Integer, primary_key=True), Column("at", UtcDateTime))
    return md, t


async def _round_trip(url: str, schema: str | None) -> None:
    engine = make_engine(url, schema=schema)
    md, t = _table()
    try:
        async with engine.begin() as conn:
            await conn.run_sync(md.create_all)
            local = datetime(2026, 3, 1, 9, 30, tzinfo=SHANGHAI)
            await conn.execute(insert(t).values(id=1, at=local))
            await conn.execute(insert(t).values(id=2, at=None))
            with pytest.raises(StatementError) as caught:
                await conn.execute(insert(t).values(id=3, at=datetime(2026, 3, 1, 9, 30)))
            # SQLAlchemy wraps the bind error; the cause is the type's ValueError.
            assert isinstance(caught.value.orig, ValueError)
            assert "naive datetime" in str(caught.value)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(t.c.id, t.c.at).order_by(t.c.id))).all()
            assert rows[0].at == datetime(2026, 3, 1, 1, 30, tzinfo=UTC)
            assert rows[0].at.utcoffset() == timedelta(0)
            assert rows[1].at is None
            assert len(rows) == 2
            # A range filter with an aware bound in another zone compares in UTC.
            hit = await conn.execute(
                select(t.c.id).where(t.c.at <= datetime(2026, 3, 1, 9, 30, tzinfo=SHANGHAI))
            )
            assert hit.scalars().all() == [1]
            if url.startswith("sqlite"):
                raw = (await conn.execute(text("SELECT at FROM utc_probe WHERE id = 1"))).scalar()
                assert str(raw).startswith("2026-03-01 01:30:00")
    finally:
        await engine.dispose()


async def test_utc_datetime_sqlite(sqlite_url: str) -> None:
    await _round_trip(sqlite_url, None)


async def test_utc_datetime_postgres(pg_target: PgTarget) -> None:
    await _round_trip(pg_target.url, pg_target.schema)


def test_every_table_uses_the_shared_type() -> None:
    from agi_scripts import desk_store
    from compliance import tables
    from dialer import attempts
    from identity import schema as identity_schema
    from recordings import schema

    seen = 0
    for md in (
        tables.metadata,
        desk_store.metadata,
        attempts.metadata,
        schema.metadata,
        identity_schema.metadata,
    ):
        for table in md.tables.values():
            for col in table.columns:
                if _python_type(col.type) is datetime:
                    assert isinstance(col.type, UtcDateTime), f"{table.name}.{col.name}"
                if isinstance(col.type, UtcDateTime):
                    seen += 1
    assert seen >= 30


def _python_type(t: TypeEngine[object]) -> type | None:
    try:
        return t.python_type
    except NotImplementedError:
        return None
