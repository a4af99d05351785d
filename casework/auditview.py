"""The audit view: who searched, played or exported what and why, and whether the log holds.

Reads the recordings area's hash-chained audit log with filters (actor, action,
target, outcome, time range; newest first, paged by ``seq``), and reports the
chain's state: verified end to end against the newest signed anchor this
deployment writes to a file (``DIALER_AUDIT_ANCHOR=file:PATH``). Reasons and
details are already masked when written; they are masked again on the way out.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from compliance.masking import mask_text
from recordings import audit
from recordings.anchor import AnchorError, read_anchors
from recordings.model import AuditEntry, Outcome, Problem
from recordings.schema import audit_log, reader
from recordings.service import RecordingsService

MAX_LIMIT = 500
#: The actions people look for in the view, by what they did.
ACCESS_ACTIONS = ("search", "play", "view", "export")


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None  # exact, or a prefix ending in "." ("complaint.")
    target: str | None = None  # substring
    outcome: Outcome | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_seq: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class ChainStatus:
    verified: bool
    problems: tuple[Problem, ...]
    end_seq: int
    end_hash: str
    last_anchor: audit.AnchorPoint | None
    anchor_note: str


async def find(service: RecordingsService, f: AuditFilter) -> list[AuditEntry]:
    """Matching entries, newest first (``before_seq`` pages back)."""
    cond = []
    if f.actor:
        cond.append(audit_log.c.actor == f.actor)
    if f.action:
        if f.action.endswith("."):
            cond.append(audit_log.c.action.startswith(f.action, autoescape=True))
        else:
            cond.append(audit_log.c.action == f.action)
    if f.target:
        cond.append(audit_log.c.target.contains(f.target, autoescape=True))
    if f.outcome is not None:
        cond.append(audit_log.c.outcome == f.outcome.value)
    if f.since is not None:
        cond.append(audit_log.c.at >= f.since)
    if f.until is not None:
        cond.append(audit_log.c.at < f.until)
    if f.before_seq is not None:
        cond.append(audit_log.c.seq < f.before_seq)
    limit = max(1, min(f.limit, MAX_LIMIT))
    async with reader(service.engine).connect() as conn:
        rows = (
            await conn.execute(
                select(audit_log).where(*cond).order_by(audit_log.c.seq.desc()).limit(limit)
            )
        ).all()
    return [
        AuditEntry(
            seq=int(r.seq),
            at=r.at,
            actor=r.actor,
            role=r.role,
            action=r.action,
            target=mask_text(r.target),
            reason=mask_text(r.reason),
            outcome=Outcome(r.outcome),
            detail=mask_text(r.detail),
            prev_hash=r.prev_hash,
            hash=r.hash,
        )
        for r in rows
    ]


async def chain_status(service: RecordingsService) -> ChainStatus:
    """Verify the whole chain, against the newest anchor when anchors go to a file."""
    target = service.config.anchor_target
    points: list[audit.AnchorPoint] = []
    problems: list[Problem] = []
    note = "no anchor configured (DIALER_AUDIT_ANCHOR)"
    if target.startswith("syslog"):
        note = "anchors go to syslog: check them with dialer audit verify --anchor"
    elif target:
        path = Path(target.removeprefix("file:"))
        try:
            points, problems = await asyncio.to_thread(read_anchors, path, service.signer.public)
            note = f"{len(points)} anchor(s) in {path.name}"
        except AnchorError as exc:
            note = str(exc)
            problems.append(Problem("anchor", path.name, str(exc)))
    problems.extend(await audit.verify(service.engine, anchors=points))
    seq, digest = await audit.last_entry(service.engine)
    return ChainStatus(
        verified=not problems,
        problems=tuple(problems),
        end_seq=seq,
        end_hash=digest,
        last_anchor=max(points, key=lambda p: p.seq) if points else None,
        anchor_note=note,
    )
