"""The report rollup against the attempt rows it summarises, on SQLite and PostgreSQL.

Every figure a report gives is checked against a count made here in Python from the
same attempt records (not from the rollup), after a first refresh and after late
changes (a disposition given later, a new call, a complaint) that the refresh must see.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from compliance.tables import campaigns, lead_lists, leads, open_engine
from dialer.attempts import AttemptLog, AttemptRecord
from recordings.schema import complaint_recordings, complaints, recordings
from recordings.schema import metadata as rec_metadata
from reports.model import Grouping
from reports.store import ReportQuery, ReportStore

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


@pytest.fixture(params=["sqlite", "postgres"])
def db_target(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
        return url, None
    target = request.getfixturevalue("pg_target")
    return target.url, target.schema


@pytest.fixture
async def engine(db_target: tuple[str, str | None]) -> AsyncIterator[AsyncEngine]:
    eng = await open_engine(db_target[0], schema=db_target[1])
    async with eng.begin() as conn:
        await conn.run_sync(rec_metadata.create_all)
    try:
        yield eng
    finally:
        await eng.dispose()


def _attempt(i: int, rnd: random.Random) -> AttemptRecord:
    created = START + timedelta(minutes=7 * i)
    refused = rnd.random() < 0.05
    answered = not refused and rnd.random() < 0.4
    machine = answered and rnd.random() < 0.1
    human = answered and not machine
    abandoned = human and rnd.random() < 0.05
    connected = human and not abandoned
    disposition = rnd.choice(["order", "refused", "callback", "no_decision"]) if connected else None
    return AttemptRecord(
        attempt_id=f"a{i}",
        campaign=rnd.choice(["spring", "autumn"]),
        lead_id=str(i),
        number=f"138{i:08d}",
        product="p",
        channel_id=f"dl-a{i}",
        stage="refused" if refused else "done",
        phase="ended",
        created_at=created,
        updated_at=created + timedelta(minutes=2),
        outcome=None if refused else ("machine" if machine else "answered" if answered else "busy"),
        answered=answered,
        connected=connected,
        abandoned=abandoned,
        agent_id=rnd.choice(["701", "702", "703"]) if connected else None,
        talk_seconds=60.0 if connected else None,
        disposition=disposition,
    )


def _local(at: datetime) -> datetime:
    return at.astimezone(TZ)


def _expected(recs: list[AttemptRecord], key: str) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    for r in recs:
        k = {"day": _local(r.created_at).date().isoformat(), "agent": r.agent_id or ""}[key]
        if key == "agent" and r.agent_id is None:
            continue
        c = out.setdefault(k, Counter())
        c["dialled"] += r.stage != "refused"
        c["connects"] += r.answered and r.outcome != "machine"
        c["effective"] += r.disposition in ("order", "refused", "callback")
        c["orders"] += r.disposition == "order"
        c["abandoned"] += r.abandoned
    return out


async def _seed(engine: AsyncEngine, recs: list[AttemptRecord]) -> AttemptLog:
    log = AttemptLog(engine)
    await log.create_schema()
    now = datetime(2026, 11, 1, tzinfo=UTC)
    async with engine.begin() as conn:
        for name in ("spring", "autumn"):
            await conn.execute(
                campaigns.insert().values(
                    name=name,
                    script="s",
                    products="[]",
                    caller_id="02888886666",
                    ring_timeout=25,
                    hours="{}",
                    retry="{}",
                    pacing_method="progressive",
                    pacing_params="{}",
                    state="running",
                    created_at=now,
                    updated_at=now,
                )
            )
    for r in recs:
        await log.insert(r)
    async with engine.begin() as conn:
        for r in recs:
            await conn.execute(
                leads.insert().values(
                    campaign=r.campaign,
                    number_key=r.number,
                    name="",
                    segment="default",
                    product="p",
                    assigned_at=now,
                    status="done",
                    reasons="[]",
                    attempts=1,
                    claimed_by="",
                    updated_at=now,
                    dialled_number="4008001234" if int(r.lead_id) % 10 == 0 else None,
                )
            )
            await conn.execute(
                lead_lists.insert().values(
                    campaign=r.campaign,
                    number_key=r.number,
                    list_name="list-b" if int(r.lead_id) % 3 == 0 else "list-a",
                )
            )
    return log


async def test_report_matches_the_attempts_and_follows_late_changes(engine: AsyncEngine) -> None:
    rnd = random.Random(7)
    recs = [_attempt(i, rnd) for i in range(600)]  # 70 hours: three local days and more
    log = await _seed(engine, recs)
    store = ReportStore(engine, TZ)
    await store.create_schema()
    assert await store.refresh() > 0
    first, last = _local(recs[0].created_at).date(), _local(recs[-1].created_at).date()

    async def check(recs: list[AttemptRecord]) -> None:
        for group, key in ((Grouping.DAY, "day"), (Grouping.AGENT, "agent")):
            rows = await store.report(ReportQuery(first, last, group))
            want = _expected(recs, key)
            got = {
                r.key: Counter(
                    dialled=r.counts.dialled,
                    connects=r.counts.connects,
                    effective=r.counts.effective,
                    orders=r.counts.orders,
                    abandoned=r.counts.abandoned,
                )
                for r in rows
            }
            assert {k: +v for k, v in got.items()} == {k: +v for k, v in want.items()}, group

    await check(recs)
    total = (await store.report(ReportQuery(first, last, Grouping.TOTAL)))[0]
    assert total.model.seats == 3
    assert total.model.volume == sum(r.stage != "refused" for r in recs)
    by_list = {
        r.key: r.counts.dialled for r in await store.report(ReportQuery(first, last, Grouping.LIST))
    }
    assert by_list == {
        "list-a": sum(r.stage != "refused" and int(r.lead_id) % 3 != 0 for r in recs),
        "list-b": sum(r.stage != "refused" and int(r.lead_id) % 3 == 0 for r in recs),
    }
    by_cid = {r.key for r in await store.report(ReportQuery(first, last, Grouping.CALLER_ID))}
    assert by_cid == {"02888886666", "4008001234"}

    # A disposition given later, and a new call: one refresh later both count.
    target = next(r for r in recs if r.connected and r.disposition != "order")
    later = datetime.now(UTC)
    await log.update(target.attempt_id, later, disposition="order")
    extra = _attempt(600, random.Random(1))
    await log.insert(extra)
    assert await store.refresh() >= 2
    recs = [
        r if r.attempt_id != target.attempt_id else _with(r, disposition="order") for r in recs
    ] + [extra]
    await check(recs)
    assert await store.refresh() <= 1  # nothing new beyond the overlap window's hours

    # A complaint about one call counts once, against that call's campaign and hour.
    await _complain(engine, target)
    await store.refresh()
    day = _local(target.created_at).date()
    rows = await store.report(ReportQuery(day, day, Grouping.CAMPAIGN))
    assert {r.key: r.counts.complaints for r in rows}[target.campaign] == 1
    assert sum(r.counts.complaints for r in rows) == 1


def _with(r: AttemptRecord, **changes: object) -> AttemptRecord:
    from dataclasses import replace

    return replace(r, **changes)  # type: ignore[arg-type]


async def _complain(engine: AsyncEngine, call: AttemptRecord) -> None:
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        ids = []
        for n, (attempt, started) in enumerate(
            [
                ("older-call", call.created_at - timedelta(days=30)),
                (call.attempt_id, call.created_at),
            ]
        ):
            res = await conn.execute(
                recordings.insert().values(
                    name=f"rec-{n}-{attempt}",
                    attempt_id=attempt,
                    campaign=call.campaign,
                    agent=call.agent_id or "",
                    origin="dialer",
                    number_hmac="h",
                    number_masked="138****0000",
                    started_at=started,
                    format="wav",
                    size_bytes=1,
                    sha256="0" * 64,
                    path="x",
                    retain_until=now,
                    ingested_at=now,
                )
            )
            ids.append(res.inserted_primary_key[0])
        res = await conn.execute(
            complaints.insert().values(
                number_hmac="h",
                number_masked="138****0000",
                number_enc=b"x",
                channel="call",
                text="t",
                received_at=now,
                registered_by="c",
                status="open",
            )
        )
        cid = res.inserted_primary_key[0]
        for rid in ids:
            await conn.execute(
                complaint_recordings.insert().values(complaint_id=cid, recording_id=rid)
            )


async def test_report_range_checks() -> None:
    with pytest.raises(ValueError, match="before start"):
        ReportQuery(date(2026, 11, 3), date(2026, 11, 2))
    with pytest.raises(ValueError, match="both"):
        ReportQuery(date(2026, 11, 2), date(2026, 11, 3), dim=Grouping.AGENT)
