"""Anomaly alerts from the rollup: each KPI's hours and days of a given local day judged
against the same hour-of-week / weekday of earlier weeks (``reports.anomaly``), each
alert drilled down by list, agent, caller ID (and hour, for a day) to a likely cause."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from reports.anomaly import Anomaly, Point, detect, explain
from reports.model import Counts, Grouping, Kpi
from reports.store import ReportStore

ALERT_KPIS = (Kpi.VOLUME, Kpi.CONNECT_RATE, Kpi.SUCCESS_RATE, Kpi.COMPLAINT_RATE)
_DRILL = (("list", Grouping.LIST), ("agent", Grouping.AGENT), ("cid", Grouping.CALLER_ID))


def _sum(items: Iterable[Counts]) -> Counts:
    total = Counts()
    for c in items:
        total = total + c
    return total


async def anomalies(
    store: ReportStore,
    day: date,
    *,
    campaign: str | None = None,
    kpis: Sequence[Kpi] = ALERT_KPIS,
    weeks: int = 8,
    min_trials: int = 30,
) -> list[Anomaly]:
    """Alerts for ``day`` (local): per KPI, the whole day and each of its hours."""
    start = day - timedelta(days=7 * weeks)
    hourly = await store.hourly(start, day, campaign=campaign)
    by_day: dict[str, list[Counts]] = {}
    for d, _, c in hourly:
        by_day.setdefault(d, []).append(c)
    daily = [
        Point(d, date.fromisoformat(d).weekday(), _sum(cs)) for d, cs in sorted(by_day.items())
    ]
    hours = [
        Point(f"{d} {h:02d}时", date.fromisoformat(d).weekday() * 24 + h, c) for d, h, c in hourly
    ]
    today = day.isoformat()
    found: list[Anomaly] = []
    for kpi in kpis:
        for a in detect(daily, kpi, history=weeks, min_trials=min_trials):
            if a.bucket == today:
                found.append(await _drill(store, a, day, None, weeks, campaign))
        for a in detect(hours, kpi, history=weeks, min_trials=min_trials):
            if a.bucket.startswith(today):
                hour = int(a.bucket[len(today) + 1 : len(today) + 3])
                found.append(await _drill(store, a, day, hour, weeks, campaign))
    return found


async def _drill(
    store: ReportStore,
    a: Anomaly,
    day: date,
    hour: int | None,
    weeks: int,
    campaign: str | None,
) -> Anomaly:
    past = [(day - timedelta(days=7 * w)).isoformat() for w in range(1, weeks + 1)]
    hours = None if hour is None else [hour]
    dims = list(_DRILL) + ([("hour", Grouping.HOUR)] if hour is None else [])
    now = {
        g: await store.breakdown([day.isoformat()], hours, dim, campaign=campaign)
        for dim, g in dims
    }
    base = {g: await store.breakdown(past, hours, dim, campaign=campaign) for dim, g in dims}
    return explain(a, now, base, baseline_buckets=a.history)
