"""Pacing: how many customer calls to originate now (pure; no I/O, no clock, no randomness).

The interface is fixed by ``pacing-contract.md``: ``make_pacer(name, **params)``
returns an object with ``calls_to_place(snapshot) -> int``, ``on_dial(result)``
and ``on_talk(result)``. Three pacers:

``progressive``
    one call per ready agent not already covered by a call in flight or a
    waiting customer: it never abandons unless agents leave.
``ratio``
    keeps ``lines_per_agent x ready agents`` calls in flight.
``predictive``
    model based. From the results it is given it learns the answer
    probability, the ring-time distributions of answered and unanswered
    dials and the talk and wrap-up time distributions, all with exponential
    forgetting so it follows changes within minutes (a rise of the answer
    rate, the dangerous direction, is followed within about a hundred dials).
    At each decision it predicts, at several points of the answered-ring-time
    distribution, how many customers will have answered (waiting ones, dials
    in flight given how long each has rung, calls placed meanwhile) against
    how many agents will be free within the connect limit (ready ones,
    wrapping and talking ones given how long each has been at it), and adds
    calls while the next call's probability of being answered with no agent
    free stays under a threshold. A PI controller sets that threshold from
    the measured slack (abandons still allowed under ``target_abandon`` over
    the policy window, 30 days, also watched over a sliding day), keeping a
    reserve sized to the random swings so the rate over the whole window ends
    at or under the target. The controller is deliberately slow (small
    proportional gain, half-hour integral): agents are busier under a steady
    threshold than under one swinging around the same mean abandon rate, and
    one abandon must not halve the dialling. While the measured rate is over
    the target by more than the next quarter of an hour's answers repay (a
    young campaign's first abandon is not worth hours of progressive
    dialling), it dials progressively. Until a few answers have been seen it
    warms up: progressive, plus the calls that a cautious upper bound of the
    answer rate measured on settled dials says the ready agents can absorb
    (a small team at a 10 % answer rate otherwise idles most of its first
    ten minutes).

All times are seconds in the caller's clock (``PacingSnapshot.now`` and
``DialResult.at`` / ``TalkResult.at`` share it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from dialer.pacing_estimators import (
    EventRate,
    ForgettingHistogram,
    ForgettingRate,
    RecentRate,
    WindowCounter,
    accumulate,
    add_bernoulli,
    binomial_surplus,
    normal_upper,
    poisson,
)

CONNECT_LIMIT_SECONDS = 2.0
DEFAULT_TARGET_ABANDON = 0.03
DEFAULT_WINDOW_SECONDS = 30 * 86400.0
DEFAULT_DAY_SECONDS = 86400.0


class PacerName(StrEnum):
    PROGRESSIVE = "progressive"
    RATIO = "ratio"
    PREDICTIVE = "predictive"


def _as_tuple(name: str, values: Sequence[float]) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a sequence of seconds (numbers): {exc}") from exc


@dataclass(frozen=True)
class PacingSnapshot:
    """What the pacer sees at a decision (elapsed times in seconds)."""

    now: float
    agents_ready: int
    agents_talking: tuple[float, ...] = ()
    agents_wrapping: tuple[float, ...] = ()
    dials_in_flight: tuple[float, ...] = ()
    customers_waiting: int = 0

    def __post_init__(self) -> None:
        if self.agents_ready < 0:
            raise ValueError(f"agents_ready must be >= 0, got {self.agents_ready}")
        if self.customers_waiting < 0:
            raise ValueError(f"customers_waiting must be >= 0, got {self.customers_waiting}")
        # Harnesses may hand lists; keep the snapshot hashable and immutable.
        for name in ("agents_talking", "agents_wrapping", "dials_in_flight"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, _as_tuple(name, value))

    @property
    def agents_logged_in(self) -> int:
        return self.agents_ready + len(self.agents_talking) + len(self.agents_wrapping)


@dataclass(frozen=True)
class DialResult:
    """The end of one call's dial phase; ``abandoned`` implies ``answered``."""

    at: float
    ring_seconds: float
    answered: bool
    abandoned: bool = False

    def __post_init__(self) -> None:
        if self.abandoned and not self.answered:
            raise ValueError("abandoned=True requires answered=True (an abandon is an answer)")
        if self.ring_seconds < 0:
            raise ValueError(f"ring_seconds must be >= 0, got {self.ring_seconds}")


