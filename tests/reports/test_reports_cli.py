"""``dialer report`` end to end on SQLite: text with Chinese headers, CSV checked against
the stored attempts, SVG charts that parse and carry their numbers, bad input refused."""

from __future__ import annotations

import asyncio
import csv
import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from compliance.tables import open_engine
from dialer.attempts import AttemptLog, attempts_table
from dialer.cli import main
from reports.charts import funnel, trend
from reports.export import to_text
from reports.model import Counts, EfficiencyModel, Grouping, ReportRow

# 2026-11-02 and 2026-11-03 in Shanghai; 23:30 UTC on the 2nd is already the 3rd there.
TIMES = [
    datetime(2026, 11, 2, 2, 0, tzinfo=UTC),
    datetime(2026, 11, 2, 3, 0, tzinfo=UTC),
    datetime(2026, 11, 2, 23, 30, tzinfo=UTC),
]


async def _seed(url: str) -> None:
    engine = await open_engine(url)
    await AttemptLog(engine).create_schema()
    rows = []
    for n in range(30):
        at = TIMES[n % 3] + timedelta(seconds=n)
        answered = n % 2 == 0
        rows.append(
            dict(
                attempt_id=f"a{n}",
                campaign="春季贷款",
                lead_id=str(n),
                number=f"138{n:08d}",
                product="p",
                channel_id=f"dl-a{n}",
                stage="done",
                phase="ended",
                outcome="answered" if answered else "no_answer",
                reasons="",
                answered=answered,
                connected=answered,
                abandoned=False,
                agent_id="701" if answered else None,
                order_confirmed=n % 4 == 0,
                note="",
                disposition=("order" if n % 4 == 0 else "refused") if answered else None,
                try_no=1,
                created_at=at,
                updated_at=at,
            )
        )
    async with engine.begin() as conn:
        await conn.execute(attempts_table.insert(), rows)
    await engine.dispose()


def _run(*argv: str) -> int:
    return main(list(argv))


async def test_report_text_csv_and_charts(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _seed(sqlite_url)
    base = ["report", "--db", sqlite_url, "--from", "2026-11-02", "--to", "2026-11-03"]
    assert await asyncio.to_thread(_run, *base, "--by", "day") == 0
    out = capsys.readouterr().out
    assert "日期" in out and "接通率" in out and "2026-11-02" in out and "2026-11-03" in out

    csv_path = tmp_path / "r.csv"
    chart = tmp_path / "trend.svg"
    code = await asyncio.to_thread(
        _run, *base, "--by", "day", "--csv", str(csv_path), "--chart", str(chart)
    )
    assert code == 0
    text = csv_path.read_text(encoding="utf-8")
    assert text.startswith("\ufeff")
    table = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    volume = {r["日期 day"]: int(r["外呼量 outbound volume"]) for r in table}
    orders = {r["日期 day"]: int(r["订单量 orders"]) for r in table}
    # 20 attempts at 10:00/11:00 local on the 2nd, 10 at 07:30 local on the 3rd
    assert volume == {"2026-11-02": 20, "2026-11-03": 10}
    assert sum(orders.values()) == sum(1 for n in range(30) if n % 4 == 0)
    assert table[0]["接通率 connect rate"] == "50.00%"
    svg = ET.fromstring(chart.read_text(encoding="utf-8"))
    assert svg.tag.endswith("svg")
    assert "2026-11-02: 50.0%" in chart.read_text(encoding="utf-8")

    fun = tmp_path / "funnel.svg"
    code = await asyncio.to_thread(
        _run, *base, "--by", "total", "--chart", str(fun), "--chart-kind", "funnel"
    )
    assert code == 0
    body = fun.read_text(encoding="utf-8")
    ET.fromstring(body)
    assert "外呼量 volume: 30" in body and "订单量 orders: 8" in body

    assert await asyncio.to_thread(_run, *base, "--by", "agent", "--csv", "-") == 0
    agent_csv = capsys.readouterr().out
    assert "701" in agent_csv and ",15," in agent_csv


async def test_report_bad_input(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = await asyncio.to_thread(
        _run, "report", "--db", sqlite_url, "--from", "2026-11-05", "--to", "2026-11-01"
    )
    assert code == 2
    assert "before start" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _run("report", "--from", "yesterday")


def test_text_table_and_charts_pure() -> None:
    c = Counts(dialled=100, connects=30, effective=20, orders=5)
    rows = [ReportRow("701", c, EfficiencyModel.of(c, 1))]
    text = to_text(rows, Grouping.AGENT)
    assert "座席" in text and "30.00%" in text and "25.00%" in text  # success = 5 / 20
    ET.fromstring(trend("t", [], []))
    ET.fromstring(trend("t <&>", ["a"], [0.5], percent=True, target=0.03))
    ET.fromstring(funnel("f", [("a", 0), ("b", 0)]))


async def test_staffing_commands(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        await asyncio.to_thread(_run, "staffing", "inbound", "--calls", "100", "--handle", "180")
        == 0
    )
    assert "座席 agents needed: 14" in capsys.readouterr().out
    await _seed(sqlite_url)
    args = [
        "staffing",
        "outbound",
        "--db",
        sqlite_url,
        "--campaign",
        "春季贷款",
        "--measure-days",
        "400",
        "--leads",
        "1000",
        "--tries",
        "1",
        "--occupancy",
        "50",
    ]
    assert await asyncio.to_thread(_run, *args, "--agents", "2") == 0
    out = capsys.readouterr().out
    # 15 of 30 dials connected, handle 0 s talk + 15 s wrap, 50 %: 120 connects/agent-hour;
    # 1,000 leads x 50 % = 500 connects = 4.2 agent-hours: one day for two agents
    assert "connect rate 50.0%" in out and "2 agents, 1 calling days" in out
    assert "500 connects" in out
    assert await asyncio.to_thread(_run, *args) == 2


async def test_keep_rollup_follows_new_calls_and_stops(sqlite_url: str) -> None:
    from zoneinfo import ZoneInfo

    from reports.store import ReportQuery, ReportStore, keep_rollup

    await _seed(sqlite_url)
    engine = await open_engine(sqlite_url)
    store = ReportStore(engine, ZoneInfo("Asia/Shanghai"))
    await store.create_schema()
    stop = asyncio.Event()
    task = asyncio.create_task(keep_rollup(store, stop, every=0.05))
    q = ReportQuery(TIMES[0].date(), TIMES[2].date() + timedelta(days=1), Grouping.TOTAL)
    try:
        async with asyncio.timeout(10):
            # polling the store, as a reader of the reports does
            while not (rows := await store.report(q)) or rows[0].counts.dialled != 30:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await engine.dispose()
