"""Fixtures of the compliance storage tests: one ledger factory over SQLite, PostgreSQL, Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine
from store_helpers import TEST_POLICY_TEXT, LedgerFactory

from compliance.ledger import ContactLedger
from compliance.policy import Policy, parse_policy
from compliance.redis_ledger import RedisLedger
from compliance.sql_ledger import SqlLedger
from compliance.tables import open_engine


@pytest.fixture
def policy() -> Policy:
    return parse_policy(TEST_POLICY_TEXT, "store-test")


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def ledger_target(request: pytest.FixtureRequest, sqlite_url: str) -> tuple[str, Any]:
    """(backend, target): the sqlite URL, or the pg_target / redis_target fixture."""
    backend: str = request.param
    if backend == "postgres":
        return backend, request.getfixturevalue("pg_target")
    if backend == "redis":
        return backend, request.getfixturevalue("redis_target")
    return backend, sqlite_url


@pytest.fixture
async def make_ledger(ledger_target: tuple[str, Any]) -> AsyncIterator[LedgerFactory]:
    """``await make_ledger(policy)``: a fresh ledger on the parametrized backend."""
    opened: list[ContactLedger] = []
    backend, target = ledger_target

    async def factory(policy: Policy) -> ContactLedger:
        ledger: ContactLedger
        if backend == "sqlite":
            ledger = await SqlLedger.open(target, policy)
        elif backend == "postgres":
            ledger = await SqlLedger.open(target.url, policy, schema=target.schema)
        else:
            ledger = RedisLedger.from_url(target.url, policy, prefix=target.prefix)
        opened.append(ledger)
        return ledger

    yield factory
    for ledger in opened:
        await ledger.close()


@pytest.fixture(params=["sqlite", "postgres"])
def sql_target(request: pytest.FixtureRequest, sqlite_url: str) -> tuple[str, str | None]:
    """(url, schema) of a SQL database: SQLite file, or a PostgreSQL schema of this test."""
    if request.param == "postgres":
        target = request.getfixturevalue("pg_target")
        return target.url, target.schema
    return sqlite_url, None


@pytest.fixture
async def engine(sql_target: tuple[str, str | None]) -> AsyncIterator[AsyncEngine]:
    """A SQL engine with the compliance tables, on SQLite and on PostgreSQL."""
    url, schema = sql_target
    eng = await open_engine(url, schema=schema)
    yield eng
    await eng.dispose()


@pytest.fixture
async def redis_client(redis_target: Any) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_target.url)
    yield client
    await client.aclose()