@dataclass(frozen=True)
class TalkResult:
    """An agent finished a call and its wrap-up and is ready again."""

    at: float
    talk_seconds: float
    wrap_seconds: float

    def __post_init__(self) -> None:
        if self.talk_seconds < 0:
            raise ValueError(f"talk_seconds must be >= 0, got {self.talk_seconds}")
        if self.wrap_seconds < 0:
            raise ValueError(f"wrap_seconds must be >= 0, got {self.wrap_seconds}")


class Pacer(Protocol):
    def calls_to_place(self, snapshot: PacingSnapshot) -> int: ...

    def on_dial(self, result: DialResult) -> None: ...

    def on_talk(self, result: TalkResult) -> None: ...


def progressive_calls(snapshot: PacingSnapshot) -> int:
    """One call per ready agent not covered by a dial in flight or a waiting customer."""
    covered = len(snapshot.dials_in_flight) + snapshot.customers_waiting
    return max(0, snapshot.agents_ready - covered)


class ProgressivePacer:
    """One call per free agent: never abandons unless agents leave."""

    def calls_to_place(self, snapshot: PacingSnapshot) -> int:
        if snapshot.agents_logged_in == 0:
            return 0
        return progressive_calls(snapshot)

    def on_dial(self, result: DialResult) -> None:
        """Progressive pacing learns nothing."""

    def on_talk(self, result: TalkResult) -> None:
        """Progressive pacing learns nothing."""


class RatioPacer:
    """Keeps ``lines_per_agent x ready agents`` calls in flight (fixed dial level)."""

    def __init__(self, lines_per_agent: float) -> None:
        self.lines_per_agent = lines_per_agent

    def calls_to_place(self, snapshot: PacingSnapshot) -> int:
        if snapshot.agents_logged_in == 0:
            return 0
        wanted = math.ceil(self.lines_per_agent * snapshot.agents_ready - 1e-9)
        return max(0, wanted - len(snapshot.dials_in_flight))

    def on_dial(self, result: DialResult) -> None:
        """A fixed ratio learns nothing."""

    def on_talk(self, result: TalkResult) -> None:
        """A fixed ratio learns nothing."""


@dataclass
class _ControlState:
    """PI controller state: log threshold = integral + gain x (slack - reserve)."""

    integral: float
    last_now: float | None = None


