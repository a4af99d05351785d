"""What the live wallboard costs the dialer with 200 agents working.

The dialer under load as in ``bench_dialer_load.py`` (200 simulated agents, simpbx at
10x in its own process), plus the wallboard's feed: every ``--interval`` seconds the
``FloorWatcher`` diffs the floor and the changed tiles are encoded as JSON once per
open page (``--pages``), as the WebSocket hub sends them; every 30 s the abandon
figures (today, 30 days) are read from the report rollup. The feed's own CPU time is
measured with ``time.thread_time()`` around its work (the event loop is one thread),
and given as a share of one core over the run. Target: under 5 %.

    .venv/bin/python bench/bench_wallboard.py [--agents 200 --seconds 30 --pages 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_dialer_load import free_port, wait_port

from compliance.policy import parse_policy
from dialer.app import running
from dialer.floor import FloorWatcher, abandon_figures
from dialer.ports import ShiftedClock
from dialer.runner import RunnerConfig
from reports.store import ReportStore
from simulation.agents import SimulatedAgents
from simulation.demo import business_hours_start, demo_stack, seed_campaign
from simulation.demo_data import DEMO_POLICY, campaign_spec, sample_numbers


async def bench(args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="bench-wallboard-"))
    pbx = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulation.simpbx", "--port", str(port),
        "--time-scale", "10", "--recordings", str(tmp / "rec"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_port(port)
        policy = parse_policy(DEMO_POLICY, "bench policy")
        clock = ShiftedClock(business_hours_start(policy))
        config = RunnerConfig(wrapup_limit=10.0, drain_timeout=10.0, max_claim=100)
        async with demo_stack(
            tmp, f"http://127.0.0.1:{port}/ari", policy=policy, clock=clock, config=config
        ) as stack:
            await seed_campaign(
                stack, sample_numbers(args.leads, seed=4), spec=campaign_spec("bench"),
                blacklist=[], at=clock.wall(),
            )  # fmt: skip
            store = ReportStore(stack.stores.engine, policy.tz)
            await store.create_schema()
            watcher = FloorWatcher(stack.runner)
            ids = [f"{1000 + i}" for i in range(args.agents)]
            agents = SimulatedAgents(
                stack.runner, "bench", ids, max_talk=2.0, wrap_seconds=0.2, tick=0.1
            )
            spent = 0.0
            pushed = 0
            frames = 0

            async def feed(stop: asyncio.Event) -> None:
                nonlocal spent, pushed, frames
                next_figures = 0.0
                while not stop.is_set():
                    t = time.thread_time()
                    if time.monotonic() >= next_figures:
                        today = datetime.now(policy.tz).date()
                        watcher.abandon = await abandon_figures(store, today)
                        next_figures = time.monotonic() + 30.0
                    changed_agents, changed_camps = watcher.poll()
                    batch = [asdict(a) for a in changed_agents] + [asdict(c) for c in changed_camps]
                    if batch:
                        for _ in range(args.pages):
                            json.dumps({"messages": batch}, ensure_ascii=False)
                            frames += 1
                        pushed += len(batch)
                    spent += time.thread_time() - t
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(args.interval):
                            await stop.wait()

            async with running(stack) as task:
                await agents.login_all()
                agents_task = asyncio.create_task(agents.run())
                await asyncio.sleep(5.0)
                stop = asyncio.Event()
                t0, c0 = time.monotonic(), time.process_time()
                feeder = asyncio.create_task(feed(stop))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), args.seconds)
                stop.set()
                await feeder
                elapsed = time.monotonic() - t0
                process_cpu = time.process_time() - c0
                stack.runner.pause_dialling("bench")
                await stack.runner.stop()
                agents.stop()
                await agents_task
        return {
            "agents": args.agents,
            "seconds": elapsed,
            "wallboard_cpu_seconds": spent,
            "wallboard_percent_of_one_core": 100.0 * spent / elapsed,
            "dialer_percent_of_one_core": 100.0 * process_cpu / elapsed,
            "tiles_pushed_per_s": pushed / elapsed,
            "frames_per_s": frames / elapsed,
        }
    finally:
        pbx.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pbx.wait(), 5)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=200)
    p.add_argument("--leads", type=int, default=6000)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--interval", type=float, default=0.25, help="seconds between polls")
    p.add_argument("--pages", type=int, default=3, help="wallboards open")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(bench(args))
    print(
        f"wallboard bench: {args.agents} agents, poll every {args.interval:g} s, {args.pages} pages"
    )
    for k, v in result.items():
        print(f"  {k:32s} {v:10.2f}" if isinstance(v, float) else f"  {k:32s} {v:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
