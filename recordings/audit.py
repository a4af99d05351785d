"""The access audit log: append-only and hash-chained.

Every entry carries ``hash = SHA-256(canonical JSON of its fields + prev_hash)``
and the previous entry's hash, and a head row holds the last ``(seq, hash)``.
Appending locks the head row (concurrent appenders queue on it, on PostgreSQL and
SQLite alike), inserts the entry in the same transaction as the action it records,
and a database trigger advances the head row with the insert; the database's guards
(``recordings.schema``) refuse every other change to either table. ``verify``
recomputes the chain from the first entry to the last: an edited entry breaks its
own hash, a deleted one leaves a gap in ``seq`` and a broken ``prev_hash`` link, a
reordered pair breaks both, a deleted tail disagrees with the head row, and a tail
rewritten together with its head disagrees with the signed anchors kept outside
the database (``recordings.anchor``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from compliance.clock import utcnow
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
    when = (at or utcnow()).astimezone(UTC)
    # The head row is locked here (FOR UPDATE on PostgreSQL; on SQLite the transaction's
    # BEGIN IMMEDIATE already holds the write lock) and advanced by the database's
    # AFTER INSERT trigger, so an append is two statements.
    head_row = (
        await conn.execute(select(audit_head).where(audit_head.c.id == 1).with_for_update())
    ).first()
    if head_row is None:
        # The head row was removed behind the guards' back: the log itself says where it
        # ends (verification reports the missing head).
        head_row = (
            await conn.execute(
                select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
            )
        ).first()
    seq = 1 if head_row is None else int(head_row.seq) + 1
    prev = GENESIS_HASH if head_row is None else str(head_row.hash)
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


async def entries_for(
    engine: AsyncEngine, *, action: str, target: str, batch: int = 500
) -> AsyncIterator[AuditEntry]:
    """The entries of one action on one target, oldest first (a scan: evidence checks are rare)."""
    last = 0
    while True:
        async with reader(engine).connect() as conn:
            rows = (
                await conn.execute(
                    select(audit_log)
                    .where(
                        audit_log.c.seq > last,
                        audit_log.c.action == action,
                        audit_log.c.target == target,
                    )
                    .order_by(audit_log.c.seq)
                    .limit(batch)
                )
            ).all()
        if not rows:
            return
        for row in rows:
            yield _row_entry(row)
        last = int(rows[-1].seq)


def entry_is_intact(entry: AuditEntry) -> bool:
    """Does the entry still match its own hash?"""
    return _hash_of(entry) == entry.hash


async def head(engine: AsyncEngine) -> tuple[int, str] | None:
    """(seq, hash) of the last entry as the head row records it (None: the row is missing)."""
    async with reader(engine).connect() as conn:
        row = (await conn.execute(select(audit_head).where(audit_head.c.id == 1))).first()
    return None if row is None else (int(row.seq), str(row.hash))


async def tail(engine: AsyncEngine, limit: int = 50) -> list[AuditEntry]:
    async with reader(engine).connect() as conn:
        result = await conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit))
        return [_row_entry(r) for r in reversed(result.all())]


@dataclass(frozen=True, slots=True)
class AnchorPoint:
    """A (seq, hash) pair kept outside the database (a checked, signed anchor line)."""

    seq: int
    hash: str
    at: str
    where: str  # e.g. "anchors.log line 12"


async def last_entry(engine: AsyncEngine) -> tuple[int, str]:
    """(seq, hash) of the log's last entry, read from the log itself ((0, genesis) if empty)."""
    async with reader(engine).connect() as conn:
        row = (
            await conn.execute(
                select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
            )
        ).first()
    return (0, GENESIS_HASH) if row is None else (int(row.seq), str(row.hash))


