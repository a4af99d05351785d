"""PBX load bench: originates per second until the PBX saturates, with what it costs each side.

The dialer runs here against simpbx (its own process, real time) or a real
Asterisk (``--ari URL``, the reference dialplan with Local channels). Each step
logs in more simulated agents (progressive pacing: one call per ready agent,
the agent ends a connected call after ``--max-talk`` seconds) for ``--seconds``;
the offered load grows until the PBX cannot keep up. Per step it prints:

* originates/s achieved and the back-pressure reason, if the runner held calls back;
* CPU per originate: the dialer's (this process, getrusage) beside the PBX's
  (``/proc/<pid>/stat`` of simpbx or of ``--pbx-pid``, the Asterisk process);
* answer-to-bridge p50/p99 (ms): the customer's wait from the answer (after
  AMD: from the end of the greeting) to its ChannelEnteredBridge in the agent's bridge;
* double calls: originate requests beyond one per attempt (5xx retries; a lost answer
  is resolved by GET, never re-sent) and, on simpbx, channel ids originated twice;
* uncounted abandons: customers who entered the bridge after the connect limit
  but were not counted as abandoned (must be 0), and the abandons counted.

    .venv/bin/python bench/bench_pbx_load.py                        # simpbx
    .venv/bin/python bench/bench_pbx_load.py --ari http://127.0.0.1:8088/ari \\
        --pbx-pid "$(pidof asterisk)" --agents 10,20,40,60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_dialer_load import free_port, wait_port

from compliance.policy import parse_policy
from dialer.app import DialerStack, running
from dialer.ports import ShiftedClock
from dialer.runner import RunnerConfig
from simulation.agents import SimulatedAgents
from simulation.demo import business_hours_start, demo_stack, seed_campaign
from simulation.demo_data import DEMO_POLICY, campaign_spec, numbers_ending

TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def step(
    stack: DialerStack, agents_n: int, first_id: int, args: argparse.Namespace, pbx_pid: int
) -> dict[str, Any]:
    runner = stack.runner
    book = runner.book
    ids = [f"{first_id + i}" for i in range(agents_n)]
    agents = SimulatedAgents(
        runner, "load", ids, max_talk=args.max_talk, wrap_seconds=0.2, tick=0.1
    )
    await agents.login_all()
    agents_task = asyncio.create_task(agents.run())
    try:
        await asyncio.sleep(args.warmup)
        book.connect_waits.clear()
        o0 = runner.originates_sent
        c0 = resource.getrusage(resource.RUSAGE_SELF)
        p0, t0 = proc_cpu(pbx_pid), time.monotonic()
        reasons: set[str] = set()
        while time.monotonic() - t0 < args.seconds:
            await asyncio.sleep(0.25)
            if book.throttled is not None:
                reasons.add(book.throttled.split(";")[0])
        elapsed = time.monotonic() - t0
        c1 = resource.getrusage(resource.RUSAGE_SELF)
        p1 = proc_cpu(pbx_pid)
        originates = runner.originates_sent - o0
        waits = list(book.connect_waits)
    finally:
        agents.stop()
        await agents_task
        for agent_id in ids:
            await runner.agent_logout(agent_id)
    dialer_cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    limit = runner.config.connect_limit
    ms = [w * 1000 for w, _ in waits]
    return {
        "agents": agents_n,
        "originates_per_s": originates / elapsed,
        "dialer_cpu_ms_per_originate": 1000 * dialer_cpu / max(1, originates),
        "pbx_cpu_ms_per_originate": 1000 * (p1 - p0) / max(1, originates),
        "dialer_cpu_pct": 100 * dialer_cpu / elapsed,
        "pbx_cpu_pct": 100 * (p1 - p0) / elapsed,
        "connects": len(waits),
        "answer_to_bridge_p50_ms": pct(ms, 50),
        "answer_to_bridge_p99_ms": pct(ms, 99),
        "late_connects_counted": sum(1 for _, late in waits if late),
        "uncounted_abandons": sum(1 for w, late in waits if w > limit and not late),
        "held_back": "; ".join(sorted(reasons)) or "-",
    }


async def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-pbx-"))
    pbx: asyncio.subprocess.Process | None = None
    if args.ari:
        url, pbx_pid = args.ari, args.pbx_pid
        if not pbx_pid:
            raise SystemExit("--pbx-pid (the Asterisk process) is needed with --ari")
    else:
        port = free_port()
        pbx = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "simulation.simpbx", "--port", str(port),
            "--recordings", str(tmp / "rec"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await wait_port(port)
        url, pbx_pid = f"http://127.0.0.1:{port}/ari", pbx.pid
    try:
        policy = parse_policy(DEMO_POLICY, "bench policy")
        clock = ShiftedClock(business_hours_start(policy))
        config = RunnerConfig(wrapup_limit=10.0, drain_timeout=15.0, max_claim=100)
        # Answering people (1: rings 2 s, talks 30 s; 7: answers at once; 9: talks 5 s),
        # busy (3) and unallocated (0) numbers: the mix of a real list.
        numbers = numbers_ending("1179913100", args.leads, seed=13)
        results = []
        async with demo_stack(tmp, url, policy=policy, clock=clock, config=config) as stack:
            spec = campaign_spec("load", pacing="progressive")
            await seed_campaign(stack, numbers, spec=spec, blacklist=[], at=clock.wall())
            async with running(stack):
                first = 100  # the demo directory holds softphones 100-999
                for n in args.agents:
                    result = await step(stack, n, first, args, pbx_pid)
                    first += n
                    results.append(result)
                    print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in result.items()), flush=True)  # fmt: skip
                stack.runner.pause_dialling("load")
                await stack.runner.stop()
            attempts = await stack.attempts.all()
            originated = [a for a in attempts if a.outcome not in (None, "cancelled")]
            sent = stack.runner.originates_sent
        # At most one call per attempt: no originate request beyond one per attempt.
        print(
            f"attempts originated={len(originated)} originate requests={sent} "
            f"resent={sent - len(originated)} abandons counted="
            f"{sum(1 for a in attempts if a.abandoned)}"
        )
        return results
    finally:
        if pbx is not None:
            pbx.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pbx.wait(), 5)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ari", default="", help="a real Asterisk's ARI URL (default: simpbx)")
    p.add_argument("--pbx-pid", type=int, default=0, help="the Asterisk process, for its CPU")
    p.add_argument(
        "--agents",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[10, 20, 40, 60],
        help="agents per step, comma-separated",
    )
    p.add_argument("--leads", type=int, default=20000)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=4.0)
    p.add_argument("--max-talk", type=float, default=1.5, help="agent ends a call after (s)")
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    target = args.ari or "simpbx (own process, real time)"
    print(f"PBX load bench against {target}, {os.cpu_count()} CPUs")
    asyncio.run(bench(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
