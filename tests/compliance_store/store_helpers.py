"""Helpers shared by the compliance storage tests (imported by module name, not a package)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from compliance.ledger import ContactLedger
from compliance.policy import Policy
from compliance.tables import metadata

TEST_POLICY_TEXT = """
version = "store-test-1"
[caller_id]
pool = ["010-58001234"]
service_numbers = ["010-58005678"]
"""

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALLER_ID = "010-58001234"

LedgerFactory = Callable[[Policy], Awaitable[ContactLedger]]


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A time in the policy's zone (Asia/Shanghai)."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


async def snapshot(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every compliance table, to assert that a failed operation changed nothing."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = (await conn.execute(select(table))).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out
