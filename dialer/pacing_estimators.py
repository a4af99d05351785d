"""The predictive pacer's estimators and distributions (pure; no I/O, no clock).

Exponentially forgetting histograms and rates, sliding-window counters, and the
small probability helpers (Bernoulli sums, Poisson, binomial surplus, normal
tail) that ``dialer.pacing.PredictivePacer`` builds its forecast from. Times are
seconds in the caller's clock.
"""

from __future__ import annotations

import itertools
import math
from collections import deque


class ForgettingHistogram:
    """Histogram with exponential forgetting per sample (half-life in samples).

    Newer samples get geometrically larger weights instead of decaying every
    bin at every sample; weights are rescaled before they overflow.
    """

    def __init__(self, bin_width: float, bins: int, half_life: float) -> None:
        self.bin_width = bin_width
        self.counts = [0.0] * bins
        self.total = 0.0
        self.samples = 0
        self._weight = 1.0
        self._growth = 2.0 ** (1.0 / half_life)
        self._cdf: list[float] = [0.0] * bins

    def add(self, value: float) -> None:
        index = min(int(max(value, 0.0) / self.bin_width), len(self.counts) - 1)
        self.counts[index] += self._weight
        self.total += self._weight
        self.samples += 1
        self._weight *= self._growth
        if self._weight > 1e100:
            scale = 1.0 / self._weight
            self.counts = [c * scale for c in self.counts]
            self.total *= scale
            self._weight = 1.0

    def refresh(self) -> None:
        """Recompute the cumulative distribution used by the lookups."""
        if self.total <= 0.0:
            return
        inverse = 1.0 / self.total
        # accumulate() adds in the same order as a loop, at C speed: this runs
        # for 3600 talk bins inside a decision once a minute.
        cdf = [running * inverse for running in itertools.accumulate(self.counts)]
        cdf[-1] = 1.0
        self._cdf = cdf

    def cdf(self, x: float) -> float:
        """P(value <= x), linear inside a bin."""
        if x <= 0.0:
            return 0.0
        position = x / self.bin_width
        index = int(position)
        if index >= len(self._cdf):
            return 1.0
        below = self._cdf[index - 1] if index > 0 else 0.0
        return below + (self._cdf[index] - below) * (position - index)

    def quantile(self, u: float) -> float:
        cdf = self._cdf
        below = 0.0
        for i, value in enumerate(cdf):
            if value >= u:
                span = value - below
                frac = (u - below) / span if span > 0 else 0.0
                return (i + frac) * self.bin_width
            below = value
        return len(cdf) * self.bin_width


class ForgettingRate:
    """Exponentially forgotten success ratio with a weak prior."""

    def __init__(self, half_life: float, prior: float, prior_weight: float) -> None:
        self._decay = 0.5 ** (1.0 / half_life)
        self.hits = 0.0
        self.total = 0.0
        self.samples = 0
        self._prior = prior
        self._prior_weight = prior_weight

    def add(self, hit: bool) -> None:
        self.hits = self.hits * self._decay + (1.0 if hit else 0.0)
        self.total = self.total * self._decay + 1.0
        self.samples += 1

    @property
    def value(self) -> float:
        return (self.hits + self._prior * self._prior_weight) / (self.total + self._prior_weight)


class WindowCounter:
    """Answered / abandoned counts over a sliding window of ``at`` times (minute buckets)."""

    BUCKET_SECONDS = 60.0

    def __init__(self, window_seconds: float) -> None:
        self.window_seconds = window_seconds
        self._buckets: deque[list[float]] = deque()
        self.answered = 0
        self.abandoned = 0

    def add(self, at: float, abandoned: bool) -> None:
        bucket = math.floor(at / self.BUCKET_SECONDS)
        if self._buckets and self._buckets[-1][0] >= bucket:
            entry = self._buckets[-1]
        else:
            entry = [float(bucket), 0.0, 0.0]
            self._buckets.append(entry)
        entry[1] += 1
        self.answered += 1
        if abandoned:
            entry[2] += 1
            self.abandoned += 1
        self.expire(at)

    def expire(self, now: float) -> None:
        oldest = math.floor((now - self.window_seconds) / self.BUCKET_SECONDS)
        while self._buckets and self._buckets[0][0] <= oldest:
            _, answered, abandoned = self._buckets.popleft()
            self.answered -= int(answered)
            self.abandoned -= int(abandoned)

    def slack(self, target: float) -> float:
        """Abandons still allowed before the window's rate exceeds the target."""
        return target * self.answered - self.abandoned


class EventRate:
    """Events per second, exponentially forgotten in the events' own time."""

    def __init__(self, half_life: float) -> None:
        self.half_life = half_life
        self._level = 0.0
        self._last: float | None = None
        self._first: float | None = None

    def add(self, at: float) -> None:
        if self._last is not None and at > self._last:
            self._level *= 0.5 ** ((at - self._last) / self.half_life)
        if self._last is None or at > self._last:
            self._last = at
        if self._first is None:
            self._first = at
        self._level += 1.0

    @property
    def rate(self) -> float:
        if self._last is None or self._first is None:
            return 0.0
        # Early on the forgetting has not filled up: divide by the time seen.
        span = min(self.half_life / math.log(2.0), max(self._last - self._first, 60.0))
        return self._level / span


class RecentRate:
    """Answered and abandoned counts forgotten exponentially in ``at`` time."""

    def __init__(self, half_life: float) -> None:
        self.half_life = half_life
        self.answered = 0.0
        self.abandoned = 0.0
        self._last: float | None = None

    def add(self, at: float, abandoned: bool) -> None:
        if self._last is not None and at > self._last:
            decay = 0.5 ** ((at - self._last) / self.half_life)
            self.answered *= decay
            self.abandoned *= decay
        if self._last is None or at > self._last:
            self._last = at
        self.answered += 1.0
        self.abandoned += 1.0 if abandoned else 0.0


def add_bernoulli(pmf: list[float], share: float) -> list[float]:
    """Distribution of a count after adding one Bernoulli(share) to it."""
    out = [w * (1.0 - share) for w in pmf]
    out.append(0.0)
    for i, w in enumerate(pmf):
        out[i + 1] += w * share
    return out


def poisson(mean: float) -> list[float]:
    """Poisson probabilities 0, 1, ... until the tail is negligible."""
    if mean <= 0.0:
        return [1.0]
    term = math.exp(-mean)
    out = [term]
    total = term
    k = 0
    while total < 1.0 - 1e-9 and k < 200:
        k += 1
        term *= mean / k
        out.append(term)
        total += term
    return out


def binomial_surplus(total: int, p: float, capacity: int) -> float:
    """E[(X - capacity)+] for X ~ Binomial(total, p), 0 <= p < 1, in O(capacity).

    E[(X - c)+] = E[X] - E[min(X, c)] and E[min(X, c)] = sum over j < c of P(X > j).
    """
    if total <= 0:
        return 0.0
    odds = p / (1.0 - p)
    term = math.exp(total * math.log1p(-p))  # P(X = 0); underflows harmlessly to 0
    below = 0.0
    capped = 0.0
    for j in range(min(capacity, total + 1)):
        below += term
        capped += 1.0 - below
        term *= odds * (total - j) / (j + 1)
    return max(0.0, total * p - capped)


def accumulate(pmf: list[float]) -> list[float]:
    running = 0.0
    out = []
    for w in pmf:
        running += w
        out.append(running)
    return out


def normal_upper(z: float) -> float:
    """P(N(0,1) > -z) = Phi(z)."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))
