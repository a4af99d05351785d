"""The report rollup in SQL: hourly counts kept up to date from the attempt log, and the
report queries over it (SQLite and PostgreSQL).

Reading 10 million attempt rows for every report cannot answer in 2 s, so reports read
``report_rollup``: one row per local day, local hour, campaign and breakdown value,
where the breakdown (``dim``) is one of ``all`` (the campaign's hour), ``agent``,
``list`` or ``cid`` (the caller ID presented); ``agentday`` rows (hour -1) sum each
agent's hours of a day, so that seats and reports by agent over a year read one row per
agent and day instead of one per agent and hour. A row holds additive counts only
(``reports.model.Counts``); rates are computed after summing.

``refresh()`` keeps it current as attempts finish: it finds the UTC hours whose attempts
changed since its watermark (``updated_at``, with an overlap for transactions that
committed late) or that received a complaint, and recomputes those hours whole from the
attempt log in one ``INSERT ... SELECT`` per breakdown. Recomputing is idempotent, so a
late disposition, a crash half-way or a second process refreshing at the same time
leave the right figures. ``dialer serve`` refreshes every few seconds, ``dialer report``
before it reads.

Local days and hours are in the policy's time zone: PostgreSQL converts with the zone's
name (``AT TIME ZONE``), SQLite with the zone's UTC offset at the refreshed hours (exact
for zones without daylight saving, such as Asia/Shanghai).

Complaints (``rec_complaints``) count against the call they are about: the latest
dialer recording linked to the complaint, hence that recording's attempt. Without the
recordings tables complaints count as 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from compliance.database import UtcDateTime
from reports.model import (
    COUNT_FIELDS,
    EFFECTIVE_DISPOSITIONS,
    Counts,
    EfficiencyModel,
    Grouping,
    ReportRow,
    counts_of,
)

logger = logging.getLogger(__name__)

metadata = MetaData()

rollup = Table(
    "report_rollup",
    metadata,
    Column("day", String(10), primary_key=True),  # local date, ISO
    Column("hour", Integer, primary_key=True),  # local hour 0-23
    Column("campaign", String(128), primary_key=True),
    Column("dim", String(8), primary_key=True),  # all | agent | list | cid
    Column("value", String(128), primary_key=True),
    *(
        Column(name, Float if name == "talk_seconds" else Integer, nullable=False, default=0)
        for name in COUNT_FIELDS
    ),
)
Index("ix_report_rollup_dim_day", rollup.c.dim, rollup.c.day, rollup.c.campaign)
Index("ix_report_rollup_dim_value", rollup.c.dim, rollup.c.value, rollup.c.day)

rollup_state = Table(
    "report_rollup_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("watermark", UtcDateTime, nullable=True),
    Column("complaint_id", Integer, nullable=False, default=0),
)

DIMS = ("all", "agent", "list", "cid")
_DIM_OF: dict[Grouping, str] = {
    Grouping.AGENT: "agent",
    Grouping.LIST: "list",
    Grouping.CALLER_ID: "cid",
}
#: A transaction may commit a row whose ``updated_at`` is older than the newest one a
#: refresh already saw; hours touched within this margin are recomputed again.
OVERLAP = timedelta(minutes=2)

_VALUE_SQL = {
    "all": "''",
    "agent": "a.agent_id",
    "list": "COALESCE(ll.list_name, '')",
    "cid": "COALESCE(NULLIF(l.dialled_number, ''), c.caller_id, '')",
}
_EFFECTIVE = ", ".join(f"'{d}'" for d in EFFECTIVE_DISPOSITIONS)
_COUNTS_SQL = {
    "dialled": "SUM(CASE WHEN a.stage NOT IN ('refused', 'reserving') "
    "AND COALESCE(a.outcome, '') <> 'cancelled' THEN 1 ELSE 0 END)",
    "refused": "SUM(CASE WHEN a.stage = 'refused' THEN 1 ELSE 0 END)",
    "answered": "SUM(CASE WHEN a.answered THEN 1 ELSE 0 END)",
    "connects": "SUM(CASE WHEN a.answered AND COALESCE(a.outcome, '') <> 'machine' "
    "THEN 1 ELSE 0 END)",
    "bridged": "SUM(CASE WHEN a.connected THEN 1 ELSE 0 END)",
    "effective": f"SUM(CASE WHEN a.disposition IN ({_EFFECTIVE}) THEN 1 ELSE 0 END)",
    "orders": "SUM(CASE WHEN a.disposition = 'order' THEN 1 ELSE 0 END)",
    "abandoned": "SUM(CASE WHEN a.abandoned THEN 1 ELSE 0 END)",
    "machines": "SUM(CASE WHEN a.outcome = 'machine' THEN 1 ELSE 0 END)",
    "complaints": "COALESCE(SUM(k.n), 0)",
    "talk_seconds": "COALESCE(SUM(a.talk_seconds), 0)",
}
# Each complaint counts once, against the call of its latest linked dialer recording.
_COMPLAINTS_SQL = """
    SELECT r.attempt_id AS attempt_id, COUNT(*) AS n
    FROM rec_complaint_recordings cr
    JOIN rec_recordings r ON r.id = cr.recording_id
    WHERE r.origin = 'dialer' AND r.attempt_id <> ''
      AND r.id = (SELECT MAX(r2.id) FROM rec_complaint_recordings cr2
                  JOIN rec_recordings r2 ON r2.id = cr2.recording_id
                  WHERE cr2.complaint_id = cr.complaint_id AND r2.origin = 'dialer'
                    AND r2.attempt_id <> '')
    GROUP BY r.attempt_id
