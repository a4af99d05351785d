"""Load bench: how many originates and ARI events per second the dialer sustains.

simpbx runs in a SEPARATE process (``python -m simulation.simpbx``), so the CPU
figures of this process are the dialer's own (runner, ARI client and events,
compliance gate and stores, simulated agents' API calls). 200 simulated agents
(default) log in to one campaign; the PBX runs faster than real time so that
calls are short; the campaign runs for ``--seconds``.

    .venv/bin/python bench/bench_dialer_load.py                      # SQLite (embedded default)
    .venv/bin/python bench/bench_dialer_load.py --db postgresql+asyncpg://postgres@127.0.0.1/test

Reports originates/s, ARI events/s handled, calls connected, abandon rate,
the dispatcher's queue peak, CPU seconds (user+system, resource.getrusage)
and memory (max RSS; tracemalloc peak of Python allocations).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import resource
import socket
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

from compliance.policy import parse_policy
from dialer.app import running
from dialer.ports import ShiftedClock
from dialer.runner import RunnerConfig
from simulation.agents import SimulatedAgents
from simulation.demo import business_hours_start, demo_stack, seed_campaign
from simulation.demo_data import DEMO_POLICY, campaign_spec, sample_numbers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_port(port: int, within: float = 15.0) -> None:
    async with asyncio.timeout(within):
        while True:
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            w.close()
            await w.wait_closed()
            return


async def bench(args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="bench-dialer-"))
    pbx = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulation.simpbx", "--port", str(port),
        "--time-scale", str(args.time_scale), "--recordings", str(tmp / "rec"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    schema = ""
    pg_conn = None
    try:
        await wait_port(port)
        if args.db.startswith("postgresql"):
            import asyncpg

            schema = "bench_" + uuid.uuid4().hex[:8]
            pg_conn = await asyncpg.connect(
                args.db.replace("postgresql+asyncpg://", "postgresql://")
            )
            await pg_conn.execute(f'CREATE SCHEMA "{schema}"')
        policy = parse_policy(DEMO_POLICY, "bench policy")
        clock = ShiftedClock(business_hours_start(policy))
        config = RunnerConfig(
            wrapup_limit=10.0,
            drain_timeout=10.0,
            max_claim=100,
        )
        numbers = sample_numbers(args.leads, seed=4)
        db_url = args.db if args.db.startswith("postgresql") else None
        async with demo_stack(
            tmp,
            f"http://127.0.0.1:{port}/ari",
            policy=policy,
            clock=clock,
            config=config,
            db_url=db_url,
            db_schema=schema,
        ) as stack:
            spec = campaign_spec("bench", pacing=args.pacing)
            await seed_campaign(stack, numbers, spec=spec, blacklist=[], at=clock.wall())
            ids = [f"{1000 + i}" for i in range(args.agents)]
            agents = SimulatedAgents(
                stack.runner, "bench", ids, max_talk=args.max_talk, wrap_seconds=0.2, tick=0.1
            )
            tracemalloc.start()
            queue_peak = 0
            async with running(stack) as task:
                await agents.login_all()
                agents_task = asyncio.create_task(agents.run())
                await asyncio.sleep(args.warmup)
                o0, e0, t0 = (
                    stack.runner.originates_sent,
                    stack.runner.events_handled,
                    time.monotonic(),
                )
                c0 = resource.getrusage(resource.RUSAGE_SELF)
                while time.monotonic() - t0 < args.seconds and not task.done():
                    await asyncio.sleep(0.2)
                    queue_peak = max(queue_peak, stack.runner._queue.qsize())
                elapsed = time.monotonic() - t0
                o1, e1 = stack.runner.originates_sent, stack.runner.events_handled
                c1 = resource.getrusage(resource.RUSAGE_SELF)
                _, peak = tracemalloc.get_traced_memory()
                stack.runner.pause_dialling("bench")
                await stack.runner.stop()
                agents.stop()
                await agents_task
            funnel = await stack.attempts.funnel("bench")
            tracemalloc.stop()
        cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
        return {
            "agents": args.agents,
            "seconds": elapsed,
            "originates_per_s": (o1 - o0) / elapsed,
            "ari_events_per_s": (e1 - e0) / elapsed,
            "cpu_seconds": cpu,
            "cpu_percent_of_one_core": 100.0 * cpu / elapsed,
            "max_rss_mb": c1.ru_maxrss / 1024.0,
            "tracemalloc_peak_mb": peak / 1e6,
            "dispatch_queue_peak": queue_peak,
            "attempts": funnel.attempts,
            "connects": funnel.connects,
            "abandon_rate": funnel.abandon_rate,
        }
    finally:
        pbx.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pbx.wait(), 5)
        if pg_conn is not None:
            await pg_conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            await pg_conn.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=200)
    p.add_argument("--leads", type=int, default=6000)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--time-scale", type=float, default=10.0)
    p.add_argument("--max-talk", type=float, default=2.0, help="agent ends a call after (real s)")
    p.add_argument("--pacing", default="predictive")
    p.add_argument("--db", default="sqlite", help="sqlite (temp file) or a PostgreSQL URL")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(bench(args))
    db = "PostgreSQL" if args.db.startswith("postgresql") else "SQLite"
    print(
        f"dialer load bench ({db}, {os.cpu_count()} CPUs, "
        f"simpbx x{args.time_scale:g} in its own process)"
    )
    for k, v in result.items():
        print(f"  {k:26s} {v:10.2f}" if isinstance(v, float) else f"  {k:26s} {v:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
