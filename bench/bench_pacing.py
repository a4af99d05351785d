"""Pacing benchmark: progressive vs best fixed ratio (hindsight) vs predictive.

Run on demand (not a test):

    .venv/bin/python bench/bench_pacing.py            # full: 3 h runs, 3 seeds
    .venv/bin/python bench/bench_pacing.py --quick    # 1 h runs, 1 seed

For every campaign (team size x answer rate, plus an answer rate and a team
that change mid-run) and seed, it simulates progressive, searches the fixed
``ratio`` with the highest occupancy whose abandon rate stays at or under the
target (chosen with hindsight, per seed), and runs predictive. It prints a
markdown table: occupancies are means over seeds, abandon rates the worst
seed. Predictive passes a case when every seed is at or under the target and
its mean occupancy is at least the best ratio's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

from dialer.pacing import DialResult, Pacer, PacingSnapshot, TalkResult, make_pacer
from simulation.pacing_sim import CampaignConfig, SimResult, simulate

TARGET = 0.03


@dataclass(frozen=True)
class Case:
    name: str
    agents: tuple[tuple[float, int], ...]
    answer_rate: tuple[tuple[float, float], ...]


def cases(hours: float) -> list[Case]:
    end = hours * 3600.0
    found: list[Case] = []
    for label, team in (("small", 6), ("medium", 25), ("large", 80)):
        for rate in (0.10, 0.20, 0.35):
            found.append(Case(f"{label} {rate:.0%}", ((0.0, team),), ((0.0, rate),)))
        found.append(Case(f"{label} 30%->12%", ((0.0, team),), ((0.0, 0.30), (end / 2, 0.12))))
        fewer, more = max(1, round(team * 0.6)), round(team * 1.2)
        found.append(
            Case(
                f"{label} agents {team}->{fewer}->{more}",
                ((0.0, team), (end / 3, fewer), (2 * end / 3, more)),
                ((0.0, 0.20),),
            )
        )
    return found


def run_one(config: CampaignConfig, name: str, params: dict[str, float]) -> SimResult:
    return simulate(config, make_pacer(name, **params))


class TimedPacer:
    """Measures the CPU time of each ``calls_to_place`` (the thread's: a busy machine adds none)."""

    def __init__(self, inner: Pacer) -> None:
        self.inner = inner
        self.calls = 0
        self.seconds = 0.0
        self.worst = 0.0
        self.largest_team = 0

    def calls_to_place(self, snapshot: PacingSnapshot) -> int:
        started = time.thread_time()
        n = self.inner.calls_to_place(snapshot)
        spent = time.thread_time() - started
        self.calls += 1
        self.seconds += spent
        self.worst = max(self.worst, spent)
        self.largest_team = max(self.largest_team, snapshot.agents_logged_in)
        return n

    def on_dial(self, result: DialResult) -> None:
        self.inner.on_dial(result)

    def on_talk(self, result: TalkResult) -> None:
        self.inner.on_talk(result)


def best_ratio(config: CampaignConfig) -> tuple[float, SimResult]:
    """Highest-occupancy fixed ratio with abandon <= target: bracket, then bisect."""
    tried: dict[float, SimResult] = {}

    def trial(lines: float) -> SimResult:
        if lines not in tried:
            tried[lines] = run_one(config, "ratio", {"lines_per_agent": lines})
        return tried[lines]

    low, high = 1.0, 1.0
    while trial(high).abandon_rate <= TARGET and high < 60.0:
        low, high = high, high * 1.3
    for _ in range(5):
        middle = round((low + high) / 2.0, 4)
        if trial(middle).abandon_rate <= TARGET:
            low = middle
        else:
            high = middle
    feasible = [(r.occupancy, lines) for lines, r in tried.items() if r.abandon_rate <= TARGET]
    _, lines = max(feasible) if feasible else (0.0, 1.0)
    return lines, trial(lines)


@dataclass(frozen=True)
class Row:
    case: Case
    seed: int
    progressive: SimResult
    ratio_lines: float
    ratio: SimResult
    predictive: SimResult
    predictive_seconds: float
    decision_seconds: float
    worst_decision: float


def evaluate(job: tuple[Case, int, float]) -> Row:
    case, seed, hours = job
    config = CampaignConfig(
        duration=hours * 3600.0, agents=case.agents, answer_rate=case.answer_rate, seed=seed
    )
    progressive = run_one(config, "progressive", {})
    lines, ratio = best_ratio(config)
    started = time.process_time()
    timed = TimedPacer(make_pacer("predictive", target_abandon=TARGET))
    predictive = simulate(replace(config), timed)
    return Row(
        case, seed, progressive, lines, ratio, predictive, time.process_time() - started,
        timed.seconds / max(timed.calls, 1), timed.worst,
    )  # fmt: skip


def table(rows: list[Row], seeds: int) -> Iterator[str]:
    yield (
        "| campaign | progressive occ. | best ratio (lines/agent) | ratio occ. | ratio abandon "
        "| predictive occ. | predictive abandon (worst seed) | pass |"
    )
    yield "| --- | --- | --- | --- | --- | --- | --- | --- |"
    by_case: dict[str, list[Row]] = {}
    for row in rows:
        by_case.setdefault(row.case.name, []).append(row)
    for name, group in by_case.items():
        prog = statistics.mean(r.progressive.occupancy for r in group)
        ratio = statistics.mean(r.ratio.occupancy for r in group)
        ratio_ab = max(r.ratio.abandon_rate for r in group)
        lines = "/".join(f"{r.ratio_lines:.2f}" for r in group)
        pred = statistics.mean(r.predictive.occupancy for r in group)
        pred_ab = max(r.predictive.abandon_rate for r in group)
        ok = pred_ab <= TARGET and pred >= ratio
        yield (
            f"| {name} | {prog:.3f} | {lines} | {ratio:.3f} | {ratio_ab:.2%} | {pred:.3f} "
            f"| {pred_ab:.2%} | {'yes' if ok else 'NO'} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 h runs, 1 seed")
    parser.add_argument("--hours", type=float, help="simulated hours per run")
    parser.add_argument("--seeds", type=int, help="seeds per campaign")
    parser.add_argument("--first-seed", type=int, default=1, help="first seed (default 1)")
    parser.add_argument("--only", help="run only the campaigns whose name contains this text")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    args = parser.parse_args(argv)
    hours = args.hours or (1.0 if args.quick else 3.0)
    seeds = args.seeds or (1 if args.quick else 3)
    chosen = [case for case in cases(hours) if not args.only or args.only in case.name]
    if not chosen:
        parser.error(f"--only {args.only!r} matches no campaign")
    first = args.first_seed
    jobs = [(case, seed, hours) for case in chosen for seed in range(first, first + seeds)]
    started = time.monotonic()
    # Largest teams first so the two workers finish together.
    jobs.sort(key=lambda job: -max(count for _, count in job[0].agents))
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(evaluate, jobs))
    order = {case.name: i for i, case in enumerate(chosen)}
    rows.sort(key=lambda row: (order[row.case.name], row.seed))
    print(
        f"pacing benchmark: {hours:g} h simulated per run, seeds {first}-{first + seeds - 1}, "
        f"target {TARGET:.0%},"
    )
    print("talk lognormal mean 100 s, wrap-up mean 15 s, ring timeout 25 s, connect limit 2 s\n")
    for line in table(rows, seeds):
        print(line)
    passed = sum(1 for line in table(rows, seeds) if line.endswith("| yes |"))
    cpu = sum(row.predictive_seconds for row in rows)
    simulated = hours * len(rows)
    print(
        f"\n{passed}/{len(order)} campaigns pass; predictive simulations CPU {cpu:.1f} s for "
        f"{simulated:g} simulated hours; wall time {time.monotonic() - started:.0f} s"
    )
    for label in ("small", "medium", "large"):
        group = [row for row in rows if row.case.name.startswith(label)]
        if group:
            mean = statistics.mean(row.decision_seconds for row in group)
            worst = max(row.worst_decision for row in group)
            print(
                f"predictive calls_to_place, {label} teams: mean {1e6 * mean:.0f} us, "
                f"worst {1e3 * worst:.2f} ms (CPU time of the deciding thread)"
            )
    return 0 if passed == len(order) else 1


if __name__ == "__main__":
    sys.exit(main())