"""


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """A report: local dates ``start`` to ``end`` inclusive, rows by ``group``, optionally
    one campaign (and, for a day-by-day or hour-by-hour trend, one agent, list or caller ID
    through ``dim``/``value``)."""

    start: date
    end: date
    group: Grouping = Grouping.DAY
    campaign: str | None = None
    dim: Grouping | None = None
    value: str | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"report range: end {self.end} is before start {self.start}")
        if (self.dim is None) != (self.value is None):
            raise ValueError("report filter: give both a breakdown and its value, or neither")
        if self.dim is not None and self.dim not in _DIM_OF:
            raise ValueError(f"report filter: cannot filter by {self.dim.value}")
        if self.dim is not None and self.group in _DIM_OF:
            raise ValueError("report filter: a filtered report groups by day, hour or campaign")


def _hour_floor(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _runs(hours: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted UTC hours -> [lo, hi) ranges; hours at most a day apart share a range."""
    out: list[tuple[datetime, datetime]] = []
    for h in sorted(set(hours)):
        if out and h - out[-1][1] <= timedelta(days=1):
            out[-1] = (out[-1][0], h + timedelta(hours=1))
        else:
            out.append((h, h + timedelta(hours=1)))
    return out


class ReportStore:
    """The rollup and the queries, on the dialer's SQL engine."""

    def __init__(self, engine: AsyncEngine, tz: tzinfo) -> None:
        self._engine = engine
        self._tz = tz
        self._pg = engine.dialect.name == "postgresql"
        self._has_complaints: bool | None = None

    @property
    def tz(self) -> tzinfo:
        return self._tz

    async def create_schema(self) -> None:
        """The rollup tables and the attempt-log indexes the refresh reads by."""
        async with self._engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(
                text(
                    "CREATE INDEX IF NOT EXISTS ix_dialer_attempts_updated "
                    "ON dialer_attempts (updated_at)"
                )
            )
            await conn.execute(
                text(
                    "CREATE INDEX IF NOT EXISTS ix_dialer_attempts_created "
                    "ON dialer_attempts (created_at)"
                )
            )

    async def _complaints_known(self, conn: AsyncConnection) -> bool:
        if self._has_complaints is None:

            def has(sync_conn: Any) -> bool:
                insp = inspect(sync_conn)
                return all(
                    insp.has_table(t)
                    for t in ("rec_complaints", "rec_complaint_recordings", "rec_recordings")
                )

            self._has_complaints = await conn.run_sync(has)
        return self._has_complaints

    # --- refresh ----------------------------------------------------------------------------

    def _hour_sql(self, column: str) -> str:
        if self._pg:
            return f"date_trunc('hour', {column} AT TIME ZONE 'UTC')"
        return f"strftime('%Y-%m-%d %H:00:00', {column})"

    def _parse_hour(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return _hour_floor(value if value.tzinfo else value.replace(tzinfo=UTC))
        return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)

    async def refresh(self, *, full: bool = False) -> int:
        """Recompute the hours that changed since the last refresh; the number of UTC hours
        recomputed. ``full`` rebuilds everything."""
        async with self._engine.begin() as conn:
            state = (
                await conn.execute(select(rollup_state).where(rollup_state.c.name == "attempts"))
            ).first()
            watermark = None if full or state is None else state.watermark
            last_complaint = 0 if full or state is None else int(state.complaint_id)
            hours, new_mark = await self._touched(conn, watermark)
            new_complaint = last_complaint
            if await self._complaints_known(conn):
                more, new_complaint = await self._complained(conn, last_complaint)
                hours |= more
            runs = _runs(hours)
            for lo, hi in runs:
                await self._recompute(conn, lo, hi)
            values = {
                "watermark": new_mark or watermark,
                "complaint_id": max(new_complaint, last_complaint),
            }
            if state is None:
                await conn.execute(rollup_state.insert().values(name="attempts", **values))
            else:
                await conn.execute(
                    rollup_state.update().where(rollup_state.c.name == "attempts").values(**values)
                )
        return sum(int((hi - lo) / timedelta(hours=1)) for lo, hi in runs)

    async def _touched(
        self, conn: AsyncConnection, watermark: datetime | None
    ) -> tuple[set[datetime], datetime | None]:
        where = ""
        params: dict[str, Any] = {}
        if watermark is not None:
            where = "WHERE updated_at > :since"
            params["since"] = watermark - OVERLAP
        hour = self._hour_sql("created_at")
        rows = (
            await conn.execute(
                _timed(
                    f"SELECT {hour} AS h, MAX(updated_at) AS m FROM dialer_attempts {where} "
                    "GROUP BY 1",
                    *params,
                ),
                params,
            )
        ).all()
        hours = {self._parse_hour(r.h) for r in rows}
        marks = [self._parse_hour_exact(r.m) for r in rows if r.m is not None]
        return hours, max(marks) if marks else None

    def _parse_hour_exact(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)

    async def _complained(self, conn: AsyncConnection, after: int) -> tuple[set[datetime], int]:
        hour = self._hour_sql("a.created_at")
        rows = (
            await conn.execute(
                text(
                    f"SELECT DISTINCT {hour} AS h FROM rec_complaint_recordings cr "
                    "JOIN rec_recordings r ON r.id = cr.recording_id "
                    "JOIN dialer_attempts a ON a.attempt_id = r.attempt_id "
                    "WHERE cr.complaint_id > :after"
                ),
                {"after": after},
            )
        ).all()
        top = (
            await conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM rec_complaints"))
        ).scalar_one()
        return {self._parse_hour(r.h) for r in rows}, int(top)

    def _local_sql(self, lo: datetime) -> tuple[str, str]:
        if self._pg:
            local = "(a.created_at AT TIME ZONE :zone)"
            return f"to_char({local}, 'YYYY-MM-DD')", f"CAST(EXTRACT(HOUR FROM {local}) AS INTEGER)"
        offset = lo.astimezone(self._tz).utcoffset() or timedelta(0)
        shift = f"'{int(offset.total_seconds() // 60):+d} minutes'"
        return (
            f"strftime('%Y-%m-%d', a.created_at, {shift})",
            f"CAST(strftime('%H', a.created_at, {shift}) AS INTEGER)",
        )

    async def _recompute(self, conn: AsyncConnection, lo: datetime, hi: datetime) -> None:
        first = lo.astimezone(self._tz)
        last = (hi - timedelta(hours=1)).astimezone(self._tz)
        d0, h0 = first.date().isoformat(), first.hour
        d1, h1 = last.date().isoformat(), last.hour
        await conn.execute(
            text(
                "DELETE FROM report_rollup WHERE (day > :d0 OR (day = :d0 AND hour >= :h0)) "
                "AND (day < :d1 OR (day = :d1 AND hour <= :h1))"
            ),
            {"d0": d0, "h0": h0, "d1": d1, "h1": h1},
        )
        day_sql, hour_sql = self._local_sql(lo)
        complaints = await self._complaints_known(conn)
        join_k = (
            f"LEFT JOIN ({_COMPLAINTS_SQL}) k ON k.attempt_id = a.attempt_id" if complaints else ""
        )
        counts = dict(_COUNTS_SQL)
        if not complaints:
            counts["complaints"] = "0"
        names = ", ".join(COUNT_FIELDS)
        exprs = ", ".join(counts[n] for n in COUNT_FIELDS)
        params: dict[str, Any] = {"lo": lo, "hi": hi}
        if self._pg:
            params["zone"] = str(self._tz)
        for dim in DIMS:
            value = _VALUE_SQL[dim]
            needs_lead = dim in ("list", "cid")
            joins = ""
            if needs_lead:
                joins = (
                    "LEFT JOIN leads l ON l.campaign = a.campaign AND l.number_key = a.number "
                    "LEFT JOIN lead_lists ll ON ll.campaign = a.campaign "
                    "AND ll.number_key = a.number "
                    "LEFT JOIN campaigns c ON c.name = a.campaign "
                )
            where = "a.created_at >= :lo AND a.created_at < :hi"
            if dim == "agent":
                where += " AND a.agent_id IS NOT NULL"
            await conn.execute(
                _timed(
                    f"INSERT INTO report_rollup (day, hour, campaign, dim, value, {names}) "
                    f"SELECT {day_sql}, {hour_sql}, a.campaign, '{dim}', {value}, {exprs} "
                    f"FROM dialer_attempts a {joins}{join_k} WHERE {where} "
                    f"GROUP BY 1, 2, 3, 5",
                    "lo",
                    "hi",
                ),
                params,
            )
        # Each agent's day from its hours (the whole local days the range touches).
        days = {"d0": d0, "d1": d1}
        sums = ", ".join(f"SUM({n})" for n in COUNT_FIELDS)
        await conn.execute(
            text("DELETE FROM report_rollup WHERE dim = 'agentday' AND day >= :d0 AND day <= :d1"),
            days,
        )
        await conn.execute(
            text(
                f"INSERT INTO report_rollup (day, hour, campaign, dim, value, {names}) "
                f"SELECT day, -1, campaign, 'agentday', value, {sums} FROM report_rollup "
                "WHERE dim = 'agent' AND day >= :d0 AND day <= :d1 GROUP BY day, campaign, value"
            ),
            days,
        )

    # --- queries ----------------------------------------------------------------------------

    async def report(self, q: ReportQuery) -> list[ReportRow]:
        """The rows of ``q``, ordered by their key, with the appendix-4 model of each."""
        r = rollup
        dim = _DIM_OF.get(q.group, "all")
        if q.dim is not None:
            dim = _DIM_OF[q.dim]
        if dim == "agent" and q.group is not Grouping.HOUR:
            dim = "agentday"  # whole days are enough: one row per agent and day
        key_col: Any = {
            Grouping.TOTAL: func.min(r.c.day),
            Grouping.DAY: r.c.day,
            Grouping.HOUR: r.c.hour,
            Grouping.CAMPAIGN: r.c.campaign,
            Grouping.AGENT: r.c.value,
            Grouping.LIST: r.c.value,
            Grouping.CALLER_ID: r.c.value,
        }[q.group]
        sums = [func.sum(getattr(r.c, n)) for n in COUNT_FIELDS]
        stmt = select(key_col.label("k"), *sums).where(
            (r.c.dim == dim) & (r.c.day >= q.start.isoformat()) & (r.c.day <= q.end.isoformat())
        )
        if q.campaign is not None:
            stmt = stmt.where(r.c.campaign == q.campaign)
        if q.value is not None:
            stmt = stmt.where(r.c.value == q.value)
        if q.group is not Grouping.TOTAL:
            stmt = stmt.group_by(key_col).order_by(key_col)
        seats = await self._seats(q)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        out: list[ReportRow] = []
        for row in rows:
            if row[1] is None:
                continue
            counts = counts_of(row[1:])
            key = "total" if q.group is Grouping.TOTAL else str(row.k)
            if q.group is Grouping.HOUR:
                key = f"{int(row.k):02d}"
            seat = seats.get(key) if seats is not None else None
            if q.group is Grouping.AGENT:
                seat = 1
            out.append(ReportRow(key, counts, EfficiencyModel.of(counts, seat)))
        return out

    async def _seats(self, q: ReportQuery) -> dict[str, int] | None:
        """Agents with at least one call, per row key; None where the grouping cannot say."""
        if q.group in (Grouping.LIST, Grouping.CALLER_ID, Grouping.AGENT) or q.dim is not None:
            return None
        if q.group is Grouping.HOUR and (q.end - q.start).days > 31:
            return None  # distinct agents per hour of day over months: not a useful figure
        r = rollup
        key_col: Any = {
            Grouping.TOTAL: None,
            Grouping.DAY: r.c.day,
            Grouping.HOUR: r.c.hour,
            Grouping.CAMPAIGN: r.c.campaign,
        }[q.group]
        seats = func.count(func.distinct(r.c.value))
        cols = [seats] if key_col is None else [key_col, seats]
        source = "agent" if q.group is Grouping.HOUR else "agentday"
        stmt = select(*cols).where(
            (r.c.dim == source) & (r.c.day >= q.start.isoformat()) & (r.c.day <= q.end.isoformat())
        )
        if q.campaign is not None:
            stmt = stmt.where(r.c.campaign == q.campaign)
        if key_col is not None:
            stmt = stmt.group_by(key_col)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        if key_col is None:
            return {"total": int(rows[0][0])} if rows else {}
        if q.group is Grouping.HOUR:
            return {f"{int(k):02d}": int(n) for k, n in rows}
        return {str(k): int(n) for k, n in rows}

    async def hourly(
        self,
        start: date,
        end: date,
        *,
        campaign: str | None = None,
        dim: str = "all",
        value: str | None = None,
    ) -> list[tuple[str, int, Counts]]:
        """(day, hour, counts) for every local hour with calls, oldest first: the series
        anomaly detection reads."""
        r = rollup
        sums = [func.sum(getattr(r.c, n)) for n in COUNT_FIELDS]
        stmt = select(r.c.day, r.c.hour, *sums).where(
            (r.c.dim == dim) & (r.c.day >= start.isoformat()) & (r.c.day <= end.isoformat())
        )
        if campaign is not None:
            stmt = stmt.where(r.c.campaign == campaign)
        if value is not None:
            stmt = stmt.where(r.c.value == value)
        stmt = stmt.group_by(r.c.day, r.c.hour).order_by(r.c.day, r.c.hour)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [(str(row[0]), int(row[1]), counts_of(row[2:])) for row in rows]

    async def breakdown(
        self,
        days: Sequence[str],
        hours: Sequence[int] | None,
        dim: str,
        *,
        campaign: str | None = None,
    ) -> dict[str, Counts]:
        """Counts per value of ``dim`` ('agent', 'list', 'cid', or 'hour') over the given
        local days (and hours): the drill-down of an anomaly."""
        r = rollup
        sums = [func.sum(getattr(r.c, n)) for n in COUNT_FIELDS]
        key: Any = r.c.hour if dim == "hour" else r.c.value
        stmt = select(key, *sums).where(
            (r.c.dim == ("all" if dim == "hour" else dim)) & r.c.day.in_(list(days))
        )
        if hours is not None:
            stmt = stmt.where(r.c.hour.in_(list(hours)))
        if campaign is not None:
            stmt = stmt.where(r.c.campaign == campaign)
        stmt = stmt.group_by(key)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {
            (f"{int(row[0]):02d}时" if dim == "hour" else str(row[0])): counts_of(row[1:])
            for row in rows
        }


def _timed(sql: str, *names: str) -> Any:
    """``text(sql)`` whose named parameters are instants (bound as ``UtcDateTime``)."""
    return text(sql).bindparams(*(bindparam(n, type_=UtcDateTime()) for n in names))


async def keep_rollup(store: ReportStore, stop: asyncio.Event, every: float = 30.0) -> None:
    """Refresh the rollup every ``every`` seconds until ``stop`` is set (``dialer serve``).

    A refresh that fails (database restarting) is logged and tried again at the next
    tick: the rollup is recomputed from the attempt log, so nothing is lost meanwhile."""
    while not stop.is_set():
        try:
            await store.refresh()
        except (OperationalError, DBAPIError, OSError) as exc:
            logger.warning("report rollup refresh failed, retrying in %.0f s: %s", every, exc)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every):
                await stop.wait()