class PredictivePacer:
    """Model-based predictive pacing under an abandon-rate target (see module docstring)."""

    QUANTILES = 8
    WRAP_POINTS = 3
    RING_BIN = 0.5
    RING_BINS = 240
    TALK_BIN = 1.0
    TALK_BINS = 3600
    WRAP_BINS = 900
    REFRESH_SECONDS = 15.0
    AGENT_REFRESH_SECONDS = 60.0
    MIN_ANSWERED_SAMPLES = 7
    WARMUP_Z = 1.64
    WARMUP_SETTLE = 30.0
    WARMUP_MIN_DIALS = 10
    WARMUP_MEMORY = 5000
    WARMUP_SURPLUS = 0.25
    RESERVE_SPREAD = 2.5
    MIN_TALK_SAMPLES = 8
    RATE_HALF_LIFE = 60.0
    EXACT_VARIANCE = 1.5
    SMALL_TEAM = 12
    # Only half the chance that a talking agent frees in time is counted:
    # calls placed on that weak evidence keep few agents busier but abandon
    # as often as any (measured on the benchmark: better at every team size
    # than counting it all or none of it).
    TALK_CREDIT = 0.5

    def __init__(
        self,
        target_abandon: float = DEFAULT_TARGET_ABANDON,
        max_lines_per_agent: float | None = None,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        day_seconds: float = DEFAULT_DAY_SECONDS,
        reserve: float = 0.5,
        gain: float = 0.3,
        integral_seconds: float = 1800.0,
        borrow_seconds: float = 900.0,
    ) -> None:
        self.borrow_seconds = borrow_seconds
        self.target_abandon = target_abandon
        self.max_lines_per_agent = max_lines_per_agent
        self.reserve = reserve
        self.gain = gain
        self.integral_seconds = integral_seconds
        self.window = WindowCounter(window_seconds)
        self.day = WindowCounter(day_seconds)
        self.answer_slow = ForgettingRate(half_life=400.0, prior=0.3, prior_weight=4.0)
        self.answer_fast = ForgettingRate(half_life=80.0, prior=0.3, prior_weight=2.0)
        self.ring_answered = ForgettingHistogram(self.RING_BIN, self.RING_BINS, 300.0)
        self.ring_failed = ForgettingHistogram(self.RING_BIN, self.RING_BINS, 300.0)
        self.talk = ForgettingHistogram(self.TALK_BIN, self.TALK_BINS, 200.0)
        self.wrap = ForgettingHistogram(self.TALK_BIN, self.WRAP_BINS, 200.0)
        self.control = _ControlState(integral=math.log(0.03))
        self._answer_flow = EventRate(half_life=900.0)
        self._recent = RecentRate(half_life=900.0)
        self._last_refresh = -math.inf
        self._last_agent_refresh = -math.inf
        self._dirty = True
        self._taus: list[float] = []
        self._wrap_points: list[float] = []
        self._talk_rows: dict[int, list[float]] = {}
        self._wrap_rows: dict[int, list[float]] = {}
        self._dial_rows: dict[int, list[float]] = {}
        self._p_answer = 0.3
        self._dial_rate = 0.0
        self._min_talk_samples = self.MIN_TALK_SAMPLES
        self._future_share: list[float] = []
        # (placed at, answered) of every finished dial until the model is ready
        self._warmup_dials: list[tuple[float, bool]] | None = []

    # ------------------------------------------------------------ learning

    def on_dial(self, result: DialResult) -> None:
        if self._warmup_dials is not None:
            if len(self._warmup_dials) < self.WARMUP_MEMORY:
                self._warmup_dials.append((result.at - result.ring_seconds, result.answered))
        self.answer_slow.add(result.answered)
        self.answer_fast.add(result.answered)
        if result.answered:
            self.ring_answered.add(result.ring_seconds)
            self.window.add(result.at, result.abandoned)
            self.day.add(result.at, result.abandoned)
            self._answer_flow.add(result.at)
            self._recent.add(result.at, result.abandoned)
        else:
            self.ring_failed.add(result.ring_seconds)
        self._dirty = True

    def on_talk(self, result: TalkResult) -> None:
        self.talk.add(result.talk_seconds)
        self.wrap.add(result.wrap_seconds)
        self._dirty = True

    # ------------------------------------------------------------ decision

    def calls_to_place(self, snapshot: PacingSnapshot) -> int:
        if snapshot.agents_logged_in == 0:
            return 0
        progressive = progressive_calls(snapshot)
        # Windows are measured on the results' own clock (DialResult.at) and
        # expire as results arrive; snapshot.now only paces the controller.
        last = self.control.last_now
        dt = 0.0 if last is None else max(0.0, snapshot.now - last)
        self.control.last_now = snapshot.now
        if dt > 0.0:
            self._dial_rate *= 0.5 ** (dt / self.RATE_HALF_LIFE)
        slack = min(self.window.slack(self.target_abandon), self.day.slack(self.target_abandon))
        if slack < -self._borrow():
            self._count_placed(progressive)
            return progressive
        if not self._model_ready(snapshot.agents_logged_in):
            n = max(progressive, self._warmup_calls(snapshot))
            self._count_placed(n)
            return n
        self._warmup_dials = None
        # The first talks to end are the short ones: trust the talk-time
        # distribution only once about two calls per agent have ended.
        self._min_talk_samples = max(self.MIN_TALK_SAMPLES, 2 * snapshot.agents_logged_in)
        self._maybe_refresh(snapshot.now)
        threshold = self._threshold(slack, dt)
        n = self._predictive_calls(snapshot, threshold, progressive)
        if self.max_lines_per_agent is not None:
            cap = math.floor(self.max_lines_per_agent * snapshot.agents_logged_in + 1e-9)
            n = min(n, max(0, cap - len(snapshot.dials_in_flight)))
            n = max(n, min(progressive, max(0, cap - len(snapshot.dials_in_flight))))
        n = max(0, n)
        self._count_placed(n)
        return n

    def _borrow(self) -> float:
        """Abandons the controller may be over the target by before dialling progressively.

        The whole run's rate is what counts: one early abandon of a young
        campaign is repaid by the answers of the next minutes, so it must not
        drop a small team to progressive dialling (hours of idle agents at a
        low answer rate).
        """
        flow = self.target_abandon * self._answer_flow.rate * self.borrow_seconds
        return min(flow, 0.5 * self.target_abandon * self.window.answered)

    def _warmup_calls(self, snapshot: PacingSnapshot) -> int:
        """Before the distributions are learnt: a cautious ratio from the answers seen so far.

        The answer rate is measured only on dials placed at least
        ``WARMUP_SETTLE`` seconds ago (finished or still ringing): the first
        results to come back are the fast failures, and counting them alone
        would make a high answer rate look low. Every dial in flight and every
        new one is then taken to answer with an upper confidence bound of that
        rate, all at the same moment, with only the ready agents to take them;
        calls are added while the expected surplus of answers over ready
        agents stays under ``WARMUP_SURPLUS`` x the target per answer. With too
        few settled dials this is progressive dialling.
        """
        dials = self._warmup_dials
        if not dials:
            return 0
        settled = snapshot.now - self.WARMUP_SETTLE
        seen = sum(1 for e in snapshot.dials_in_flight if e >= self.WARMUP_SETTLE)
        answered = 0
        for placed_at, hit in dials:
            if placed_at <= settled:
                seen += 1
                answered += hit
        if seen < self.WARMUP_MIN_DIALS:
            return 0
        capacity = snapshot.agents_ready - snapshot.customers_waiting
        if capacity <= 0:
            return 0
        share = answered / seen
        z2 = self.WARMUP_Z**2
        centre = share + z2 / (2.0 * seen)
        spread = self.WARMUP_Z * math.sqrt(share * (1.0 - share) / seen + z2 / (4.0 * seen * seen))
        p_high = min(1.0, (centre + spread) / (1.0 + z2 / seen))
        if p_high >= 1.0:
            return 0
        allowed = self.WARMUP_SURPLUS * self.target_abandon
        in_flight = len(snapshot.dials_in_flight)

        def within(total: int) -> bool:
            return binomial_surplus(total, p_high, capacity) <= allowed * total * p_high

        # The surplus share grows with the number of calls: bisect for the largest total.
        low, high = in_flight, in_flight + 4 * snapshot.agents_logged_in + 20
        if not within(low):
            return 0
        while low < high:
            middle = (low + high + 1) // 2
            if within(middle):
                low = middle
            else:
                high = middle - 1
        return low - in_flight

    def _count_placed(self, n: int) -> None:
        self._dial_rate += n * math.log(2.0) / self.RATE_HALF_LIFE

    def _model_ready(self, agents: int) -> bool:
        # A bigger team overdials more calls at once on the first estimates:
        # let it see more answers first (a small one would wait too long).
        needed = max(self.MIN_ANSWERED_SAMPLES, min(agents, 3 * self.MIN_ANSWERED_SAMPLES))
        return self.ring_answered.samples >= needed

    def _threshold(self, slack: float, dt: float) -> float:
        """PI control of the per-call abandon threshold on the measured slack.

        The slack is how many more abandons the policy window allows before its
        rate exceeds the target. The controller keeps it near a reserve sized
        to the random swings expected over a quarter of an hour, so the rate
        over the whole window ends at or under the target despite bursts.
        """
        c = self.control
        expected = self.target_abandon * self._answer_flow.rate * 900.0
        scale = max(1.0, math.sqrt(expected))
        # A young campaign has earned little slack: ask for a reserve that
        # grows with it instead of starting far below it.
        reserve = min(
            self.reserve + self.RESERVE_SPREAD * scale,
            0.5 * self.target_abandon * self.window.answered,
        )
        error = max(-3.0, min(1.0, (slack - reserve) / scale))
        # Below the reserve only because the campaign is young (few answers
        # yet, no excess abandons) is no reason to lower the threshold.
        recent = self._recent
        if error > 0.0:
            # Slack above the reserve is there to be used: climb at the
            # integral's pace whatever the team (a small team waiting for its
            # slack to regrow kept thresholds low for hours with slack unused).
            c.integral += error * dt / self.integral_seconds
        elif recent.abandoned > self.target_abandon * recent.answered:
            # Down no faster than the slack regrows: a small team earns one
            # abandon in a quarter of an hour, and one burst must not freeze
            # it for hours.
            regrow = 3.0 / max(self.target_abandon * self._answer_flow.rate, 1e-6)
            c.integral += error * dt / max(self.integral_seconds, regrow)
        c.integral = max(math.log(0.002), min(math.log(0.9), c.integral))
        return min(0.95, math.exp(c.integral + self.gain * error))

    def _answer_probability(self) -> float:
        """The slow estimate, unless the fast one shows a significant rise.

        A rise is what hurts (more answers than planned: abandons), so it is
        followed within a hundred dials; a fall only costs some idle time
        until the slow estimate catches up.
        """
        slow, fast = self.answer_slow.value, self.answer_fast.value
        spread = math.sqrt(max(slow * (1.0 - slow), 1e-4) / max(self.answer_fast.total, 1.0))
        estimate = fast if fast > slow + 2.0 * spread else slow
        # Planning for more answers than expected is the safe side: add one
        # standard error of all dials seen, which matters only early on.
        seen = max(float(self.answer_slow.samples), 1.0)
        error = math.sqrt(max(estimate * (1.0 - estimate), 1e-4) / seen)
        return min(1.0, estimate + error)

    def _maybe_refresh(self, now: float) -> None:
        """Re-read the learnt distributions: the answer side often, agents' less."""
        due = self._dirty and now - self._last_refresh >= self.REFRESH_SECONDS
        if self._taus and not due:
            return
        full = not self._taus or now - self._last_agent_refresh >= self.AGENT_REFRESH_SECONDS
        self._last_refresh = now
        self._dirty = False
        self.ring_answered.refresh()
        self.ring_failed.refresh()
        m = self.QUANTILES
        self._p_answer = self._answer_probability()
        self._dial_rows.clear()
        if not full:
            return
        self._last_agent_refresh = now
        self.talk.refresh()
        self.wrap.refresh()
        self._taus = [self.ring_answered.quantile((j + 0.5) / m) for j in range(m)]
        # E[(tau - R)+] for an answered ring time R: how long, on average,
        # a dial placed in the next tau seconds has been answered by tau.
        self._future_share = [
            sum(max(0.0, tau - other) for other in self._taus) / m for tau in self._taus
        ]
        w = self.WRAP_POINTS
        if self.wrap.samples:
            self._wrap_points = [self.wrap.quantile((j + 0.5) / w) for j in range(w)]
        else:
            self._wrap_points = []
        self._talk_rows.clear()
        self._wrap_rows.clear()

    @staticmethod
    def _talk_key(elapsed: float) -> int:
        # The chance to end soon changes slowly with a long call's age.
        return int(elapsed * 0.5) * 2

    def _talk_row(self, elapsed: float) -> list[float]:
        key = self._talk_key(elapsed)
        row = self._talk_rows.get(key)
        if row is not None:
            return row
        talk = self.talk
        base = talk.cdf(float(key))
        survive = 1.0 - base
        if talk.samples < self._min_talk_samples or survive <= 1e-9 or not self._wrap_points:
            row = [0.0] * (2 * self.QUANTILES)
        else:
            weight = 1.0 / len(self._wrap_points)
            row = []
            for tau in self._taus:
                horizon = key + tau + CONNECT_LIMIT_SECONDS
                total = 0.0
                for w in self._wrap_points:
                    gained = talk.cdf(horizon - w) - base
                    if gained > 0.0:
                        total += gained
                row.append(min(1.0, total * weight * self.TALK_CREDIT / survive))
            row += [x * (1.0 - x) for x in row]
        self._talk_rows[key] = row
        return row

    def _wrap_row(self, elapsed: float) -> list[float]:
        key = int(elapsed)
        row = self._wrap_rows.get(key)
        if row is not None:
            return row
        wrap = self.wrap
        base = wrap.cdf(float(key))
        survive = 1.0 - base
        if wrap.samples < self.MIN_TALK_SAMPLES or survive <= 1e-9:
            row = [0.0] * (2 * self.QUANTILES)
        else:
            row = [
                min(1.0, max(0.0, wrap.cdf(key + tau + CONNECT_LIMIT_SECONDS) - base) / survive)
                for tau in self._taus
            ]
            row += [x * (1.0 - x) for x in row]
        self._wrap_rows[key] = row
        return row

    # Probability that a dial in flight for ``elapsed`` seconds is answered
    # within tau_j from now.
    def _dial_row(self, elapsed: float) -> list[float]:
        key = int(elapsed / self.RING_BIN)
        row = self._dial_rows.get(key)
        if row is not None:
            return row
        e = key * self.RING_BIN
        p = self._p_answer
        ans, fail = self.ring_answered, self.ring_failed
        s_ans = 1.0 - ans.cdf(e)
        s_fail = 1.0 - fail.cdf(e) if fail.samples else 1.0
        alive = p * s_ans + (1.0 - p) * s_fail
        m = self.QUANTILES
        if alive <= 1e-9:
            # Older than anything seen: unknown, so count it as a fresh dial.
            row = [p * (j + 0.5) / m for j in range(m)]
        else:
            row = [
                min(1.0, max(0.0, p * (s_ans - (1.0 - ans.cdf(e + tau))) / alive))
                for tau in self._taus
            ]
        row += [x * (1.0 - x) for x in row]
        self._dial_rows[key] = row
        return row

    def _supply_demand(self, snapshot: PacingSnapshot) -> tuple[list[float], list[float]]:
        """Mean and variance of (customers answered - agents free) by each tau_j."""
        m = self.QUANTILES
        zeros = [0.0] * (2 * m)
        # Rows are cached per (rounded) age and looked up inline in _rows:
        # this is the hot path of the whole pacer.
        free_rows, dial_rows = self._rows(snapshot)
        free = list(map(sum, zip(*free_rows, strict=True))) if free_rows else zeros
        dial = list(map(sum, zip(*dial_rows, strict=True))) if dial_rows else zeros
        waiting = float(snapshot.customers_waiting - snapshot.agents_ready)
        future = self._dial_rate * self._p_answer
        mean = [waiting + future * self._future_share[j] + dial[j] - free[j] for j in range(m)]
        var = [future * self._future_share[j] + dial[m + j] + free[m + j] for j in range(m)]
        return mean, var

    def _rows(self, snapshot: PacingSnapshot) -> tuple[list[list[float]], list[list[float]]]:
        talk_rows, talk_key = self._talk_rows, self._talk_key
        free_rows = [
            talk_rows.get(talk_key(e)) or self._talk_row(e) for e in snapshot.agents_talking
        ]
        wrap_rows = self._wrap_rows
        free_rows += [wrap_rows.get(int(e)) or self._wrap_row(e) for e in snapshot.agents_wrapping]
        dial_rows_cache, scale = self._dial_rows, 1.0 / self.RING_BIN
        dial_rows = [
            dial_rows_cache.get(int(e * scale)) or self._dial_row(e)
            for e in snapshot.dials_in_flight
        ]
        return free_rows, dial_rows

    def _small_team_calls(self, snapshot: PacingSnapshot, threshold: float, minimum: int) -> int:
        """Exact counts for a small team, where the normal approximation is too rough.

        For each answer-time point tau_j the number of customers answered by
        then (dials in flight, calls placed meanwhile, the candidate's fellow
        new calls) and of agents free within the connect limit are
        Poisson-binomial; the candidate abandons when the answers reach the
        free agents.
        """
        free_rows, dial_rows = self._rows(snapshot)
        m = self.QUANTILES
        p = self._p_answer
        future = self._dial_rate * p
        base = snapshot.customers_waiting - snapshot.agents_ready
        answers: list[list[float]] = []
        free_cdf: list[list[float]] = []
        for j in range(m):
            pmf = poisson(future * self._future_share[j])
            for row in dial_rows:
                pmf = add_bernoulli(pmf, row[j])
            answers.append(pmf)
            frees = [1.0]
            for row in free_rows:
                frees = add_bernoulli(frees, row[j])
            free_cdf.append(list(accumulate(frees)))
        limit = max(minimum, 4 * snapshot.agents_logged_in + 20)
        placed = 0
        while placed < limit:
            q = 0.0
            for j in range(m):
                cdf, last = free_cdf[j], len(free_cdf[j]) - 1
                for a, w in enumerate(answers[j]):
                    t = base + a
                    if t >= 0 and w > 1e-12:
                        q += w * cdf[min(t, last)]
            if q / m > threshold and placed >= minimum:
                break
            placed += 1
            for j in range(m):
                answers[j] = add_bernoulli(answers[j], p * (j + 0.5) / m)
        return placed

    def _predictive_calls(self, snapshot: PacingSnapshot, threshold: float, minimum: int) -> int:
        """Add calls (at least ``minimum``) while the next one's abandon risk is under threshold."""
        small = snapshot.agents_logged_in <= self.SMALL_TEAM
        if small and len(snapshot.dials_in_flight) <= 5 * self.SMALL_TEAM:
            return self._small_team_calls(snapshot, threshold, minimum)
        mean, var = self._supply_demand(snapshot)
        m = self.QUANTILES
        p = self._p_answer
        shares = [p * (j + 0.5) / m for j in range(m)]
        limit = max(minimum, 4 * snapshot.agents_logged_in + 20)
        exact = max(var) < self.EXACT_VARIANCE
        # pmf[j][i]: probability that i of the calls already added answer
        # before the candidate would (answering at its quantile tau_j).
        pmf = [[1.0] for _ in range(m)]
        placed = 0
        while placed < limit:
            if exact:
                q = sum(self._exact_risk(mean[j], var[j], pmf[j]) for j in range(m)) / m
            else:
                q = (
                    sum(
                        normal_upper(
                            (mean[j] + placed * s + 0.5)
                            / math.sqrt(var[j] + placed * s * (1.0 - s) + 0.05)
                        )
                        for j, s in enumerate(shares)
                    )
                    / m
                )
            if q > threshold and placed >= minimum:
                break
            placed += 1
            if exact:
                for j, s in enumerate(shares):
                    pmf[j] = add_bernoulli(pmf[j], s)
        return placed

    @staticmethod
    def _exact_risk(mean: float, var: float, pmf: list[float]) -> float:
        """P(base + new answers >= 0): base normal, new calls' count exact."""
        sd = math.sqrt(var + 0.04)
        return sum(w * normal_upper((mean + i + 0.5) / sd) for i, w in enumerate(pmf) if w > 1e-9)


