"""KPI anomalies against each KPI's own history, and the drill-down that names a likely cause
(pure, no I/O).

Method: a robust z-score against the same slot of earlier weeks. A contact centre's
figures follow the hour of the day and the day of the week (connect rates are higher
in the evening, volume drops on Saturday), so a bucket is compared only with the same
hour-of-week (hourly series) or the same weekday (daily series) of up to ``history``
earlier weeks. Median and MAD instead of mean and standard deviation, because the
history itself holds outliers (a holiday, a trunk outage, last month's anomaly) that
would inflate a standard deviation and hide the next one; 1.4826 x MAD estimates the
standard deviation of normal noise, and |z| >= 3.5 is Iglewicz and Hoaglin's cut-off
for robust z-scores. A rate measured on few calls is noisy whatever its history says:
the scale is never below the binomial standard error of the bucket (sqrt(p(1-p)/n);
sqrt(median) for the volume, a count), and buckets with fewer than ``min_trials``
trials are not judged at all, so a quiet hour with 3 calls does not page anyone.

The drill-down splits the bucket by list, agent, hour and caller ID and asks which
single value carries the change: for a rate, each value's excess is
(its rate now - its own baseline rate) x its trials now; for the volume, its count now
minus its mean count in the baseline buckets. The value with the largest excess in the
direction of the change, and the share of the bucket's excess it explains, is the
likely cause reported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median

from reports.model import KPI_LABELS, Counts, Grouping, Kpi

ROBUST_Z = 3.5
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class Point:
    """One bucket of a KPI series: ``season`` is its hour-of-week (0-167) or weekday (0-6)."""

    bucket: str
    season: int
    counts: Counts


@dataclass(frozen=True, slots=True)
class Cause:
    dimension: Grouping
    key: str
    value: float
    expected: float
    share: float  # of the bucket's excess this value explains (1.0 = all of it)


@dataclass(frozen=True, slots=True)
class Anomaly:
    kpi: Kpi
    bucket: str
    value: float
    expected: float
    z: float
    trials: int
    history: int
    causes: tuple[Cause, ...] = ()

    @property
    def change(self) -> float:
        return self.value - self.expected

    def describe(self) -> str:
        zh, en = KPI_LABELS[self.kpi]
        if self.kpi is Kpi.VOLUME:
            now, exp = f"{self.value:.0f}", f"{self.expected:.0f}"
            size = f"{self.change:+.0f} ({_pct_change(self.value, self.expected)})"
        else:
            now, exp = f"{100 * self.value:.2f}%", f"{100 * self.expected:.2f}%"
            size = f"{100 * self.change:+.2f} pts"
        text = (
            f"{zh} {en} {self.bucket}: {now} against a usual {exp}, {size}, "
            f"robust z {self.z:+.1f} over {self.history} earlier weeks"
        )
        if self.causes:
            parts = [
                f"{c.dimension.value} {c.key} ({_fmt(self.kpi, c.value)} vs "
                f"{_fmt(self.kpi, c.expected)}, {100 * c.share:.0f}% of the change)"
                for c in self.causes
            ]
            text += "; likely cause: " + "; ".join(parts)
        return text


def _pct_change(value: float, expected: float) -> str:
    return f"{100 * (value - expected) / expected:+.0f}%" if expected else "new"


def _fmt(kpi: Kpi, value: float) -> str:
    return f"{value:.0f}" if kpi is Kpi.VOLUME else f"{100 * value:.2f}%"


@dataclass(frozen=True, slots=True)
class Verdict:
    """How one bucket compares with its history (``z`` None: not judged, and why)."""

    expected: float
    scale: float
    z: float | None
    history: int
    reason: str = ""


def judge(
    point: Point,
    history: Sequence[Point],
    kpi: Kpi,
    *,
    min_history: int = 4,
    min_trials: int = 30,
) -> Verdict:
    """The robust z of ``point`` against ``history`` (the same season, earlier weeks)."""
    values = [h.counts.kpi(kpi) for h in history if h.counts.trials(kpi) > 0]
    if len(values) < min_history:
        return Verdict(0.0, 0.0, None, len(values), f"only {len(values)} earlier weeks")
    trials = point.counts.trials(kpi)
    if kpi is not Kpi.VOLUME and trials < min_trials:
        return Verdict(0.0, 0.0, None, len(values), f"only {trials} trials")
    mid = median(values)
    mad = median(abs(v - mid) for v in values)
    if kpi is Kpi.VOLUME:
        noise = math.sqrt(max(mid, 1.0))
    else:
        p = min(max(mid, 1.0 / max(trials, 1)), 1.0 - 1.0 / max(trials, 2))
        noise = math.sqrt(p * (1.0 - p) / trials)
    scale = max(MAD_TO_SIGMA * mad, noise)
    return Verdict(mid, scale, (point.counts.kpi(kpi) - mid) / scale, len(values))


def detect(
    series: Sequence[Point],
    kpi: Kpi,
    *,
    history: int = 8,
    threshold: float = ROBUST_Z,
    min_trials: int = 30,
    only_last: int | None = None,
) -> list[Anomaly]:
    """Anomalies of ``kpi`` in ``series`` (ordered oldest first), each judged against up to
    ``history`` earlier buckets of the same season; ``only_last`` judges only the newest
    buckets (the history still comes from the whole series)."""
    by_season: dict[int, list[Point]] = {}
    found: list[Anomaly] = []
    start = 0 if only_last is None else max(0, len(series) - only_last)
    for i, point in enumerate(series):
        earlier = by_season.setdefault(point.season, [])
        if i >= start:
            v = judge(point, earlier[-history:], kpi, min_trials=min_trials)
            if v.z is not None and abs(v.z) >= threshold:
                found.append(
                    Anomaly(
                        kpi,
                        point.bucket,
                        point.counts.kpi(kpi),
                        v.expected,
                        v.z,
                        point.counts.trials(kpi),
                        v.history,
                    )
                )
        earlier.append(point)
    return found


def explain(
    anomaly: Anomaly,
    now: Mapping[Grouping, Mapping[str, Counts]],
    baseline: Mapping[Grouping, Mapping[str, Counts]],
    baseline_buckets: int,
    *,
    min_share: float = 0.3,
) -> Anomaly:
    """The anomaly with its likely causes: per dimension, the value that carries the
    largest part of the change (at least ``min_share`` of it), largest share first.

    ``now`` splits the anomalous bucket by dimension; ``baseline`` holds each value's
    counts summed over the ``baseline_buckets`` history buckets."""
    kpi = anomaly.kpi
    total_trials = sum(c.trials(kpi) for c in next(iter(now.values()), {}).values())
    if kpi is Kpi.VOLUME:
        excess = anomaly.value - anomaly.expected
    else:
        excess = (anomaly.value - anomaly.expected) * (total_trials or anomaly.trials)
    if excess == 0:
        return anomaly
    causes: list[Cause] = []
    for dim, values in now.items():
        best: Cause | None = None
        for key, counts in values.items():
            base = baseline.get(dim, {}).get(key, Counts())
            if kpi is Kpi.VOLUME:
                expected = base.dialled / max(baseline_buckets, 1)
                contribution = counts.dialled - expected
                value = float(counts.dialled)
            else:
                expected = base.kpi(kpi) if base.trials(kpi) >= 10 else anomaly.expected
                value = counts.kpi(kpi)
                contribution = (value - expected) * counts.trials(kpi)
            share = contribution / excess
            if share >= min_share and (best is None or share > best.share):
                best = Cause(dim, key, value, expected, min(share, 1.0))
        if best is not None:
            causes.append(best)
    causes.sort(key=lambda c: -c.share)
    return Anomaly(
        anomaly.kpi,
        anomaly.bucket,
        anomaly.value,
        anomaly.expected,
        anomaly.z,
        anomaly.trials,
        anomaly.history,
        tuple(causes),
    )
