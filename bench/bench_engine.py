"""Benchmark of the pure compliance engine: decisions per second and latency.

Run: ``.venv/bin/python bench/bench_engine.py [--customers N] [--rounds R] [--seed S]``

Workload: N customers with realistic contact histories (0-30 events over the
past 13 months: attempts of every outcome across 5 products, a few refusals),
one request each at a random time of a working week (90% inside the default
calling windows, 10% at any hour), all times in UTC as the ledgers return them,
10% callbacks, 20% with a lead assignment date. Round 1
evaluates every customer once with cold caches (each number parsed for the
first time, as when a fresh lead list is dialled); the next rounds are warm (the
same numbers again, as when a dialer retries its leads). Prints throughput
and per-decision latency percentiles (perf_counter_ns around each call).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compliance.engine import evaluate
from compliance.model import (
    AttemptOutcome,
    CallRequest,
    ContactEvent,
    ContactKind,
    ListStatus,
)
from compliance.policy import parse_policy

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=SH)  # a Monday
PRODUCTS = ("broadband", "tv", "insurance", "card", "loan")
OUTCOMES = [
    (AttemptOutcome.NO_ANSWER, 40),
    (AttemptOutcome.ANSWERED, 25),
    (AttemptOutcome.BUSY, 10),
    (AttemptOutcome.MACHINE, 8),
    (AttemptOutcome.REJECTED, 5),
    (AttemptOutcome.CONGESTION, 3),
    (AttemptOutcome.FAILED, 5),
    (AttemptOutcome.CANCELLED, 4),
]

POLICY = parse_policy(
    """
version = "bench"
[caller_id]
pool = ["010-58001234", "010-58001235", "400-123-4567"]
[segments.owner]
days = ["mon", "tue", "wed", "thu", "fri"]
windows = ["10:00-11:30", "15:00-17:00"]
monthly_calls = 1
""",
    "bench.toml",
)


def make_workload(
    n: int, rng: random.Random
) -> list[tuple[CallRequest, list[ContactEvent], ListStatus]]:
    outcomes = [o for o, _ in OUTCOMES]
    weights = [w for _, w in OUTCOMES]
    work = []
    for i in range(n):
        number = f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"
        if i % 7 == 0:
            number = f"010-{rng.randrange(2, 9)}{rng.randrange(10**7):07d}"
        history: list[ContactEvent] = []
        for _ in range(rng.randint(0, 30)):
            at = (NOW - timedelta(minutes=rng.randrange(60 * 24 * 400))).astimezone(UTC)
            kind = ContactKind.REFUSAL if rng.random() < 0.05 else ContactKind.ATTEMPT
            outcome = rng.choices(outcomes, weights)[0]
            history.append(ContactEvent(at, kind, "camp", rng.choice(PRODUCTS), outcome, str(i)))
        history.sort(key=lambda e: e.at)
        day = NOW + timedelta(days=rng.randrange(6))  # Monday to Saturday
        if rng.random() < 0.9:  # a dialer works in calling hours; 10% at any time
            start, length = rng.choice([(9 * 60, 180), (14 * 60, 360)])
            at = day + timedelta(minutes=start - 9 * 60 + rng.randrange(length))
        else:
            at = day + timedelta(minutes=rng.randrange(-9 * 60, 15 * 60))
        at = at.astimezone(UTC)
        callback = rng.random() < 0.1
        request = CallRequest(
            number=number,
            campaign="camp",
            product=rng.choice(PRODUCTS),
            at=at,
            caller_id="4001234567" if callback else rng.choice(["58001234", "58001235"]),
            segment="owner" if rng.random() < 0.2 else "default",
            is_callback=callback,
            dialled_number="400-123-4567" if callback else None,
            assigned_at=NOW - timedelta(days=rng.randrange(330)) if rng.random() < 0.2 else None,
        )
        lists = ListStatus(blacklisted=rng.random() < 0.02)
        work.append((request, history, lists))
    return work


def run_round(
    work: list[tuple[CallRequest, list[ContactEvent], ListStatus]],
) -> tuple[float, list[int], Counter[str]]:
    latencies: list[int] = []
    outcomes: Counter[str] = Counter()
    clock = time.perf_counter_ns
    gc.disable()
    try:
        start = time.perf_counter()
        for request, history, lists in work:
            t0 = clock()
            decision = evaluate(POLICY, request, history, lists)
            latencies.append(clock() - t0)
            outcomes["allowed" if decision.allowed else "refused"] += 1
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed, latencies, outcomes


def throughput(
    work: list[tuple[CallRequest, list[ContactEvent], ListStatus]],
) -> tuple[float, float]:
    """Decisions per second without the per-call clock reads: (wall clock, CPU time).

    The CPU-time figure is the one to compare across runs on a shared machine:
    it leaves out the time other processes held the cores.
    """
    gc.disable()
    try:
        start, cpu = time.perf_counter(), time.process_time()
        for request, history, lists in work:
            evaluate(POLICY, request, history, lists)
        return (
            len(work) / (time.perf_counter() - start),
            len(work) / (time.process_time() - cpu),
        )
    finally:
        gc.enable()


def pct(values: list[int], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] / 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = make_workload(args.customers, rng)
    events = [len(h) for _, h, _ in work]
    print(
        f"workload: {len(work)} customers, history events mean "
        f"{statistics.mean(events):.1f} (0-{max(events)}), policy {POLICY.version}"
    )
    POLICY.numbers.cache_clear()
    elapsed, lat, outcomes = run_round(work)
    print(
        f"cold  (numbers parsed for the first time): {len(work) / elapsed:>9,.0f} decisions/s  "
        f"p50 {pct(lat, 0.5):6.1f} us  p99 {pct(lat, 0.99):6.1f} us  "
        f"[{outcomes['allowed']} allowed, {outcomes['refused']} refused]"
    )
    warm: list[int] = []
    rates: list[tuple[float, float]] = []
    for _ in range(args.rounds):
        elapsed, lat, _ = run_round(work)
        warm += lat
        rates.append(throughput(work))
    wall = statistics.median(r[0] for r in rates)
    cpu = statistics.median(r[1] for r in rates)
    print(
        f"warm  ({args.rounds} rounds, same leads again):  {wall:>9,.0f} decisions/s "
        f"({cpu:,.0f} per CPU-second)  p50 {pct(warm, 0.5):6.1f} us  p99 {pct(warm, 0.99):6.1f} us"
    )
    allowed = [w for w in work if evaluate(POLICY, *w).allowed]
    a_rates = [throughput(allowed * 4) for _ in range(args.rounds)]
    print(
        f"allowed decisions only ({len(allowed)} leads): "
        f"{statistics.median(r[0] for r in a_rates):>9,.0f} decisions/s "
        f"({statistics.median(r[1] for r in a_rates):,.0f} per CPU-second)"
    )
    by_size: dict[str, list[int]] = {"0-9": [], "10-19": [], "20-30": []}
    for (_, history, _), ns in zip(work * args.rounds, warm, strict=True):
        by_size["0-9" if len(history) < 10 else "10-19" if len(history) < 20 else "20-30"].append(
            ns
        )
    for label, values in by_size.items():
        print(
            f"  history {label:>5} events: p50 {pct(values, 0.5):6.1f} us  "
            f"p99 {pct(values, 0.99):6.1f} us"
        )


if __name__ == "__main__":
    main()
