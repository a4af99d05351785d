"""Reports over 10 million attempts on PostgreSQL: build the rollup, time every report.

    .venv/bin/python bench/bench_reports.py [--attempts 10000000] [--pg URL] [--keep]

Generates a year of calls (20 campaigns, 200 agents (10 per campaign), 40 lead lists,
1 million leads, calling hours 09-12 and 14-20 in Shanghai) straight into
``dialer_attempts`` with COPY,
in a schema of its own (dropped afterwards unless ``--keep``), then prints: the time of
the first full rollup build, of an incremental refresh after 1,000 new calls, and of each
report (a year and a month, by day, hour, agent, campaign, list and caller ID, filtered
by a campaign and by an agent). Target: every report under 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from compliance.tables import open_engine
from dialer.attempts import AttemptLog
from reports.model import Grouping
from reports.store import ReportQuery, ReportStore

TZ = ZoneInfo("Asia/Shanghai")
HOURS = (9, 10, 11, 14, 15, 16, 17, 18, 19)
COLUMNS = (
    "attempt_id",
    "campaign",
    "lead_id",
    "number",
    "product",
    "channel_id",
    "stage",
    "phase",
    "outcome",
    "reasons",
    "answered",
    "connected",
    "abandoned",
    "agent_id",
    "talk_seconds",
    "disposition",
    "order_confirmed",
    "note",
    "try_no",
    "created_at",
    "updated_at",
)


def _rows(n: int, start: date, rnd: random.Random, leads: int) -> list[tuple[object, ...]]:
    out = []
    for _ in range(n):
        day = start + timedelta(days=rnd.randrange(365))
        hour = rnd.choice(HOURS)
        at = datetime(
            day.year, day.month, day.day, hour, rnd.randrange(60), rnd.randrange(60), tzinfo=TZ
        ).astimezone(UTC)
        lead = rnd.randrange(leads)
        campaign = f"c{lead % 20:02d}"
        r = rnd.random()
        refused = r < 0.03
        answered = not refused and r < 0.33
        machine = answered and rnd.random() < 0.08
        human = answered and not machine
        abandoned = human and rnd.random() < 0.025
        connected = human and not abandoned
        disp = None
        if connected:
            disp = rnd.choices(["order", "refused", "callback", "no_decision"], [2, 5, 2, 1])[0]
        aid = uuid.uuid4().hex[:20]
        out.append(
            (
                aid,
                campaign,
                str(lead),
                f"1{lead:010d}",
                "p",
                "dl-" + aid,
                "refused" if refused else "done",
                "ended",
                None if refused else ("machine" if machine else "answered" if answered else "busy"),
                "",
                answered,
                connected,
                abandoned,
                f"{700 + (lead % 20) * 10 + rnd.randrange(10)}" if connected else None,
                rnd.uniform(30, 300) if connected else None,
                disp,
                disp == "order",
                "",
                1,
                at,
                at,
            )
        )
    return out


#: The year of calls, generated inside PostgreSQL (no Python row per attempt): the same
#: shape as ``_rows`` (used for the 1,000 incremental calls), drawn by random().
_GENERATE = """
INSERT INTO dialer_attempts (attempt_id, campaign, lead_id, number, product, channel_id, stage,
    phase, outcome, reasons, answered, connected, abandoned, agent_id, talk_seconds, disposition,
    order_confirmed, note, try_no, created_at, updated_at)
SELECT 'g' || g, 'c' || lpad((lead % 20)::text, 2, '0'), lead::text,
    '1' || lpad(lead::text, 10, '0'), 'p', 'dl-g' || g,
    CASE WHEN r < 0.03 THEN 'refused' ELSE 'done' END, 'ended',
    CASE WHEN r < 0.03 THEN NULL WHEN r < 0.33 AND m THEN 'machine'
         WHEN r < 0.33 THEN 'answered' ELSE 'busy' END,
    '', r >= 0.03 AND r < 0.33, conn, r >= 0.03 AND r < 0.33 AND NOT m AND ab,
    CASE WHEN conn THEN (700 + (lead % 20) * 10 + (g % 10))::text END,
    CASE WHEN conn THEN 30 + 270 * random() END,
    CASE WHEN conn THEN (ARRAY['order','order','refused','refused','refused','refused',
        'refused','callback','callback','no_decision'])[1 + (g % 10)] END,
    conn AND g % 10 < 2, '', 1, at, at
