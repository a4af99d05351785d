"""The dialer's attempt log in SQL: one row per dial attempt, written before the originate.

The row exists before ``POST /channels`` is sent, so events that beat the HTTP
reply still route, and a restarted dialer knows every call it may have placed
(the reconcile at start-up reads ``unfinished()``). The row also keeps what
the campaign figures need (answered, connected, abandoned, disposition) and
the recording name, the evidence of the call.

Stages: ``reserving`` (written, the gate not yet asked) -> ``refused`` (the gate
said no: never dialled) or ``originating`` (reserved, the originate may have
been sent) -> ``live`` (the channel exists) -> ``done``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from compliance.database import UtcDateTime
from dialer.attempt_model import UNFINISHED as UNFINISHED
from dialer.attempt_model import AttemptRecord as AttemptRecord
from dialer.attempt_model import Stage as Stage
from migrations import ensure_current

metadata = MetaData()

attempts_table = Table(
    "dialer_attempts",
    metadata,
    Column("attempt_id", String(64), primary_key=True),
    Column("campaign", String(128), nullable=False),
    Column("lead_id", String(64), nullable=False),
    Column("number", String(32), nullable=False),
    Column("product", String(128), nullable=False),
    Column("channel_id", String(80), nullable=False, unique=True),
    Column("stage", String(16), nullable=False),
    Column("phase", String(16), nullable=False),
    Column("outcome", String(16), nullable=True),
    Column("reasons", Text, nullable=False, default=""),
    Column("answered", Boolean, nullable=False, default=False),
    Column("connected", Boolean, nullable=False, default=False),
    Column("abandoned", Boolean, nullable=False, default=False),
    Column("agent_id", String(64), nullable=True),
    Column("recording", String(128), nullable=True),
    Column("recording_seconds", Float, nullable=True),
    Column("ring_seconds", Float, nullable=True),
    Column("talk_seconds", Float, nullable=True),
    Column("disposition", String(32), nullable=True),
    Column("disposition_product", String(128), nullable=True),
    Column("order_confirmed", Boolean, nullable=False, default=False),
    Column("note", Text, nullable=False, default=""),
    Column("try_no", Integer, nullable=False, default=1),
    Column("connected_at", UtcDateTime, nullable=True),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
Index("ix_dialer_attempts_stage", attempts_table.c.stage)
Index("ix_dialer_attempts_campaign", attempts_table.c.campaign)


_FIELDS = tuple(f.name for f in fields(AttemptRecord))


def _record(row: Any) -> AttemptRecord:
    m = row._mapping
    return AttemptRecord(**{k: m[k] for k in _FIELDS})


@dataclass(frozen=True, slots=True)
class Funnel:
    """Campaign figures (rules.md F, appendix 4) from the attempt log."""

    attempts: int
    refused_by_gate: int
    answered: int
    connects: int
    effective: int
    orders: int
    abandoned: int
    machines: int

    @property
    def connect_rate(self) -> float:
        return self.connects / self.attempts if self.attempts else 0.0

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.answered if self.answered else 0.0

    @property
    def effective_rate(self) -> float:
        return self.effective / self.connects if self.connects else 0.0

    @property
    def success_rate(self) -> float:
        return self.orders / self.connects if self.connects else 0.0


EFFECTIVE_DISPOSITIONS = ("order", "refused", "callback")


class AttemptLog:
    """The attempt rows, on the same SQL engine as the compliance stores."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_schema(self) -> None:
        """The table is the migrations': a new empty database is brought to the head, an
        older one refused (``migrations.ensure_current``)."""
        await ensure_current(self._engine)

    async def insert(self, rec: AttemptRecord) -> None:
        values = {k: getattr(rec, k) for k in _FIELDS}
        async with self._engine.begin() as conn:
            await conn.execute(attempts_table.insert().values(**values))

    async def update(self, attempt_id: str, at: datetime, **values: Any) -> None:
        unknown = set(values) - set(_FIELDS)
        if unknown:
            raise ValueError(f"unknown attempt fields: {sorted(unknown)}")
        async with self._engine.begin() as conn:
            result = await conn.execute(
                attempts_table.update()
                .where(attempts_table.c.attempt_id == attempt_id)
                .values(updated_at=at, **values)
            )
        if result.rowcount != 1:
            raise LookupError(f"attempt {attempt_id} is not in the attempt log")

    async def mark_live(self, attempt_id: str, at: datetime) -> None:
        """Originate accepted; a no-op when the call already ended (events beat the reply)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                attempts_table.update()
                .where(
                    (attempts_table.c.attempt_id == attempt_id)
                    & (attempts_table.c.stage == Stage.ORIGINATING.value)
                )
                .values(stage=Stage.LIVE.value, updated_at=at)
            )

    async def get(self, attempt_id: str) -> AttemptRecord | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(attempts_table).where(attempts_table.c.attempt_id == attempt_id)
                )
            ).first()
        return None if row is None else _record(row)

    async def unfinished(self) -> list[AttemptRecord]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(attempts_table)
                    .where(attempts_table.c.stage.in_([s.value for s in UNFINISHED]))
                    .order_by(attempts_table.c.created_at)
                )
            ).all()
        return [_record(r) for r in rows]

    async def awaiting_disposition(self) -> list[AttemptRecord]:
        """Calls that reached an agent and ended, with no disposition yet."""
        t = attempts_table
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(t).where(
                        (t.c.stage == Stage.DONE.value)
                        & t.c.connected.is_(True)
                        & t.c.disposition.is_(None)
                    )
                )
            ).all()
        return [_record(r) for r in rows]

    async def for_campaign(self, campaign: str) -> list[AttemptRecord]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(attempts_table)
                    .where(attempts_table.c.campaign == campaign)
                    .order_by(attempts_table.c.created_at)
                )
            ).all()
        return [_record(r) for r in rows]

    async def all(self) -> list[AttemptRecord]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(select(attempts_table).order_by(attempts_table.c.created_at))
            ).all()
        return [_record(r) for r in rows]

    async def funnel(self, campaign: str | None = None) -> Funnel:
        t = attempts_table
        dialled = t.c.stage != Stage.REFUSED.value

        def count(*conds: Any) -> Any:
            return func.count().filter(*conds)

        stmt = select(
            count(dialled),
            count(t.c.stage == Stage.REFUSED.value),
            count(t.c.answered.is_(True)),
            count(t.c.connected.is_(True)),
            count(t.c.disposition.in_(EFFECTIVE_DISPOSITIONS)),
            count(t.c.disposition == "order"),
            count(t.c.abandoned.is_(True)),
            count(t.c.outcome == "machine"),
        )
        if campaign is not None:
            stmt = stmt.where(t.c.campaign == campaign)
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).one()
        return Funnel(*(int(v or 0) for v in row))

    async def numbers_dialled(self, campaign: str | None = None) -> Sequence[str]:
        t = attempts_table
        stmt = select(t.c.number).where(t.c.stage != Stage.REFUSED.value)
        if campaign is not None:
            stmt = stmt.where(t.c.campaign == campaign)
        async with self._engine.connect() as conn:
            return [r[0] for r in (await conn.execute(stmt)).all()]
