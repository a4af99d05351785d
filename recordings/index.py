"""The SQL recording index: insert, look up, search, legal holds and retention candidates.

Functions take an ``AsyncConnection`` so the caller decides the transaction (an
ingest and its audit entry, a complaint and its holds, commit together). Search
is keyset-paginated, newest first, and every filter is a bound parameter on an
indexed column: ``(number_hmac, started_at)``, ``started_at``,
``(agent, started_at)``, ``(campaign, started_at)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from recordings.model import ComplaintStatus, Origin, Recording, SearchPage, SearchQuery
from recordings.schema import complaint_recordings, complaints, recordings

MAX_PAGE = 500


def row_to_recording(row: Any) -> Recording:
    """A ``select(recordings)`` row (table column order) as a ``Recording``; unpacked by
    position because this runs for every row of every search."""
    (rid, name, attempt, campaign, agent, origin, _digest, masked, started, duration, fmt,
     size, sha, path, retain, hold, ingested) = row  # fmt: skip
    return Recording(
        id=int(rid),
        name=name,
        attempt_id=attempt,
        campaign=campaign,
        agent=agent,
        origin=Origin(origin),
        number_masked=masked,
        started_at=started,
        duration_ms=None if duration is None else int(duration),
        format=fmt,
        size=int(size),
        sha256=sha,
        path=path,
        retain_until=retain,
        legal_hold=bool(hold),
        ingested_at=ingested,
    )


async def get_by_name(conn: AsyncConnection, name: str) -> Recording | None:
    row = (await conn.execute(select(recordings).where(recordings.c.name == name))).first()
    return None if row is None else row_to_recording(row)


async def get_by_ids(conn: AsyncConnection, ids: Sequence[int]) -> list[Recording]:
    if not ids:
        return []
    result = await conn.execute(
        select(recordings).where(recordings.c.id.in_(list(ids))).order_by(recordings.c.started_at)
    )
    return [row_to_recording(r) for r in result]


async def insert(conn: AsyncConnection, values: dict[str, Any]) -> int:
    result = await conn.execute(recordings.insert().values(**values).returning(recordings.c.id))
    return int(result.scalar_one())


async def search(conn: AsyncConnection, query: SearchQuery) -> SearchPage:
    limit = max(1, min(query.limit, MAX_PAGE))
    conditions = []
    if query.number_hmac is not None:
        conditions.append(recordings.c.number_hmac == query.number_hmac)
    if query.since is not None:
        conditions.append(recordings.c.started_at >= query.since)
    if query.until is not None:
        conditions.append(recordings.c.started_at < query.until)
    if query.agent is not None:
        conditions.append(recordings.c.agent == query.agent)
    if query.campaign is not None:
        conditions.append(recordings.c.campaign == query.campaign)
    if query.complaint_id is not None:
        conditions.append(
            exists().where(
                complaint_recordings.c.recording_id == recordings.c.id,
                complaint_recordings.c.complaint_id == query.complaint_id,
            )
        )
    if query.before is not None:
        at, rid = query.before
        conditions.append(
            or_(
                recordings.c.started_at < at,
                and_(recordings.c.started_at == at, recordings.c.id < rid),
            )
        )
    stmt = (
        select(recordings)
        .where(*conditions)
        .order_by(recordings.c.started_at.desc(), recordings.c.id.desc())
        .limit(limit + 1)
    )
    rows = [row_to_recording(r) for r in await conn.execute(stmt)]
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = (rows[-1].started_at, rows[-1].id) if more and rows else None
    return SearchPage(tuple(rows), cursor)


async def link_open_complaints(
    conn: AsyncConnection, recording_id: int, number_hmac: str
) -> list[int]:
    """Link a new recording to every open complaint about its number and hold it."""
    result = await conn.execute(
        select(complaints.c.id).where(
            complaints.c.number_hmac == number_hmac,
            complaints.c.status == ComplaintStatus.OPEN.value,
        )
    )
    ids = [int(r) for r in result.scalars()]
    for cid in ids:
        await conn.execute(
            complaint_recordings.insert().values(complaint_id=cid, recording_id=recording_id)
        )
    if ids:
        await conn.execute(
            update(recordings).where(recordings.c.id == recording_id).values(legal_hold=True)
        )
    return ids


async def refresh_holds(conn: AsyncConnection, recording_ids: Sequence[int]) -> None:
    """Set ``legal_hold`` to whether each recording is linked to an open complaint."""
    if not recording_ids:
        return
    held = exists().where(
        complaint_recordings.c.recording_id == recordings.c.id,
        complaint_recordings.c.complaint_id == complaints.c.id,
        complaints.c.status == ComplaintStatus.OPEN.value,
    )
    await conn.execute(
        update(recordings).where(recordings.c.id.in_(list(recording_ids))).values(legal_hold=held)
    )


def _purgeable(now: datetime) -> Any:
    """Past retention and not linked to an open complaint (checked twice: the
    ``legal_hold`` flag and the links themselves, so a stale flag never releases evidence)."""
    open_link = exists().where(
        complaint_recordings.c.recording_id == recordings.c.id,
        complaint_recordings.c.complaint_id == complaints.c.id,
        complaints.c.status == ComplaintStatus.OPEN.value,
    )
    return and_(recordings.c.retain_until <= now, recordings.c.legal_hold.is_(False), ~open_link)


async def purge_candidates(conn: AsyncConnection, now: datetime, limit: int) -> list[Recording]:
    result = await conn.execute(
        select(recordings)
        .where(_purgeable(now))
        .order_by(recordings.c.retain_until, recordings.c.id)
        .limit(limit)
    )
    return [row_to_recording(r) for r in result]


async def count_purgeable(conn: AsyncConnection, now: datetime) -> int:
    result = await conn.execute(select(func.count()).select_from(recordings).where(_purgeable(now)))
    return int(result.scalar_one())


async def path_users(conn: AsyncConnection, sha256: str, path: str) -> int:
    """How many index rows share one stored file (the same content is stored once)."""
    result = await conn.execute(
        select(func.count())
        .select_from(recordings)
        .where(recordings.c.sha256 == sha256, recordings.c.path == path)
    )
    return int(result.scalar_one())