FROM (
    SELECT g, lead, r, m, ab, at,
           r >= 0.03 AND r < 0.33 AND NOT m AND NOT ab AS conn
    FROM (
        SELECT g, (random() * ($2 - 1))::bigint AS lead, random() AS r,
               random() < 0.08 AS m, random() < 0.025 AS ab,
               (timestamp '2025-12-01' + (floor(random() * 365))::int * interval '1 day'
                + (ARRAY[9,10,11,14,15,16,17,18,19])[1 + floor(random() * 9)::int]
                  * interval '1 hour'
                + floor(random() * 3600)::int * interval '1 second')
               AT TIME ZONE 'Asia/Shanghai' AS at
        FROM generate_series($3::bigint, $1::bigint) AS g
    ) x
) y
"""


async def generate(dsn: str, schema: str, attempts: int, leads: int) -> None:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    now = datetime.now(UTC)
    await conn.executemany(
        "INSERT INTO campaigns (name, script, products, caller_id, ring_timeout, hours, retry,"
        " pacing_method, pacing_params, state, created_at, updated_at)"
        " VALUES ($1, 's', '[]', $2, 25, '{}', '{}', 'predictive', '{}', 'running', $3, $3)",
        [(f"c{i:02d}", f"0288888{i:04d}", now) for i in range(20)],
    )
    await conn.execute(
        "INSERT INTO leads (campaign, number_key, name, segment, product, assigned_at,"
        " dialled_number, status, reasons, attempts, claimed_by, updated_at)"
        " SELECT 'c' || lpad((i % 20)::text, 2, '0'), '1' || lpad(i::text, 10, '0'), '',"
        " 'default', 'p', $2, CASE WHEN i % 25 = 0 THEN '40080' || lpad((i % 7)::text, 5, '0')"
        " END, 'new', '[]', 0, '', $2 FROM generate_series(0, $1::bigint - 1) AS i",
        leads,
        now,
    )
    await conn.execute(
        "INSERT INTO lead_lists (campaign, number_key, list_name)"
        " SELECT 'c' || lpad((i % 20)::text, 2, '0'), '1' || lpad(i::text, 10, '0'),"
        " 'list-' || lpad((i % 40)::text, 2, '0') FROM generate_series(0, $1::bigint - 1) AS i",
        leads,
    )
    t0 = time.perf_counter()
    chunk = 1_000_000
    for lo in range(1, attempts + 1, chunk):
        hi = min(attempts, lo + chunk - 1)
        await conn.execute(_GENERATE, hi, leads, lo)
        print(f"  generated {hi:,} attempts ({time.perf_counter() - t0:.0f} s)", flush=True)
    await conn.execute("ANALYZE")
    await conn.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--attempts", type=int, default=10_000_000)
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--schema", default=None, help="reuse a kept schema (skips generation)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    dsn = args.pg.replace("postgresql+asyncpg://", "postgresql://")
    schema = args.schema or f"bench_reports_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    fresh = args.schema is None
    if fresh:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
    engine = await open_engine(args.pg, schema=schema)
    try:
        store = ReportStore(engine, TZ)
        if fresh:
            await AttemptLog(engine).create_schema()
            await store.create_schema()
            t = time.perf_counter()
            await generate(dsn, schema, args.attempts, args.leads)
            print(f"generated {args.attempts:,} attempts in {time.perf_counter() - t:.1f} s")
            t = time.perf_counter()
            hours = await store.refresh(full=True)
            print(f"rollup built: {hours:,} UTC hours in {time.perf_counter() - t:.1f} s")
        async with engine.connect() as conn:
            from sqlalchemy import text

            n = (await conn.execute(text("SELECT count(*) FROM report_rollup"))).scalar_one()
            a = (await conn.execute(text("SELECT count(*) FROM dialer_attempts"))).scalar_one()
        print(f"{a:,} attempts, {n:,} rollup rows")
        # 1,000 new calls in the last hour, then the refresh a running dialer does.
        conn2 = await asyncpg.connect(dsn, server_settings={"search_path": schema})
        rows = _rows(1000, date(2026, 11, 30), random.Random(5), args.leads)
        now = datetime.now(UTC)
        rows = [(*r[:-2], now, now) for r in rows]
        await conn2.copy_records_to_table("dialer_attempts", columns=list(COLUMNS), records=rows)
        await conn2.close()
        t = time.perf_counter()
        hours = await store.refresh()
        print(
            f"incremental refresh after 1,000 new calls: {hours} hours in "
            f"{1000 * (time.perf_counter() - t):.0f} ms"
        )
        year = (date(2025, 12, 1), date(2026, 11, 30))
        month = (date(2026, 11, 1), date(2026, 11, 30))
        cases = (
            [("year", year, g, None, None) for g in Grouping]
            + [("month", month, g, None, None) for g in (Grouping.DAY, Grouping.AGENT)]
            + [
                ("year, one campaign", year, Grouping.DAY, "c03", None),
                ("year, one agent", year, Grouping.DAY, None, (Grouping.AGENT, "705")),
            ]
        )
        print("| report | rows | seconds (best of 3) |")
        print("| --- | --- | --- |")
        worst = 0.0
        for label, (s, e), g, camp, filt in cases:
            q = ReportQuery(s, e, g, camp, filt[0] if filt else None, filt[1] if filt else None)
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                out = await store.report(q)
                best = min(best, time.perf_counter() - t)
            worst = max(worst, best)
            print(f"| {label} by {g.value} | {len(out)} | {best:.3f} |", flush=True)
        print(f"slowest report: {worst:.3f} s (target < 2 s): {'met' if worst < 2 else 'NOT met'}")
    finally:
        await engine.dispose()
        if fresh and not args.keep:
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        elif fresh:
            print(f"kept schema {schema}")
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