@dataclass
class _Walk:
    """The state of a walk along the chain."""

    anchors: Mapping[int, Sequence[AnchorPoint]]
    problems: list[Problem] = field(default_factory=list)
    expected_seq: int = 1
    prev: str = GENESIS_HASH
    last_seq: int = 0

    def check(self, entry: AuditEntry) -> None:
        where = f"seq {entry.seq}"
        if entry.seq != self.expected_seq:
            missing = (
                f"seq {self.expected_seq}"
                if entry.seq == self.expected_seq + 1
                else f"seq {self.expected_seq}..{entry.seq - 1}"
            )
            self.problems.append(
                Problem(
                    "gap",
                    where,
                    f"expected seq {self.expected_seq}: {missing} deleted, or entries reordered",
                )
            )
        if entry.prev_hash != self.prev:
            self.problems.append(
                Problem(
                    "link",
                    where,
                    "prev_hash does not match the previous entry's hash "
                    "(an entry before it was deleted, reordered or edited)",
                )
            )
        if _hash_of(entry) != entry.hash:
            self.problems.append(Problem("edited", where, "entry content does not match its hash"))
        for anchor in self.anchors.get(entry.seq, ()):
            if anchor.hash != entry.hash:
                self.problems.append(
                    Problem(
                        "anchor",
                        where,
                        f"anchored at {anchor.at} ({anchor.where}) with hash "
                        f"{anchor.hash[:16]}..., "
                        f"the log now has {entry.hash[:16]}...: the log was rewritten since",
                    )
                )
        self.prev = entry.hash
        self.expected_seq = entry.seq + 1
        self.last_seq = max(self.last_seq, entry.seq)


async def verify(engine: AsyncEngine, *, anchors: Sequence[AnchorPoint] = ()) -> list[Problem]:
    """Recompute the whole chain, end to end; every problem names the entry (``seq``).

    The walk goes to the log's last entry, whatever the head row says; the head row is
    then checked against it (deleted, rolled back, or ahead of a log whose tail was
    dropped). ``anchors`` (signed heads kept outside the database) prove that nothing up to
    each of them was rewritten or dropped, which the log alone cannot: someone who can drop
    the guards can rewrite a tail and its head consistently."""
    by_seq: dict[int, list[AnchorPoint]] = {}
    for anchor in anchors:
        by_seq.setdefault(anchor.seq, []).append(anchor)
    walk = _Walk(by_seq)
    async for entry in entries(engine):
        walk.check(entry)
    head_row = None
    for _ in range(5):
        # Entries appended while the walk ran move the head past it: walk on to catch up.
        async with reader(engine).connect() as conn:
            head_row = (await conn.execute(select(audit_head).where(audit_head.c.id == 1))).first()
        if head_row is None or int(head_row.seq) <= walk.last_seq:
            break
        before = walk.last_seq
        async for entry in entries(engine, after=walk.last_seq):
            walk.check(entry)
        if walk.last_seq == before:
            break
    problems = walk.problems
    for anchor in anchors:
        if anchor.seq > walk.last_seq:
            problems.append(
                Problem(
                    "anchor",
                    f"seq {anchor.seq}",
                    f"anchored at {anchor.at} ({anchor.where}), but the log ends at seq "
                    f"{walk.last_seq}: entries {walk.last_seq + 1}..{anchor.seq} were dropped",
                )
            )
    if head_row is None:
        problems.append(
            Problem("head", "head", "the audit head row is missing (deleted behind the guards)")
        )
        return problems
    head_seq, head_hash = int(head_row.seq), str(head_row.hash)
    if head_seq > walk.last_seq:
        problems.append(
            Problem(
                "head",
                f"seq {walk.last_seq + 1}",
                f"head says seq {head_seq}, the log ends at seq {walk.last_seq}: "
                f"entries {walk.last_seq + 1}..{head_seq} at the end were deleted",
            )
        )
    elif head_seq < walk.last_seq:
        problems.append(
            Problem(
                "head",
                f"seq {head_seq + 1}",
                f"head says seq {head_seq}, but the log goes on to seq {walk.last_seq}: "
                "the head was rolled back",
            )
        )
    elif head_hash != walk.prev:
        problems.append(
            Problem(
                "head",
                f"seq {head_seq}",
                f"the head's hash differs from entry seq {head_seq}'s: the head was edited",
            )
        )
    return problems


class AccessAudit:
    """``identity.store.AuditTrail`` on this log: users, tokens, sign-ins and sessions are
    audited in the same hash chain as recordings and complaints."""

    async def record(
        self,
        conn: AsyncConnection,
        *,
        actor: str,
        role: str,
        action: str,
        target: str,
        reason: str,
        denied: bool = False,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        await append(
            conn,
            actor=actor,
            role=role,
            action=action,
            target=target,
            reason=reason,
            outcome=Outcome.DENIED if denied else Outcome.OK,
            detail=detail,
        )
