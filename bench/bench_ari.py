"""Benchmark of the ARI client against simpbx (run on demand, not a test).

Prints:
  1. events decoded per second (``decode_event`` on the real captured frames);
  2. events per second end to end: simpbx -> WebSocket -> AriEvents -> handler;
  3. originate round-trips per second (POST /channels, concurrency C) against simpbx.

Targets (issue): 20,000 events/s decoded, 500 originates/s against simpbx.
simpbx runs in a child process (``python -m simulation.simpbx``) so that the client
and the simulator each have a core; ``--in-process`` runs both in one loop.

    .venv/bin/python bench/bench_ari.py [--seconds 3] [--originates 3000] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path

from dialer.ari import AriClient, AriEvent, AriEvents, decode_event
from simulation.simpbx import start_simpbx

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "tests" / "ari" / "data"
# The event types a dialer reacts to; the ;2 half's dialplan chatter is not among them.
DIALER_TYPES = ("StasisStart", "StasisEnd", "Dial", "ChannelDestroyed", "ChannelLeftBridge",
                "RecordingFinished", "PlaybackFinished")  # fmt: skip
USER, PASSWORD = "dialer", "dialer-secret"


def bench_decode(seconds: float) -> tuple[float, float]:
    """(events per wall second, events per CPU second): the machine is shared."""
    frames = [
        line.strip()
        for path in sorted(CAPTURES.glob("scenario_*_events.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    count = 0
    began = time.perf_counter()
    cpu = time.process_time()
    while time.perf_counter() - began < seconds:
        for frame in frames:
            decode_event(frame)
        count += len(frames)
    return count / (time.perf_counter() - began), count / (time.process_time() - cpu)


class Counter:
    def __init__(self) -> None:
        self.events = 0
        self.destroyed = 0
        self.done = asyncio.Event()
        self.expected_destroyed = 0

    async def __call__(self, event: AriEvent) -> None:
        self.events += 1
        if event.type == "ChannelDestroyed":
            self.destroyed += 1
            if self.destroyed >= self.expected_destroyed:
                self.done.set()


async def originate_round(client: AriClient, total: int, concurrency: int, prefix: str) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)

    async def worker() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            # Busy numbers end at once, so the simulator's state stays small.
            await client.originate(
                "Local/5550003@sim-customers", channel_id=f"{prefix}-{i}", app_args=["bench"]
            )

    began = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(concurrency):
            tg.create_task(worker())
    return total / (time.perf_counter() - began)


async def run_against(url: str, args: argparse.Namespace) -> dict[str, float]:
    """Originates without, then with, an events WebSocket consuming every event."""
    client = AriClient(url, USER, PASSWORD)
    result: dict[str, float] = {}
    try:
        await originate_round(client, 200, args.concurrency, "warm")
        cpu = time.process_time()
        result["originates_per_s_rest_only"] = await originate_round(
            client, args.originates, args.concurrency, "r"
        )
        result["client_cpu_ms_per_originate_rest_only"] = (
            1000 * (time.process_time() - cpu) / args.originates
        )
        for label, types in (("", None), ("_dialer_handlers", DIALER_TYPES)):
            counter = Counter()
            events = AriEvents(client, heartbeat=10)
            if types is None:
                events.on_any(counter)
            else:
                for name in types:
                    events.on(name, counter)
            async with events:
                await events.wait_connected()
                counter.expected_destroyed = (
                    2 * args.originates if types is None else args.originates
                )
                cpu = time.process_time()
                began = time.perf_counter()
                result["originates_per_s" + label] = await originate_round(
                    client, args.originates, args.concurrency, "b" + label
                )
                await asyncio.wait_for(counter.done.wait(), 120)
                await events.drain(within=30)
                elapsed = time.perf_counter() - began
                result["client_cpu_ms_per_originate" + label] = (
                    1000 * (time.process_time() - cpu) / args.originates
                )
                if types is None:
                    result["ws_events_per_s"] = counter.events / elapsed
                    result["ws_events"] = counter.events
        return result
    finally:
        await client.close()


async def main_async(args: argparse.Namespace) -> dict[str, float]:
    decode_rate, decode_cpu_rate = bench_decode(args.seconds)
    if args.url:
        result = await run_against(args.url, args)
    elif args.in_process:
        sim = await start_simpbx(port=0)
        try:
            result = await run_against(sim.base_url, args)
        finally:
            await sim.close()
    else:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "simulation.simpbx", "--port", "0",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
            url = line.split()[2]
            result = await run_against(url, args)
        finally:
            proc.terminate()
            await proc.wait()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        # Warm-up + three timed rounds ran in the child.
        result["simpbx_cpu_ms_per_originate"] = (
            1000 * (usage.ru_utime + usage.ru_stime) / (200 + 3 * args.originates)
        )
    result["decode_events_per_s"] = decode_rate
    result["decode_events_per_cpu_s"] = decode_cpu_rate
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="decode benchmark duration")
    parser.add_argument("--originates", type=int, default=3000, help="originates to time")
    parser.add_argument("--concurrency", type=int, default=50, help="originates in flight")
    parser.add_argument("--in-process", action="store_true", help="simpbx in this process")
    parser.add_argument("--url", help="an ARI base URL already running (simpbx or Asterisk)")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(result))
        return 0
    where = args.url or ("in-process" if args.in_process else "child process")
    r = result
    print(f"machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(
        f"decode_event:                 {r['decode_events_per_s']:>9,.0f} events/s "
        f"({r['decode_events_per_cpu_s']:,.0f} per CPU-second; target 20,000)"
    )
    print(
        f"originate round-trips:        {r['originates_per_s_rest_only']:>9,.0f} /s REST only, "
        f"{r['originates_per_s_dialer_handlers']:,.0f} /s with a dialer's handlers, "
        f"{r['originates_per_s']:,.0f} /s with every event decoded and handled "
        f"(concurrency {args.concurrency}, simpbx {where}; target 500)"
    )
    print(
        "  client CPU per originate:   "
        f"{r['client_cpu_ms_per_originate_rest_only']:.2f} ms REST only,"
        f" {r['client_cpu_ms_per_originate_dialer_handlers']:.2f} ms dialer handlers,"
        f" {r['client_cpu_ms_per_originate']:.2f} ms every event"
        f" (= {1000 / r['client_cpu_ms_per_originate']:,.0f} originates per client CPU-second)"
    )
    if "simpbx_cpu_ms_per_originate" in r:
        print(
            f"  simpbx CPU per originate:   {r['simpbx_cpu_ms_per_originate']:.2f} ms"
            f" (= {1000 / r['simpbx_cpu_ms_per_originate']:,.0f} originates per simpbx CPU-second)"
        )
    print(
        f"WebSocket end to end:         {r['ws_events_per_s']:>9,.0f} events/s "
        f"({r['ws_events']:,.0f} events: simpbx -> socket -> decode -> per-channel handler)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
