"""Fixtures of the identity tests (re-exported by conftest): the store on SQLite and on the
real PostgreSQL, with the access audit log of the recordings area and a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from compliance.clock import ManualClock
from identity.passwords import PasswordHasher
from identity.schema import create_tables, open_engine
from identity.store import IdentityStore
from recordings.audit import AccessAudit
from recordings.schema import open_engine as open_recordings_engine

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def db_target(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(url, schema): the `sqlite_url` file, or a fresh `pg_target` schema on PostgreSQL."""
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
        return url, None
    target = request.getfixturevalue("pg_target")
    return target.url, target.schema


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def store(
    db_target: tuple[str, str | None], clock: ManualClock
) -> AsyncIterator[IdentityStore]:
    url, schema = db_target
    await (await open_recordings_engine(url, schema=schema)).dispose()  # the audit log's tables
    engine = open_engine(url, schema=schema)
    await create_tables(engine)
    # cheaper scrypt than production (2**10): the lock-out tests hash many times
    identity = IdentityStore(
        engine, audit=AccessAudit(), clock=clock, hasher=PasswordHasher(log_n=10)
    )
    try:
        yield identity
    finally:
        await identity.aclose()
