"""Agent screens bench: 200 agents' consoles connected, how soon the screen-pop arrives.

simpbx runs in its own process; this process runs what ``dialer serve`` runs
(runner, ARI events, the HTTP app with the pages and their WebSocket hub), the
simulated agents (log in, hang up after ``--max-talk``, disposition after a
short wrap-up) and 200 WebSocket clients, one per agent, each holding a signed-in
session as a browser does. For every call the dialer puts through, the latency
is the time from the dialer receiving ``ChannelEnteredBridge`` for the customer's
channel in the agent's bridge ``agent-<id>`` to that agent's socket receiving the
screen-pop (name, masked number, history, filled script). The clients share this
process's event loop with the server, so the figures include their own cost
(pessimistic). Target: p99 within 300 ms.

    .venv/bin/python bench/bench_agent_screens.py [--agents 200 --seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from compliance.policy import parse_policy
from dialer.app import DialerStack, http_app, running
from dialer.ari.events import AriEvent, ChannelEnteredBridge
from dialer.ports import ShiftedClock
from dialer.runner import RunnerConfig
from identity.model import Principal, Role
from simulation.agents import SimulatedAgents
from simulation.demo import business_hours_start, demo_stack, seed_campaign
from simulation.demo_data import DEMO_POLICY, campaign_spec, sample_numbers
from web.agent.script import SAMPLE_SCRIPT

sys.path.insert(0, str(Path(__file__).parent))
from bench_dialer_load import free_port, wait_port

ADMIN = Principal("bench", Role.ADMIN)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Screens:
    """The agents' browsers: one socket each, the time every screen-pop arrived."""

    def __init__(self) -> None:
        self.pops: dict[str, float] = {}
        self.frames = 0
        self.messages = 0
        self.connected = 0

    async def follow(self, http: aiohttp.ClientSession, url: str, origin: str) -> None:
        async with http.ws_connect(url, headers={"Origin": origin}) as ws:
            self.connected += 1
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                now = time.perf_counter()
                self.frames += 1
                for m in json.loads(msg.data)["messages"]:
                    self.messages += 1
                    if m["type"] == "customer" and m["attempt_id"]:
                        self.pops.setdefault(m["attempt_id"], now)


async def signed_in(stack: DialerStack, agent_ids: list[str]) -> dict[str, str]:
    """A login session per agent (as a browser holds after signing in)."""
    sessions = {}
    for agent_id in agent_ids:
        name = f"agent{agent_id}"
        await stack.identity.add_user(ADMIN, name, Role.AGENT, agent_id=agent_id)
        sessions[agent_id] = (await stack.identity.create_session(name)).session_id
    return sessions


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="bench-screens-"))
    pbx = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulation.simpbx", "--port", str(port),
        "--time-scale", str(args.time_scale), "--recordings", str(tmp / "rec"),
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
            spec = campaign_spec("bench", pacing=args.pacing)
            spec["script"] = SAMPLE_SCRIPT.read_text(encoding="utf-8")
            numbers = sample_numbers(args.leads, seed=6)
            await seed_campaign(stack, numbers, spec=spec, blacklist=[], at=clock.wall())
            ids = [f"{300 + i}" for i in range(args.agents)]  # in the demo directory (100-999)
            sessions = await signed_in(stack, ids)
            entered: dict[str, float] = {}

            async def on_event(ev: AriEvent) -> None:
                if (
                    isinstance(ev, ChannelEnteredBridge)
                    and ev.bridge.id.startswith("agent-")
                    and ev.channel.id.startswith("dl-")
                ):
                    entered.setdefault(ev.channel.id[3:], time.perf_counter())

            stack.events.on_any(on_event)
            site_runner = web.AppRunner(http_app(stack))
            await site_runner.setup()
            site = web.TCPSite(site_runner, "127.0.0.1", 0)
            await site.start()
            web_port = site_runner.addresses[0][1]
            base = f"http://127.0.0.1:{web_port}"
            screens = Screens()
            clients = []
            for agent_id in ids:
                jar = aiohttp.CookieJar(unsafe=True)
                http = aiohttp.ClientSession(cookie_jar=jar)
                http.cookie_jar.update_cookies(
                    {"dialer_session": sessions[agent_id]}, URL(base)
                )
                clients.append(http)
            agents = SimulatedAgents(
                stack.runner, "bench", ids, max_talk=args.max_talk, wrap_seconds=0.3, tick=0.1
            )
            try:
                async with running(stack), asyncio.TaskGroup() as group:
                    followers = [
                        group.create_task(screens.follow(http, f"{base}/ws?page=agent", base))
                        for http in clients
                    ]
                    async with asyncio.timeout(30):
                        while screens.connected < len(ids):  # noqa: ASYNC110 - bench set-up
                            await asyncio.sleep(0.05)
                    await agents.login_all()
                    agents_task = group.create_task(agents.run())
                    await asyncio.sleep(args.warmup)
                    c0 = resource.getrusage(resource.RUSAGE_SELF)
                    t0 = time.perf_counter()
                    start_pops = set(screens.pops)
                    await asyncio.sleep(args.seconds)
                    elapsed = time.perf_counter() - t0
                    c1 = resource.getrusage(resource.RUSAGE_SELF)
                    stack.runner.pause_dialling("bench")
                    agents.stop()
                    await agents_task
                    for task in followers:
                        task.cancel()
            finally:
                for http in clients:
                    await http.close()
                await site_runner.cleanup()
        measured = [
            (screens.pops[a] - entered[a]) * 1000.0
            for a in screens.pops
            if a in entered and a not in start_pops and t0 <= entered[a] <= t0 + elapsed
        ]
        in_window = [a for a, t in entered.items() if t0 <= t <= t0 + elapsed]
        cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
        return {
            "agents (screens connected)": len(ids),
            "seconds": elapsed,
            "customers put through": len(in_window),
            "screen-pops measured": len(measured),
            "pops missing": len([a for a in in_window if a not in screens.pops]),
            "latency p50 ms": percentile(measured, 0.50),
            "latency p95 ms": percentile(measured, 0.95),
            "latency p99 ms": percentile(measured, 0.99),
            "latency max ms": max(measured) if measured else float("nan"),
            "pop before bridge entry": sum(1 for m in measured if m < 0),
            "frames per s": screens.frames / elapsed,
            "cpu % of one core (dialer + web + clients)": 100.0 * cpu / elapsed,
        }
    finally:
        pbx.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pbx.wait(), 5)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=200)
    p.add_argument("--leads", type=int, default=8000)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--warmup", type=float, default=8.0)
    p.add_argument("--time-scale", type=float, default=5.0)
    p.add_argument("--max-talk", type=float, default=3.0, help="agent ends a call after (real s)")
    p.add_argument("--pacing", default="progressive")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(bench(args))
    print(
        f"agent screens bench (SQLite, {os.cpu_count()} CPUs, simpbx x{args.time_scale:g} "
        f"in its own process, {args.agents} WebSocket clients in this process)"
    )
    for k, v in result.items():
        print(f"  {k:44s} {v:10.1f}" if isinstance(v, float) else f"  {k:44s} {v:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
