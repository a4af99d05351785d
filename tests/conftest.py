"""Shared fixtures: the real PostgreSQL and Redis of the machine, each test isolated.

PostgreSQL: every test that asks gets a schema of its own, dropped afterwards.
Redis: database index 11 (``DIALER_TEST_REDIS_URL``) and a key prefix per test,
deleted afterwards. When a service is absent the test skips with the reason,
except when ``DIALER_REQUIRE_SERVICES=1`` (set by ``.ci/run``): then it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

PG_URL = os.environ.get("DIALER_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DIALER_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
REQUIRE_SERVICES = os.environ.get("DIALER_REQUIRE_SERVICES") == "1"


def service_missing(what: str, error: BaseException | str) -> None:
    """Skip, or fail in CI, because a service the test needs is not reachable."""
    message = f"{what} not reachable ({error}); start it or unset the test"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} [DIALER_REQUIRE_SERVICES=1 turns this skip into a failure]")
    pytest.skip(message)


@dataclass(frozen=True)
class PgTarget:
    url: str
    schema: str


@pytest.fixture
async def pg_target() -> AsyncIterator[PgTarget]:
    """A fresh PostgreSQL schema on the machine's server."""
    import asyncpg

    dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        service_missing("PostgreSQL at " + dsn, exc)
        raise AssertionError("unreachable") from exc
    schema = "dialer_t_" + uuid.uuid4().hex[:12]
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield PgTarget(PG_URL, schema)
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


@dataclass(frozen=True)
class RedisTarget:
    url: str
    prefix: str


@pytest.fixture
async def redis_target() -> AsyncIterator[RedisTarget]:
    """The machine's Redis, database 11, with a key prefix of this test's own."""
    import redis.asyncio as aioredis
    from redis.exceptions import ConnectionError as RedisConnectionError

    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        await client.ping()
    except (RedisConnectionError, OSError) as exc:
        await client.aclose()
        service_missing("Redis at " + REDIS_URL, exc)
        raise AssertionError("unreachable") from exc
    prefix = "dialer-test:" + uuid.uuid4().hex[:12] + ":"
    try:
        yield RedisTarget(REDIS_URL, prefix)
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> str:
    return f"sqlite+aiosqlite:///{os.fspath(tmp_path)}/test.sqlite3"
