"""The access audit log: append-only and hash-chained.

Every entry carries ``hash = SHA-256(canonical JSON of its fields + prev_hash)``
and the previous entry's hash, and a head row holds the last ``(seq, hash)``.
Appending locks the head row (concurrent appenders queue on it, on PostgreSQL and
SQLite alike), inserts the entry in the same transaction as the action it records,
and a database trigger advances the head row with the insert. ``verify`` recomputes the chain: an
edited entry breaks its own hash, a deleted one leaves a gap in ``seq`` and a
broken ``prev_hash`` link, a reordered pair breaks both, and a deleted tail
disagrees with the head row.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from recordings.model import AuditEntry, Outcome, Problem
from recordings.pii import mask_text
from recordings.schema import GENESIS_HASH, audit_head, audit_log, reader

MAX_TARGET = 200
MAX_REASON = 500


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean(value: str, limit: int) -> str:
    """Control characters (a NUL breaks PostgreSQL text) shown escaped, then truncated."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", value)[:limit]


def canonical_detail(detail: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(detail or {}), sort_keys=True, separators=(",", ":"), default=str)


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    role: str,
    action: str,
    target: str,
    reason: str,
    outcome: str,
    detail: str,
    prev_hash: str,
) -> str:
    body = json.dumps(
        [
            seq,
            at.astimezone(UTC).isoformat(),
            actor,
            role,
            action,
            target,
            reason,
            outcome,
            detail,
            prev_hash,
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


async def append(
    conn: AsyncConnection,
    *,
    actor: str,
    role: str,
    action: str,
    target: str = "",
    reason: str = "",
    outcome: Outcome = Outcome.OK,
    detail: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry inside the caller's transaction (commits or rolls back with it)."""
    when = (at or datetime.now(UTC)).astimezone(UTC)
    # The head row is locked here (FOR UPDATE on PostgreSQL; on SQLite the transaction's
    # BEGIN IMMEDIATE already holds the write lock) and advanced by the database's
    # AFTER INSERT trigger, so an append is two statements.
    head_row = (
        await conn.execute(select(audit_head).where(audit_head.c.id == 1).with_for_update())
    ).one()
    seq, prev = int(head_row.seq) + 1, str(head_row.hash)
    entry = AuditEntry(
        seq=seq,
        at=when,
        actor=clean(actor, 64),
        role=clean(role, 16),
        action=clean(action, 32),
        target=clean(target, MAX_TARGET),
        reason=clean(mask_text(reason), MAX_REASON),
        outcome=Outcome(outcome),
        detail=canonical_detail(detail),
        prev_hash=prev,
        hash="",
    )
    digest = _hash_of(entry)
    await conn.execute(
        audit_log.insert().values(
            seq=entry.seq,
            at=entry.at,
            actor=entry.actor,
            role=entry.role,
            action=entry.action,
            target=entry.target,
            reason=entry.reason,
            outcome=entry.outcome.value,
            detail=entry.detail,
            prev_hash=entry.prev_hash,
            hash=digest,
        )
    )
    return replace(entry, hash=digest)


def _hash_of(e: AuditEntry) -> str:
    return entry_hash(
        seq=e.seq,
        at=e.at,
        actor=e.actor,
        role=e.role,
        action=e.action,
        target=e.target,
        reason=e.reason,
        outcome=e.outcome.value,
        detail=e.detail,
        prev_hash=e.prev_hash,
    )


async def append_alone(engine: AsyncEngine, **kwargs: Any) -> AuditEntry:
    """Append in a transaction of its own (denials: nothing else happened)."""
    async with engine.begin() as conn:
        return await append(conn, **kwargs)


def _row_entry(row: Any) -> AuditEntry:
    return AuditEntry(
        seq=int(row.seq),
        at=row.at,
        actor=row.actor,
        role=row.role,
        action=row.action,
        target=row.target,
        reason=row.reason,
        outcome=Outcome(row.outcome),
        detail=row.detail,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


async def entries(
    engine: AsyncEngine, *, after: int = 0, upto: int | None = None, batch: int = 2000
) -> AsyncIterator[AuditEntry]:
    """Every entry in ``seq`` order (``after < seq <= upto``), read in batches."""
    last = after
    while True:
        async with reader(engine).connect() as conn:
            bound = [] if upto is None else [audit_log.c.seq <= upto]
            result = await conn.execute(
                select(audit_log)
                .where(audit_log.c.seq > last, *bound)
                .order_by(audit_log.c.seq)
                .limit(batch)
            )
            rows = result.all()
        if not rows:
            return
        for row in rows:
            yield _row_entry(row)
        last = int(rows[-1].seq)


async def head(engine: AsyncEngine) -> tuple[int, str] | None:
    """(seq, hash) of the last entry as the head row records it. Keeping this pair
    somewhere else (a ticket, a print-out) is what detects a rewritten tail later."""
    async with reader(engine).connect() as conn:
        row = (await conn.execute(select(audit_head).where(audit_head.c.id == 1))).first()
    return None if row is None else (int(row.seq), str(row.hash))


async def tail(engine: AsyncEngine, limit: int = 50) -> list[AuditEntry]:
    async with reader(engine).connect() as conn:
        result = await conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit))
        return [_row_entry(r) for r in reversed(result.all())]


async def verify(engine: AsyncEngine) -> list[Problem]:
    """Recompute the chain; every problem names the entry (``seq``) where it shows.

    The head row is read first and the chain checked up to it, so entries appended
    while the check runs are left for the next check rather than reported."""
    problems: list[Problem] = []
    expected_seq = 1
    prev = GENESIS_HASH
    async with reader(engine).connect() as conn:
        head = (await conn.execute(select(audit_head).where(audit_head.c.id == 1))).first()
    upto = None if head is None else int(head.seq)
    async for entry in entries(engine, upto=upto):
        where = f"seq {entry.seq}"
        if entry.seq != expected_seq:
            problems.append(
                Problem("gap", where, f"expected seq {expected_seq}: entries deleted or reordered")
            )
        if entry.prev_hash != prev:
            problems.append(
                Problem(
                    "link",
                    where,
                    "prev_hash does not match the previous entry's hash "
                    "(an entry before it was deleted, reordered or edited)",
                )
            )
        recomputed = _hash_of(entry)
        if recomputed != entry.hash:
            problems.append(Problem("edited", where, "entry content does not match its hash"))
        prev = entry.hash
        expected_seq = entry.seq + 1
    if head is None:
        problems.append(Problem("head", "head", "the audit head row is missing"))
    elif int(head.seq) != expected_seq - 1 or head.hash != prev:
        problems.append(
            Problem(
                "head",
                f"seq {int(head.seq)}",
                f"head says seq {int(head.seq)}, the log ends at seq {expected_seq - 1}: "
                "entries at the end were deleted, or the head was edited",
            )
        )
    return problems