# ---------------------------------------------------------------- factory


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _target(params: dict[str, object]) -> float:
    target = _number("target_abandon", params.pop("target_abandon", DEFAULT_TARGET_ABANDON))
    if not 0.0 < target < 1.0:
        raise ValueError(f"target_abandon must be in (0, 1), got {target!r}")
    return target


def _positive(params: dict[str, object], name: str, default: float | None) -> float | None:
    raw = params.pop(name, default)
    if raw is None:
        return None
    value = _number(name, raw)
    if value <= 0.0:
        raise ValueError(f"{name} must be > 0, got {raw!r}")
    return value


def _reject_unknown(name: str, params: dict[str, object]) -> None:
    if params:
        unknown = ", ".join(sorted(params))
        raise ValueError(f"unknown parameter(s) for pacer {name!r}: {unknown}")


def make_pacer(name: str, **params: object) -> Pacer:
    """Build a pacer by name; ``ValueError`` names any unknown or out-of-range parameter.

    ``target_abandon`` is accepted (and range checked) by every pacer so that a
    harness can build all three alike; only ``predictive`` uses it.
    Predictive extras: ``max_lines_per_agent`` (> 0), ``window_seconds``
    (policy window, default 30 days) and ``day_seconds`` (the daily watch,
    default 86400), both in the time unit of ``DialResult.at``.
    """
    try:
        kind = PacerName(name)
    except ValueError:
        choices = ", ".join(p.value for p in PacerName)
        raise ValueError(f"unknown pacer name {name!r} (name must be one of: {choices})") from None
    options = dict(params)
    target = _target(options)
    if kind is PacerName.PROGRESSIVE:
        _reject_unknown(kind, options)
        return ProgressivePacer()
    if kind is PacerName.RATIO:
        lines = _positive(options, "lines_per_agent", 1.0)
        _reject_unknown(kind, options)
        assert lines is not None
        return RatioPacer(lines)
    max_lines = _positive(options, "max_lines_per_agent", None)
    window = _positive(options, "window_seconds", DEFAULT_WINDOW_SECONDS)
    day = _positive(options, "day_seconds", DEFAULT_DAY_SECONDS)
    _reject_unknown(kind, options)
    assert window is not None and day is not None
    return PredictivePacer(
        target_abandon=target, max_lines_per_agent=max_lines, window_seconds=window, day_seconds=day
    )
