"""Check-and-reserve throughput and latency: the contact ledgers and the whole gate.

Run: ``.venv/bin/python bench/bench_ledger.py [--n 3000] [--concurrency 8,32]
[--only redis] [--level gate]``

Two levels, each on SQLite, PostgreSQL and Redis:

* ``ledger``: ``ContactLedger.check_and_reserve`` alone (history read, pure
  engine, conditional append, decisions log), lists given as "not listed".
* ``gate``: ``ComplianceGate.check_and_reserve`` as the FastAGI ``dialer_check``
  calls it, from ``open_compliance``: campaign lookup, lead lookup (half the
  numbers have a lead), do-not-call / special lists, then the ledger. With
  Redis the ledger and the list mirror are on Redis, campaigns and leads on
  SQLite.
* ``gate-lead``: the same, the dialer's way: the caller holds the lead and
  passes ``segment`` and ``assigned_at``, so the gate skips the lead lookup.

For each: N calls from one process, first one at a time, then with C
concurrent tasks for each C of ``--concurrency``; prints decisions per second,
p50/p99 latency of one call and the CPU time per call. Requests spread over
20,000 customers and 3 products at one instant, so most are granted (the
expensive path) and some are refused by the caps. Uses its own PostgreSQL
schema and Redis key prefix and removes them afterwards; SQLite runs on a
temporary file. Environment: DIALER_TEST_PG_URL, DIALER_TEST_REDIS_URL.
Note: p99 with C tasks in flight is bounded below by about C / throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from compliance.campaigns import parse_campaign_spec
from compliance.gate import open_compliance
from compliance.ledger import ContactLedger
from compliance.model import CallRequest, Decision, ListStatus
from compliance.policy import parse_policy
from compliance.redis_ledger import RedisLedger
from compliance.sql_ledger import SqlLedger

PG_URL = os.environ.get("DIALER_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DIALER_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
POLICY = parse_policy('version = "bench"\n[caller_id]\npool = ["010-58001234"]\n', "bench")
AT = datetime(2026, 11, 3, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
PRODUCTS = ("loan", "card", "fund")
CUSTOMERS = 20_000
ASSIGNED = datetime(2026, 10, 20, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
CAMPAIGN = {
    "name": "bench",
    "script": "Hello",
    "products": list(PRODUCTS),
    "caller_id": "010-58001234",
}

Call = Callable[[CallRequest, str], Awaitable[Decision]]


def requests(n: int, seed: int) -> list[CallRequest]:
    rng = random.Random(seed)
    return [
        CallRequest(
            f"138{rng.randrange(CUSTOMERS):08d}", "bench", rng.choice(PRODUCTS), AT, "010-58001234"
        )
        for _ in range(n)
    ]


def leads_csv() -> str:
    """Leads for every other customer number (the gate finds a lead for half the calls)."""
    rows = ["number,segment,product,assigned_at"]
    rows += [f"138{i:08d},default,,2026-10-20T09:00" for i in range(0, CUSTOMERS, 2)]
    return "\n".join(rows) + "\n"


async def measure(
    call: Call, reqs: list[CallRequest], concurrency: int
) -> tuple[float, float, list[float], int]:
    """(elapsed s, CPU s of this process, latencies s, granted) with ``concurrency`` workers."""
    latencies: list[float] = []
    granted = 0
    queue = iter(enumerate(reqs))
    run_id = uuid.uuid4().hex[:8]

    async def worker() -> None:
        nonlocal granted
        for i, request in queue:
            t0 = time.perf_counter()
            decision = await call(request, f"b{run_id}-{i}")
            latencies.append(time.perf_counter() - t0)
            granted += decision.allowed

    start, cpu = time.perf_counter(), time.process_time()
    async with asyncio.TaskGroup() as tg:
        for _ in range(concurrency):
            tg.create_task(worker())
    return time.perf_counter() - start, time.process_time() - cpu, latencies, granted


def report(name: str, mode: str, result: tuple[float, float, list[float], int]) -> None:
    elapsed, cpu, lat, granted = result
    lat_ms = sorted(x * 1000 for x in lat)
    p50 = statistics.median(lat_ms)
    p99 = lat_ms[min(len(lat_ms) - 1, int(len(lat_ms) * 0.99))]
    cpu_ms = cpu * 1000 / len(lat)
    print(
        f"| {name:<14} | {mode:<10} | {len(lat) / elapsed:>11.0f} | {p50:>6.2f} | {p99:>7.2f} "
        f"| {cpu_ms:>6.3f} | {1000 / cpu_ms:>11.0f} | {granted:>5}/{len(lat):<5} |",
        flush=True,
    )


async def bench(name: str, call: Call, n: int, concurrency: list[int]) -> None:
    await measure(call, requests(min(300, n), 99), 4)  # warm-up: pools, scripts, caches
    report(name, "sequential", await measure(call, requests(n, 1), 1))
    for i, c in enumerate(concurrency):
        report(name, f"{c} tasks", await measure(call, requests(n, 2 + i), c))


def ledger_call(ledger: ContactLedger) -> Call:
    async def call(request: CallRequest, attempt_id: str) -> Decision:
        return await ledger.check_and_reserve(request, attempt_id=attempt_id, lists=ListStatus())

    return call


@asynccontextmanager
async def gate_call(
    db_url: str,
    *,
    schema: str | None = None,
    redis_url: str | None = None,
    prefix: str = "",
    lead_given: bool = False,
) -> AsyncIterator[Call]:
    stores = await open_compliance(
        db_url, POLICY, schema=schema, redis_url=redis_url, redis_prefix=prefix or "dialer:"
    )
    try:
        await stores.campaigns.create(parse_campaign_spec(CAMPAIGN))
        await stores.leads.import_text(leads_csv(), "bench.csv", "bench", tz=POLICY.tz)
        gate = stores.gate

        async def call(request: CallRequest, attempt_id: str) -> Decision:
            if lead_given:  # the dialer's way: it holds the lead, the gate skips the lookup
                return await gate.check_and_reserve(
                    request.number,
                    request.campaign,
                    request.product,
                    request.at,
                    attempt_id=attempt_id,
                    segment="default",
                    assigned_at=ASSIGNED,
                )
            return await gate.check_and_reserve(
                request.number,
                request.campaign,
                request.product,
                request.at,
                attempt_id=attempt_id,
            )

        yield call
    finally:
        await stores.close()


async def run_sqlite(level: str, n: int, conc: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
        if level == "ledger":
            ledger = await SqlLedger.open(url, POLICY)
            try:
                await bench("sqlite ledger", ledger_call(ledger), n, conc)
            finally:
                await ledger.close()
        else:
            async with gate_call(url, lead_given=level == "gate-lead") as call:
                await bench(f"sqlite {level}", call, n, conc)


async def run_postgres(level: str, n: int, conc: list[int]) -> None:
    import asyncpg

    dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(dsn)
    schema = "dialer_bench_" + uuid.uuid4().hex[:8]
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        if level == "ledger":
            from compliance.tables import open_engine

            engine = await open_engine(PG_URL, schema=schema, pool_size=max(conc), max_overflow=0)
            ledger = SqlLedger(engine, POLICY, own_engine=True)
            try:
                await bench("postgres ledger", ledger_call(ledger), n, conc)
            finally:
                await ledger.close()
        else:
            async with gate_call(PG_URL, schema=schema, lead_given=level == "gate-lead") as call:
                await bench(f"postgres {level}", call, n, conc)
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


async def run_redis(level: str, n: int, conc: list[int]) -> None:
    import redis.asyncio as aioredis

    prefix = f"dialer-bench:{uuid.uuid4().hex[:8]}:"
    try:
        if level == "ledger":
            ledger = RedisLedger.from_url(
                REDIS_URL, POLICY, prefix=prefix, max_connections=max(conc) + 8
            )
            try:
                await bench("redis ledger", ledger_call(ledger), n, conc)
            finally:
                await ledger.close()
        else:
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
                async with gate_call(
                    url, redis_url=REDIS_URL, prefix=prefix, lead_given=level == "gate-lead"
                ) as call:
                    await bench(f"redis {level}", call, n, conc)
    finally:
        client: Any = aioredis.Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        for i in range(0, len(keys), 1000):
            await client.delete(*keys[i : i + 1000])
        await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="reservations per run")
    parser.add_argument(
        "--concurrency", default="8,32", help="comma-separated numbers of concurrent tasks"
    )
    parser.add_argument("--only", choices=["sqlite", "postgres", "redis"], action="append")
    parser.add_argument("--level", choices=["ledger", "gate", "gate-lead"], action="append")
    args = parser.parse_args()
    conc = [int(c) for c in args.concurrency.split(",") if c.strip()]
    only = args.only or ["sqlite", "postgres", "redis"]
    levels = args.level or ["ledger", "gate", "gate-lead"]
    print(f"check-and-reserve, {args.n} calls per run, one process (cpu count {os.cpu_count()})")
    print("cpu ms: CPU time of this process per decision; cpu-bound/s: 1000 / cpu ms, the rate")
    print("one free core would sustain (the machine is shared; wall-clock rates vary with load)")
    print(
        "| backend        | mode       | decisions/s | p50 ms |  p99 ms | cpu ms |"
        " cpu-bound/s | granted     |"
    )
    print(
        "|----------------|------------|-------------|--------|---------|--------|"
        "-------------|-------------|"
    )
    runners = {"sqlite": run_sqlite, "postgres": run_postgres, "redis": run_redis}
    for level in levels:
        for backend in only:
            await runners[backend](level, args.n, conc)


if __name__ == "__main__":
    asyncio.run(main())
