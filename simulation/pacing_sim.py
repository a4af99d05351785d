"""Discrete-event simulator of an outbound campaign, driving any pacer through the contract.

Pure and reproducible: no I/O, no clock, all randomness from one seeded
``random.Random``. The world it simulates:

- agents log in and out on a schedule (``agents``: ``(time, count)`` steps);
  when the count drops, ready agents leave first, busy ones after their
  wrap-up (an agent leaving can strand a call the pacer placed for it);
- each call placed is answered with the probability in force at that time
  (``answer_rate`` steps); answered calls ring a lognormal time, unanswered
  ones either fail fast (busy, congestion: uniform up to ``fail_fast_max``)
  or ring until ``ring_timeout``;
- an answered customer is connected to a ready agent at once, or waits; if no
  agent frees within ``connect_limit`` (2 s) of the answer the call is
  abandoned (an agent freeing within the limit still gets the customer);
- talk times are lognormal or exponential (mean ``talk_mean``), wrap-up is
  gamma (mean ``wrap_mean``);
- the pacer decides every ``decision_interval`` seconds and whenever an agent
  becomes ready, and learns only through ``on_dial`` / ``on_talk``.

After ``duration`` no new call is placed and the calls already out are
played to their end so every answered call is counted. Occupancy is talk
time over logged-in time within ``[0, duration]``.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from dialer.pacing import DialResult, Pacer, PacingSnapshot, TalkResult


@dataclass(frozen=True)
class CampaignConfig:
    """One simulated campaign; schedules are ``(time, value)`` steps starting at 0."""

    duration: float = 4 * 3600.0
    agents: tuple[tuple[float, int], ...] = ((0.0, 25),)
    answer_rate: tuple[tuple[float, float], ...] = ((0.0, 0.2),)
    ring_answer_median: float = 8.0
    ring_answer_sigma: float = 0.5
    ring_timeout: float = 25.0
    fail_fast_share: float = 0.35
    fail_fast_max: float = 4.0
    talk_mean: float = 100.0
    talk_distribution: str = "lognormal"
    talk_sigma: float = 0.8
    wrap_mean: float = 15.0
    wrap_shape: float = 4.0
    connect_limit: float = 2.0
    decision_interval: float = 1.0
    seed: int = 1

    def __post_init__(self) -> None:
        positive = (
            "duration", "ring_answer_median", "ring_timeout", "fail_fast_max", "talk_mean",
            "wrap_mean", "wrap_shape", "decision_interval",
        )  # fmt: skip
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.connect_limit < 0:
            raise ValueError(f"connect_limit must be >= 0, got {self.connect_limit!r}")
        if not 0.0 <= self.fail_fast_share <= 1.0:
            raise ValueError(f"fail_fast_share must be in [0, 1], got {self.fail_fast_share!r}")
        if self.talk_distribution not in ("lognormal", "exponential"):
            raise ValueError(
                f"talk_distribution must be 'lognormal' or 'exponential', "
                f"got {self.talk_distribution!r}"
            )
        _check_schedule("agents", self.agents, lambda v: v >= 0 and float(v).is_integer())
        _check_schedule("answer_rate", self.answer_rate, lambda v: 0.0 <= v <= 1.0)


def _check_schedule(
    name: str, steps: tuple[tuple[float, float], ...], valid: Callable[[float], bool]
) -> None:
    if not steps or steps[0][0] != 0.0:
        raise ValueError(f"{name} must be a non-empty schedule starting at time 0")
    times = [t for t, _ in steps]
    if times != sorted(times):
        raise ValueError(f"{name} times must be increasing, got {times}")
    for at, value in steps:
        if not valid(value):
            raise ValueError(f"{name} value {value!r} at time {at} is out of range")


@dataclass(frozen=True)
class SimResult:
    calls: int
    answered: int
    connected: int
    connected_after_wait: int
    abandoned: int
    failed: int
    talk_seconds: float
    logged_in_seconds: float
    decisions: int

    @property
    def occupancy(self) -> float:
        return self.talk_seconds / self.logged_in_seconds if self.logged_in_seconds else 0.0

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.answered if self.answered else 0.0


class _Ev(IntEnum):
    # Order at equal times: an agent freeing at the very deadline still gets
    # the customer, so AGENT_FREE sorts before DEADLINE.
    AGENT_FREE = 0
    TALK_END = 1
    DIAL_END = 2
    DEADLINE = 3
    SCHEDULE = 4
    TICK = 5


@dataclass
class _Agent:
    login: float
    state: str = "ready"
    since: float = 0.0
    talk: float = 0.0
    leaving: bool = False


class CampaignSimulator:
    """Runs one campaign against one pacer; ``run()`` returns the figures."""

    def __init__(self, config: CampaignConfig, pacer: Pacer) -> None:
        self.config = config
        self.pacer = pacer
        self.rng = random.Random(config.seed)
        self.now = 0.0
        self._events: list[tuple[float, int, int, object]] = []
        self._seq = 0
        self.agents: dict[int, _Agent] = {}
        self._next_agent = 0
        self.ready: list[int] = []
        self.in_flight: dict[int, float] = {}
        self.waiting: dict[int, tuple[float, float]] = {}
        self._next_call = 0
        self._answer_rate = config.answer_rate[0][1]
        self.calls = self.answered = self.connected = self.abandoned = self.failed = 0
        self.connected_after_wait = 0
        self.talk_seconds = 0.0
        self.logged_in_seconds = 0.0
        self.decisions = 0
        sigma = config.talk_sigma
        self._talk_mu = math.log(config.talk_mean) - sigma * sigma / 2.0
        self._ring_mu = math.log(config.ring_answer_median)

    # ------------------------------------------------------------ plumbing

    def _push(self, at: float, kind: _Ev, data: object = None) -> None:
        self._seq += 1
        heapq.heappush(self._events, (at, int(kind), self._seq, data))

    def run(self) -> SimResult:
        cfg = self.config
        for at, count in cfg.agents:
            self._push(at, _Ev.SCHEDULE, ("agents", count))
        for at, rate in cfg.answer_rate:
            self._push(at, _Ev.SCHEDULE, ("answer_rate", rate))
        self._push(0.0, _Ev.TICK)
        while self._events:
            at, kind, _, data = heapq.heappop(self._events)
            if at > cfg.duration and not self.in_flight and not self.waiting:
                break
            self.now = at
            self._dispatch(_Ev(kind), data)
        for agent in self.agents.values():
            self._close_agent(agent, cfg.duration)
        return SimResult(
            calls=self.calls,
            answered=self.answered,
            connected=self.connected,
            connected_after_wait=self.connected_after_wait,
            abandoned=self.abandoned,
            failed=self.failed,
            talk_seconds=self.talk_seconds,
            logged_in_seconds=self.logged_in_seconds,
            decisions=self.decisions,
        )

    def _dispatch(self, kind: _Ev, data: object) -> None:
        if kind is _Ev.TICK:
            if self.now <= self.config.duration:
                self._decide()
                self._push(self.now + self.config.decision_interval, _Ev.TICK)
        elif kind is _Ev.DIAL_END:
            assert isinstance(data, tuple)
            self._dial_end(*data)
        elif kind is _Ev.DEADLINE:
            assert isinstance(data, int)
            self._deadline(data)
        elif kind is _Ev.TALK_END:
            assert isinstance(data, int)
            self._talk_end(data)
        elif kind is _Ev.AGENT_FREE:
            assert isinstance(data, tuple)
            self._agent_free(*data)
        else:
            assert isinstance(data, tuple)
            self._schedule(*data)

    # ------------------------------------------------------------ agents

    def _schedule(self, what: str, value: float) -> None:
        if what == "answer_rate":
            self._answer_rate = value
            return
        present = [i for i, a in self.agents.items() if not a.leaving]
        change = int(value) - len(present)
        for _ in range(change):
            self.agents[self._next_agent] = _Agent(login=self.now, since=self.now)
            self.ready.append(self._next_agent)
            self._next_agent += 1
        if change < 0:
            self._log_out(-change)
        if change > 0 and self.now <= self.config.duration:
            self._decide()

    def _log_out(self, count: int) -> None:
        while count and self.ready:
            ident = self.ready.pop()
            self._close_agent(self.agents.pop(ident), self.now)
            count -= 1
        for state in ("wrapping", "talking"):
            for agent in self.agents.values():
                if count and agent.state == state and not agent.leaving:
                    agent.leaving = True
                    count -= 1

    def _close_agent(self, agent: _Agent, end: float) -> None:
        horizon = self.config.duration
        self.logged_in_seconds += max(0.0, min(end, horizon) - agent.login)
        if agent.state == "talking":
            self.talk_seconds += max(0.0, min(end, horizon) - agent.since)
        agent.state = "gone"

    def _connect(self, ident: int) -> None:
        agent = self.agents[ident]
        agent.state, agent.since = "talking", self.now
        cfg = self.config
        if cfg.talk_distribution == "exponential":
            agent.talk = self.rng.expovariate(1.0 / cfg.talk_mean)
        else:
            agent.talk = self.rng.lognormvariate(self._talk_mu, cfg.talk_sigma)
        self.connected += 1
        self._push(self.now + agent.talk, _Ev.TALK_END, ident)

    def _talk_end(self, ident: int) -> None:
        agent = self.agents[ident]
        horizon = self.config.duration
        self.talk_seconds += max(0.0, min(self.now, horizon) - min(agent.since, horizon))
        agent.state, agent.since = "wrapping", self.now
        cfg = self.config
        wrap = self.rng.gammavariate(cfg.wrap_shape, cfg.wrap_mean / cfg.wrap_shape)
        self._push(self.now + wrap, _Ev.AGENT_FREE, (ident, agent.talk, wrap))

    def _agent_free(self, ident: int, talk: float, wrap: float) -> None:
        agent = self.agents[ident]
        self.pacer.on_talk(TalkResult(at=self.now, talk_seconds=talk, wrap_seconds=wrap))
        if agent.leaving:
            self._close_agent(self.agents.pop(ident), self.now)
            return
        if self.waiting:
            call = next(iter(self.waiting))
            placed, answered_at = self.waiting.pop(call)
            self.connected_after_wait += 1
            self._report_connected(answered_at - placed)
            self._connect(ident)
        else:
            agent.state, agent.since = "ready", self.now
            self.ready.append(ident)
        if self.now <= self.config.duration:
            self._decide()

    # ------------------------------------------------------------ calls

    def _ring_time(self, answered: bool) -> float:
        cfg = self.config
        if answered:
            ring = self.rng.lognormvariate(self._ring_mu, cfg.ring_answer_sigma)
            return min(max(ring, 1.0), cfg.ring_timeout - 0.5)
        if self.rng.random() < cfg.fail_fast_share:
            return self.rng.uniform(0.2, cfg.fail_fast_max)
        return cfg.ring_timeout

    def _place(self, count: int) -> None:
        for _ in range(count):
            call = self._next_call
            self._next_call += 1
            answered = self.rng.random() < self._answer_rate
            ring = self._ring_time(answered)
            self.in_flight[call] = self.now
            self.calls += 1
            self._push(self.now + ring, _Ev.DIAL_END, (call, answered))

    def _dial_end(self, call: int, answered: bool) -> None:
        placed = self.in_flight.pop(call)
        ring = self.now - placed
        if not answered:
            self.failed += 1
            self.pacer.on_dial(DialResult(at=self.now, ring_seconds=ring, answered=False))
            return
        self.answered += 1
        if self.ready:
            self._report_connected(ring)
            self._connect(self.ready.pop())
        else:
            self.waiting[call] = (placed, self.now)
            self._push(self.now + self.config.connect_limit, _Ev.DEADLINE, call)

    def _report_connected(self, ring: float) -> None:
        self.pacer.on_dial(DialResult(at=self.now, ring_seconds=ring, answered=True))

    def _deadline(self, call: int) -> None:
        entry = self.waiting.pop(call, None)
        if entry is None:
            return
        placed, answered_at = entry
        self.abandoned += 1
        self.pacer.on_dial(
            DialResult(
                at=self.now, ring_seconds=answered_at - placed, answered=True, abandoned=True
            )
        )

    # ------------------------------------------------------------ decisions

    def snapshot(self) -> PacingSnapshot:
        now = self.now
        talking: list[float] = []
        wrapping: list[float] = []
        for agent in self.agents.values():
            if agent.state == "talking":
                talking.append(now - agent.since)
            elif agent.state == "wrapping":
                wrapping.append(now - agent.since)
        return PacingSnapshot(
            now=now,
            agents_ready=len(self.ready),
            agents_talking=tuple(talking),
            agents_wrapping=tuple(wrapping),
            dials_in_flight=tuple(now - placed for placed in self.in_flight.values()),
            customers_waiting=len(self.waiting),
        )

    def _decide(self) -> None:
        self.decisions += 1
        count = self.pacer.calls_to_place(self.snapshot())
        if not isinstance(count, int) or count < 0:
            raise ValueError(f"pacer returned {count!r}; calls_to_place must be an int >= 0")
        self._place(count)


def simulate(config: CampaignConfig, pacer: Pacer) -> SimResult:
    """Run one campaign with one pacer."""
    return CampaignSimulator(config, pacer).run()
