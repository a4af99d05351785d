"""Anomaly detection on the KPIs and the drill-down to a cause.

Pure cases (a quiet series raises nothing; few calls are not judged; a drop is found
with its size), then the whole path: eight weeks of calls through the attempt log and
the rollup, one list going bad in one hour, and ``dialer report --alerts`` naming the
KPI, the size of the change and that list.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from compliance.tables import lead_lists, open_engine
from dialer.attempts import AttemptLog, attempts_table
from dialer.cli import main
from reports.anomaly import Point, detect, explain, judge
from reports.model import Counts, Grouping, Kpi
from reports.service import anomalies
from reports.store import ReportStore

TZ = ZoneInfo("Asia/Shanghai")


def _weeks(rates: list[float], n: int = 200, season: int = 3) -> list[Point]:
    return [
        Point(f"w{i}", season, Counts(dialled=n, connects=round(r * n)))
        for i, r in enumerate(rates)
    ]


def test_a_quiet_series_raises_nothing() -> None:
    rnd = random.Random(3)
    rates = [0.30 + rnd.gauss(0, 0.02) for _ in range(20)]
    assert detect(_weeks(rates), Kpi.CONNECT_RATE) == []


def test_a_drop_is_found_with_its_size() -> None:
    series = _weeks([0.30, 0.31, 0.29, 0.30, 0.32, 0.30, 0.12])
    [a] = detect(series, Kpi.CONNECT_RATE)
    assert a.bucket == "w6" and a.z < -3.5
    assert a.expected == pytest.approx(0.30, abs=0.01)
    assert a.change == pytest.approx(-0.18, abs=0.01)
    assert "接通率" in a.describe() and "-18" in a.describe()


def test_few_calls_are_not_judged_and_noise_sets_the_floor() -> None:
    history = _weeks([0.30] * 6)  # MAD 0: only the binomial noise is left as scale
    few = Point("now", 3, Counts(dialled=10, connects=0))
    assert judge(few, history, Kpi.CONNECT_RATE).z is None
    # 100 calls at 24 % against 30 %: within binomial noise (z about -1.3), not an alert
    v = judge(Point("now", 3, Counts(dialled=100, connects=24)), history, Kpi.CONNECT_RATE)
    assert v.z is not None and -2 < v.z < 0


def test_only_the_same_season_counts_as_history() -> None:
    # evenings connect at 50 %, mornings at 20 %: an evening at 50 % is normal
    series = []
    for w in range(6):
        series.append(Point(f"m{w}", 10, Counts(dialled=300, connects=60)))
        series.append(Point(f"e{w}", 19, Counts(dialled=300, connects=150)))
    assert detect(series, Kpi.CONNECT_RATE) == []


def test_explain_names_the_value_carrying_the_change() -> None:
    [a] = detect(_weeks([0.30] * 6 + [0.18], n=400), Kpi.CONNECT_RATE)
    now = {
        Grouping.LIST: {
            "good": Counts(dialled=200, connects=60),
            "bad": Counts(dialled=200, connects=12),
        },
        Grouping.AGENT: {"701": Counts(dialled=400, connects=72)},
    }
    base = {
        Grouping.LIST: {
            "good": Counts(dialled=1200, connects=360),
            "bad": Counts(dialled=1200, connects=360),
        },
        Grouping.AGENT: {"701": Counts(dialled=2400, connects=720)},
    }
    out = explain(a, now, base, 6)
    assert out.causes[0].dimension is Grouping.LIST and out.causes[0].key == "bad"
    assert out.causes[0].share == pytest.approx(1.0)
    assert "list bad" in out.describe()


async def test_alert_end_to_end_names_kpi_size_and_list(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = await open_engine(sqlite_url)
    log = AttemptLog(engine)
    await log.create_schema()
    rnd = random.Random(11)
    day = date(2026, 11, 30)  # a Monday
    rows, members = [], []
    n = 0
    for w in range(8, -1, -1):
        d = day - timedelta(days=7 * w)
        for hour in (10, 11):
            start = datetime(d.year, d.month, d.day, hour, tzinfo=TZ).astimezone(UTC)
            for i in range(300):
                listed = "list-b" if i % 2 else "list-a"
                rate = 0.30
                if w == 0 and hour == 10 and listed == "list-b":
                    rate = 0.0  # this list's numbers went bad in that hour
                answered = rnd.random() < rate
                n += 1
                at = start + timedelta(seconds=10 * i)
                rows.append(
                    dict(
                        attempt_id=f"a{n}",
                        campaign="c",
                        lead_id=str(n),
                        number=f"139{n:08d}",
                        product="p",
                        channel_id=f"dl-a{n}",
                        stage="done",
                        phase="ended",
                        outcome="answered" if answered else "busy",
                        reasons="",
                        answered=answered,
                        connected=answered,
                        abandoned=False,
                        agent_id="701" if answered else None,
                        order_confirmed=False,
                        note="",
                        try_no=1,
                        created_at=at,
                        updated_at=at,
                    )
                )
                members.append(dict(campaign="c", number_key=f"139{n:08d}", list_name=listed))
    async with engine.begin() as conn:
        await conn.execute(attempts_table.insert(), rows)
        await conn.execute(lead_lists.insert(), members)
    store = ReportStore(engine, TZ)
    await store.create_schema()
    await store.refresh()
    found = await anomalies(store, day, kpis=[Kpi.CONNECT_RATE])
    await engine.dispose()
    hourly = [a for a in found if a.bucket.endswith("10时")]
    assert hourly, [a.describe() for a in found]
    a = hourly[0]
    assert a.kpi is Kpi.CONNECT_RATE and a.change < -0.1
    assert a.causes and a.causes[0].dimension is Grouping.LIST and a.causes[0].key == "list-b"
    assert not [x for x in found if x.bucket.endswith("11时")]

    code = await asyncio.to_thread(
        main, ["report", "--db", sqlite_url, "--alerts", "--to", day.isoformat()]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "接通率 connect rate 2026-11-30 10时" in out and "list list-b" in out
