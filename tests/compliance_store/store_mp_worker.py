"""Worker of the multi-process ledger test: runs in a spawned process, reports granted attempts."""

from __future__ import annotations

import asyncio
import random

from compliance.ledger import ContactLedger
from compliance.model import CallRequest, ListStatus
from compliance.policy import parse_policy
from compliance.redis_ledger import RedisLedger
from compliance.sql_ledger import SqlLedger
from compliance.tables import open_engine


async def _run(
    backend: str,
    url: str,
    where: str,
    policy_text: str,
    worker: int,
    numbers: list[str],
    products: list[str],
    at_iso: str,
) -> list[str]:
    from datetime import datetime

    policy = parse_policy(policy_text, "mp-test")
    ledger: ContactLedger
    if backend == "redis":
        ledger = RedisLedger.from_url(url, policy, prefix=where, max_connections=16)
    else:
        # 4 connections a process: 8 processes stay well under max_connections (100)
        engine = await open_engine(url, schema=where, create=False, pool_size=4, max_overflow=0)
        ledger = SqlLedger(engine, policy, own_engine=True)
    at = datetime.fromisoformat(at_iso)
    work = [(n, p) for n in numbers for p in products]
    random.Random(worker).shuffle(work)
    granted: list[str] = []
    sem = asyncio.Semaphore(4)

    async def one(i: int, number: str, product: str) -> None:
        attempt_id = f"w{worker}-{i}"
        async with sem:
            decision = await ledger.check_and_reserve(
                CallRequest(number, "mp", product, at, "010-58001234"),
                attempt_id=attempt_id,
                lists=ListStatus(),
            )
        if decision.allowed:
            granted.append(attempt_id)

    try:
        async with asyncio.TaskGroup() as tg:
            for i, (number, product) in enumerate(work):
                tg.create_task(one(i, number, product))
    finally:
        await ledger.close()
    return granted


def reserve_worker(
    targets: list[tuple[str, str, str]],
    policy_text: str,
    worker: int,
    numbers: list[str],
    products: list[str],
    at_iso: str,
) -> list[list[str]]:
    """For each (backend, url, schema-or-prefix): the attempt ids this process was granted."""

    async def all_targets() -> list[list[str]]:
        return [
            await _run(backend, url, where, policy_text, worker, numbers, products, at_iso)
            for backend, url, where in targets
        ]

    return asyncio.run(all_targets())
