"""Eight spawned processes reserve concurrently for the same 50 customers, on the real
PostgreSQL and the real Redis: no cap is exceeded and each ledger holds exactly the
reservations the processes were granted. (One pool of processes serves both backends:
spawning eight interpreters costs more than the reservations themselves.)"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
from store_helpers import TEST_POLICY_TEXT, local
from store_mp_worker import reserve_worker
from test_store_ledger_property import cap_violations

from compliance.ledger import ContactLedger
from compliance.policy import Policy
from compliance.redis_ledger import RedisLedger
from compliance.sql_ledger import SqlLedger
from compliance.tables import open_engine

PROCESSES = 8
NUMBERS = [f"1380000{i:04d}" for i in range(50)]
PRODUCTS = ["loan", "card", "fund"]
AT = local(2026, 11, 3, 10, 30)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.timeout(90)
async def test_eight_processes_never_exceed_caps(
    pg_target: Any, redis_target: Any, policy: Policy
) -> None:
    # Tables first: the workers must not race on CREATE TABLE.
    await (await open_engine(pg_target.url, schema=pg_target.schema)).dispose()
    targets = [
        ("postgres", pg_target.url, pg_target.schema),
        ("redis", redis_target.url, redis_target.prefix),
    ]
    ctx = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=PROCESSES, mp_context=ctx) as pool:
        results = await asyncio.gather(
            *(
                loop.run_in_executor(
                    pool,
                    reserve_worker,
                    targets,
                    TEST_POLICY_TEXT,
                    w,
                    NUMBERS,
                    PRODUCTS,
                    AT.isoformat(),
                )
                for w in range(PROCESSES)
            )
        )
    for index, (backend, _, where) in enumerate(targets):
        granted = [a for worker in results for a in worker[index]]
        assert len(granted) == len(set(granted)), backend
        ledger: ContactLedger
        if backend == "postgres":
            ledger = await SqlLedger.open(pg_target.url, policy, schema=where)
        else:
            ledger = RedisLedger.from_url(redis_target.url, policy, prefix=where)
        try:
            stored: list[str] = []
            for number in NUMBERS:
                history = await ledger.history(number)
                assert cap_violations(number, history, policy) == [], backend
                # 3 products at one instant: the monthly cap (2) is what limits each customer.
                assert len(history) == policy.caps.monthly_calls, backend
                stored += [e.attempt_id for e in history]
        finally:
            await ledger.close()
        assert sorted(stored) == sorted(granted), backend
        assert len(granted) == len(NUMBERS) * policy.caps.monthly_calls, backend
