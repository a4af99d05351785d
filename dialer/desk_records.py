"""What the agents' desk records beside the attempt log (SQL, the dialer's engine).

- ``pause_codes``: the reasons an agent may pause for, defined by supervisors
  (a few defaults are written when the table is first made);
- ``agent_pauses``: every pause with its code, start and end (the floor and the
  reports read them);
- ``call_answers``: per call, the hesitation/refusal questionnaire's answers
  (art. 22 (3)) and the items of the order confirmation (art. 23) the agent
  ticked, stored with the attempt;
- ``personal_callbacks``: a callback promised by one agent ("me only") or by
  the team ("anyone"), its due time and, for "me only", the end of the grace
  period after which anyone may take it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from compliance.database import UtcDateTime

metadata = MetaData()

pause_codes = Table(
    "dialer_pause_codes",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("label", String(64), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("position", Integer, nullable=False, default=0),  # the order agents see them in
    Column("created_by", String(64), nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
)

agent_pauses = Table(
    "dialer_agent_pauses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agent_id", String(64), nullable=False),
    Column("campaign", String(128), nullable=False),
    Column("code", String(32), nullable=False),
    Column("label", String(64), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
)
Index("ix_dialer_agent_pauses_agent", agent_pauses.c.agent_id, agent_pauses.c.started_at)

call_answers = Table(
    "dialer_call_answers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("attempt_id", String(64), nullable=False),
    Column("agent_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # questionnaire / confirmation
    Column("item", String(32), nullable=False),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
)
Index("ix_dialer_call_answers_attempt", call_answers.c.attempt_id)

personal_callbacks = Table(
    "dialer_callbacks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("lead_id", String(64), nullable=False),
    Column("campaign", String(128), nullable=False),
    Column("attempt_id", String(64), nullable=False),  # the call that promised it
    Column("owner", String(64), nullable=False, default=""),  # "" = anyone
    Column("product", String(128), nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("grace_until", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("done_at", UtcDateTime, nullable=True),
    Column("done_attempt", String(64), nullable=True),
)
Index("ix_dialer_callbacks_owner", personal_callbacks.c.owner, personal_callbacks.c.due_at)

DEFAULT_PAUSE_CODES: tuple[tuple[str, str], ...] = (
    ("break", "休息"),
    ("lunch", "用餐"),
    ("training", "培训"),
    ("meeting", "会议"),
    ("coaching", "辅导"),
)
_CODE_RE = re.compile(r"[^\W_][\w.-]{0,31}")


class DeskInputError(ValueError):
    """Bad input for a desk record; the message names the field."""


@dataclass(frozen=True, slots=True)
class PauseCode:
    code: str
    label: str
    active: bool = True


@dataclass(frozen=True, slots=True)
class PauseRecord:
    agent_id: str
    campaign: str
    code: str
    label: str
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class Answer:
    kind: str
    item: str
    question: str
    answer: str


@dataclass(frozen=True, slots=True)
class Callback:
    id: int
    lead_id: str
    campaign: str
    attempt_id: str
    owner: str
    product: str
    due_at: datetime
    grace_until: datetime
    done_at: datetime | None = None


class DeskRecords:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_schema(self, now: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            count = (await conn.execute(select(func.count()).select_from(pause_codes))).scalar()
            if not count:
                await conn.execute(
                    pause_codes.insert(),
                    [
                        {"code": c, "label": lbl, "active": True, "position": i, "created_at": now}
                        for i, (c, lbl) in enumerate(DEFAULT_PAUSE_CODES)
                    ],
                )

    # ------------------------------------------------------------ pause codes
    async def pause_codes(self, *, active_only: bool = True) -> list[PauseCode]:
        query = select(pause_codes).order_by(pause_codes.c.position, pause_codes.c.code)
        if active_only:
            query = query.where(pause_codes.c.active.is_(True))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [PauseCode(r.code, r.label, bool(r.active)) for r in rows]

    async def define_pause_code(self, code: str, label: str, by: str, now: datetime) -> PauseCode:
        """Add a pause code, or rename / re-activate one (a supervisor's action)."""
        code, label = code.strip(), label.strip()
        if not _CODE_RE.fullmatch(code):
            raise DeskInputError("code: 1-32 letters (any script), digits, '_', '-' or '.'")
        if not label or len(label) > 64:
            raise DeskInputError("label: 1-64 characters")
        async with self._engine.begin() as conn:
            done = await conn.execute(
                update(pause_codes)
                .where(pause_codes.c.code == code)
                .values(label=label, active=True)
            )
            if not done.rowcount:
                last = (await conn.execute(select(func.max(pause_codes.c.position)))).scalar()
                await conn.execute(
                    pause_codes.insert().values(
                        code=code,
                        label=label,
                        active=True,
                        position=(last or 0) + 1,
                        created_by=by,
                        created_at=now,
                    )
                )
        return PauseCode(code, label)

    async def retire_pause_code(self, code: str) -> bool:
        async with self._engine.begin() as conn:
            done = await conn.execute(
                update(pause_codes).where(pause_codes.c.code == code).values(active=False)
            )
        return bool(done.rowcount)

    async def pause_code(self, code: str) -> PauseCode | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(pause_codes).where(pause_codes.c.code == code))
            ).first()
        return None if row is None else PauseCode(row.code, row.label, bool(row.active))

    # ------------------------------------------------------------ pauses
    async def pause_started(
        self, agent_id: str, campaign: str, code: PauseCode, at: datetime
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(agent_pauses)
                .where(agent_pauses.c.agent_id == agent_id, agent_pauses.c.ended_at.is_(None))
                .values(ended_at=at)
            )
            await conn.execute(
                agent_pauses.insert().values(
                    agent_id=agent_id,
                    campaign=campaign,
                    code=code.code,
                    label=code.label,
                    started_at=at,
                )
            )

    async def pause_ended(self, agent_id: str, at: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(agent_pauses)
                .where(agent_pauses.c.agent_id == agent_id, agent_pauses.c.ended_at.is_(None))
                .values(ended_at=at)
            )

    async def pauses(self, agent_id: str | None = None, limit: int = 100) -> list[PauseRecord]:
        query = select(agent_pauses).order_by(agent_pauses.c.id.desc()).limit(limit)
        if agent_id is not None:
            query = query.where(agent_pauses.c.agent_id == agent_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            PauseRecord(r.agent_id, r.campaign, r.code, r.label, r.started_at, r.ended_at)
            for r in rows
        ]

    # ------------------------------------------------------------ answers with the call
    async def record_answers(
        self, attempt_id: str, agent_id: str, answers: Sequence[Answer], at: datetime
    ) -> None:
        if not answers:
            return
        async with self._engine.begin() as conn:
            await conn.execute(
                call_answers.insert(),
                [
                    {
                        "attempt_id": attempt_id,
                        "agent_id": agent_id,
                        "kind": a.kind,
                        "item": a.item[:32],
                        "question": a.question[:2000],
                        "answer": a.answer[:2000],
                        "at": at,
                    }
                    for a in answers
                ],
            )

    async def answers(self, attempt_id: str) -> list[Answer]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(call_answers)
                    .where(call_answers.c.attempt_id == attempt_id)
                    .order_by(call_answers.c.id)
                )
            ).all()
        return [Answer(r.kind, r.item, r.question, r.answer) for r in rows]

    # ------------------------------------------------------------ callbacks
    async def add_callback(self, cb: Callback, at: datetime) -> Callback:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                personal_callbacks.insert()
                .values(
                    lead_id=cb.lead_id,
                    campaign=cb.campaign,
                    attempt_id=cb.attempt_id,
                    owner=cb.owner,
                    product=cb.product,
                    due_at=cb.due_at,
                    grace_until=cb.grace_until,
                    created_at=at,
                )
                .returning(personal_callbacks.c.id)
            )
            new_id = int(result.scalar_one())
        return Callback(
            new_id,
            cb.lead_id,
            cb.campaign,
            cb.attempt_id,
            cb.owner,
            cb.product,
            cb.due_at,
            cb.grace_until,
        )

    async def callbacks_for(self, owner: str, *, open_only: bool = True) -> list[Callback]:
        query = (
            select(personal_callbacks)
            .where(personal_callbacks.c.owner == owner)
            .order_by(personal_callbacks.c.due_at)
        )
        if open_only:
            query = query.where(personal_callbacks.c.done_at.is_(None))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_callback(r) for r in rows]

    async def open_callback_for_lead(self, lead_id: str) -> Callback | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(personal_callbacks)
                    .where(
                        personal_callbacks.c.lead_id == lead_id,
                        personal_callbacks.c.done_at.is_(None),
                    )
                    .order_by(personal_callbacks.c.id.desc())
                )
            ).first()
        return None if row is None else _callback(row)

    async def callback_done(self, callback_id: int, attempt_id: str, at: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(personal_callbacks)
                .where(personal_callbacks.c.id == callback_id)
                .values(done_at=at, done_attempt=attempt_id)
            )

    async def callback(self, callback_id: int) -> Callback | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(personal_callbacks).where(personal_callbacks.c.id == callback_id)
                )
            ).first()
        return None if row is None else _callback(row)


def _callback(row: Any) -> Callback:
    return Callback(
        int(row.id),
        row.lead_id,
        row.campaign,
        row.attempt_id,
        row.owner,
        row.product,
        row.due_at,
        row.grace_until,
        row.done_at,
    )
