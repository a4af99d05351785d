"""Check-and-reserve throughput and latency of the contact ledgers (SQLite, PostgreSQL, Redis).

Run: ``.venv/bin/python bench/bench_ledger.py [--n 3000] [--concurrency 32] [--only redis]``

For each backend: N check-and-reserve calls from one process, first one at a
time, then with C concurrent tasks; prints decisions per second and p50/p99
latency of one call. Requests spread over 20,000 customers and 3 products at
one instant, so most are granted (the expensive path: evaluate, append, log)
and some are refused by the caps. Uses its own PostgreSQL schema and Redis key
prefix and removes them afterwards; SQLite runs on a temporary file.
Environment: DIALER_TEST_PG_URL, DIALER_TEST_REDIS_URL (same as the tests).
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
from collections.abc import Awaitable, Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from compliance.ledger import ContactLedger
from compliance.model import CallRequest, ListStatus
from compliance.policy import Policy, parse_policy
from compliance.redis_ledger import RedisLedger
from compliance.sql_ledger import SqlLedger

PG_URL = os.environ.get("DIALER_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DIALER_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
POLICY = parse_policy('version = "bench"\n[caller_id]\npool = ["010-58001234"]\n', "bench")
AT = datetime(2026, 11, 3, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
PRODUCTS = ("loan", "card", "fund")


def requests(n: int, seed: int) -> list[CallRequest]:
    rng = random.Random(seed)
    return [
        CallRequest(
            f"138{rng.randrange(20_000):08d}", "bench", rng.choice(PRODUCTS), AT, "010-58001234"
        )
        for _ in range(n)
    ]


async def measure(
    ledger: ContactLedger, reqs: list[CallRequest], concurrency: int
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
            decision = await ledger.check_and_reserve(
                request, attempt_id=f"b{run_id}-{i}", lists=ListStatus()
            )
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
        f"| {name:<8} | {mode:<10} | {len(lat) / elapsed:>11.0f} | {p50:>6.2f} | {p99:>7.2f} "
        f"| {cpu_ms:>6.3f} | {1000 / cpu_ms:>8.0f} | {granted:>5}/{len(lat):<5} |",
        flush=True,
    )


async def bench(
    name: str, opener: Callable[[Policy], Awaitable[ContactLedger]], n: int, concurrency: int
) -> None:
    ledger = await opener(POLICY)
    try:
        await measure(ledger, requests(min(200, n), 99), 4)  # warm-up: pools, scripts, caches
        report(name, "sequential", await measure(ledger, requests(n, 1), 1))
        report(name, f"{concurrency} tasks", await measure(ledger, requests(n, 2), concurrency))
    finally:
        await ledger.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="reservations per run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--only", choices=["sqlite", "postgres", "redis"], action="append")
    args = parser.parse_args()
    only = set(args.only or ["sqlite", "postgres", "redis"])
    print(f"check-and-reserve, {args.n} calls per run, one process (cpu count {os.cpu_count()})")
    print("cpu ms: CPU time of this process per decision; cpu-bound/s: 1000 / cpu ms, the rate")
    print("one free core would sustain (the machine is shared; wall-clock rates vary with load)")
    print(
        "| backend  | mode       | decisions/s | p50 ms |  p99 ms | cpu ms | cpu-bound/s |"
        " granted |"
    )
    print(
        "|----------|------------|-------------|--------|---------|--------|-------------|"
        "---------|"
    )
    if "sqlite" in only:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"

            async def sqlite(policy: Policy) -> ContactLedger:
                return await SqlLedger.open(url, policy)

            await bench("sqlite", sqlite, args.n, args.concurrency)
    if "postgres" in only:
        import asyncpg

        dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
        admin = await asyncpg.connect(dsn)
        schema = "dialer_bench_" + uuid.uuid4().hex[:8]
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        try:

            async def postgres(policy: Policy) -> ContactLedger:
                from compliance.tables import open_engine

                engine = await open_engine(
                    PG_URL, schema=schema, pool_size=args.concurrency, max_overflow=0
                )
                return SqlLedger(engine, policy, own_engine=True)

            await bench("postgres", postgres, args.n, args.concurrency)
        finally:
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
            await admin.close()
    if "redis" in only:
        import redis.asyncio as aioredis

        prefix = f"dialer-bench:{uuid.uuid4().hex[:8]}:"

        async def redis(policy: Policy) -> ContactLedger:
            return RedisLedger.from_url(
                REDIS_URL, policy, prefix=prefix, max_connections=args.concurrency + 8
            )

        try:
            await bench("redis", redis, args.n, args.concurrency)
        finally:
            client = aioredis.Redis.from_url(REDIS_URL)
            keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
            for i in range(0, len(keys), 1000):
                await client.delete(*keys[i : i + 1000])
            await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
