"""Storage of desk-phone grants and rated calls (SQLAlchemy 2 async; SQLite default, PostgreSQL).

Two tables, ``desk_grants`` and ``desk_calls``, in their own ``MetaData``. A
rated call is keyed by the Asterisk ``uniqueid`` of the channel: rating the
same call twice (a retried ``h`` extension) never bills twice. Full numbers are
stored because the bill must be checkable against the carrier's; everything
that prints them masks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from agi_scripts.desk_rules import Grant
from compliance.database import UtcDateTime, make_engine
from migrations import ensure_current

metadata = MetaData()

desk_grants = Table(
    "desk_grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("extension", String(16), nullable=False),
    Column("requester", String(128), nullable=False),
    Column("approvers", Text, nullable=False),  # comma-separated names
    Column("starts_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("revoked_by", String(128), nullable=False, default=""),
    Index("ix_desk_grants_extension", "extension", "expires_at"),
)

desk_calls = Table(
    "desk_calls",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("call_id", String(64), nullable=False, unique=True),
    Column("extension", String(16), nullable=False),
    Column("month", String(7), nullable=False),  # YYYY-MM in the policy's time zone
    Column("ended_at", UtcDateTime, nullable=False),
    Column("number_key", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("dial", String(40), nullable=False),
    Column("billsec", Integer, nullable=False),
    Column("cost_fen", Integer, nullable=False),
    Index("ix_desk_calls_month", "month", "extension"),
)


class GrantError(ValueError):
    """A grant request that breaks a rule (dates, approvers, unknown id)."""


@dataclass(frozen=True, slots=True)
class RatedCall:
    call_id: str
    extension: str
    month: str
    ended_at: datetime
    number_key: str
    kind: str
    dial: str
    billsec: int
    cost_fen: int


def _grant(row: object) -> Grant:
    m = row._mapping  # type: ignore[attr-defined]
    return Grant(
        id=m["id"],
        extension=m["extension"],
        requester=m["requester"],
        approvers=tuple(a for a in m["approvers"].split(",") if a),
        starts_at=m["starts_at"],
        expires_at=m["expires_at"],
        reason=m["reason"],
        revoked_at=m["revoked_at"],
        revoked_by=m["revoked_by"],
    )


class DeskStore:
    """Grants and rated calls. Every write is one transaction."""

    def __init__(self, engine: AsyncEngine, *, own_engine: bool = False) -> None:
        self.engine = engine
        self._own = own_engine

    @classmethod
    async def open(cls, url: str, *, schema: str | None = None) -> DeskStore:
        """Open (and create the tables if needed)."""
        store = cls(make_engine(url, schema=schema), own_engine=True)
        await store.create_schema()
        return store

    async def create_schema(self) -> None:
        """The tables are the migrations': a new empty database is brought to the head, an
        older one refused (``migrations.ensure_current``)."""
        await ensure_current(self.engine)

    async def close(self) -> None:
        if self._own:
            await self.engine.dispose()

    # -- grants ----------------------------------------------------------------------------
    async def add_grant(
        self,
        extension: str,
        requester: str,
        approvers: Sequence[str],
        starts_at: datetime,
        expires_at: datetime,
        *,
        reason: str = "",
        created_at: datetime,
        min_approvers: int = 2,
    ) -> Grant:
        approvers = tuple(a.strip() for a in approvers if a.strip())
        if not extension.isdigit():
            raise GrantError(f"extension {extension!r} must be digits")
        if not requester.strip():
            raise GrantError("a grant needs the requester's name")
        if len(set(approvers)) < min_approvers:
            raise GrantError(
                f"a grant needs {min_approvers} distinct approvers "
                f"(department head and division leader), got {len(set(approvers))}"
            )
        if requester.strip() in approvers:
            raise GrantError("the requester cannot approve their own grant")
        if any("," in a for a in approvers):
            raise GrantError("approver names cannot contain ','")
        if expires_at <= starts_at:
            raise GrantError("a grant must expire after it starts")
        async with self.engine.begin() as conn:
            result = await conn.execute(
                insert(desk_grants)
                .values(
                    extension=extension,
                    requester=requester.strip(),
                    approvers=",".join(approvers),
                    starts_at=starts_at,
                    expires_at=expires_at,
                    reason=reason,
                    created_at=created_at,
                    revoked_by="",
                )
                .returning(*desk_grants.c)
            )
            return _grant(result.one())

    async def revoke_grant(self, grant_id: int, *, by: str, at: datetime) -> Grant:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(desk_grants)
                .where(and_(desk_grants.c.id == grant_id, desk_grants.c.revoked_at.is_(None)))
                .values(revoked_at=at, revoked_by=by)
                .returning(*desk_grants.c)
            )
            row = result.one_or_none()
            if row is None:
                exists = await conn.scalar(
                    select(func.count())
                    .select_from(desk_grants)
                    .where(desk_grants.c.id == grant_id)
                )
                raise GrantError(
                    f"grant {grant_id} is already revoked"
                    if exists
                    else f"no grant with id {grant_id}"
                )
            return _grant(row)

    async def grants(
        self, extension: str | None = None, *, active_at: datetime | None = None
    ) -> list[Grant]:
        """Grants, newest first; with ``active_at`` only those not yet expired or revoked then."""
        query = select(desk_grants).order_by(desk_grants.c.id.desc())
        if extension is not None:
            query = query.where(desk_grants.c.extension == extension)
        if active_at is not None:
            query = query.where(desk_grants.c.expires_at > active_at)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        found = [_grant(r) for r in rows]
        if active_at is not None:
            found = [g for g in found if g.active_at(active_at)]
        return found

    # -- rated calls -----------------------------------------------------------------------
    async def record_call(self, call: RatedCall) -> bool:
        """Store one rated call; False (and nothing written) if ``call_id`` was already rated."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(desk_calls).values(
                        call_id=call.call_id,
                        extension=call.extension,
                        month=call.month,
                        ended_at=call.ended_at,
                        number_key=call.number_key,
                        kind=call.kind,
                        dial=call.dial,
                        billsec=call.billsec,
                        cost_fen=call.cost_fen,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def month_spend(self, extension: str, month: str) -> int:
        async with self.engine.connect() as conn:
            total = await conn.scalar(
                select(func.coalesce(func.sum(desk_calls.c.cost_fen), 0)).where(
                    and_(desk_calls.c.month == month, desk_calls.c.extension == extension)
                )
            )
        return int(total or 0)

    async def calls(self, month: str, extension: str | None = None) -> list[RatedCall]:
        query = select(desk_calls).where(desk_calls.c.month == month)
        if extension is not None:
            query = query.where(desk_calls.c.extension == extension)
        query = query.order_by(desk_calls.c.extension, desk_calls.c.ended_at, desk_calls.c.id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            RatedCall(
                call_id=m["call_id"],
                extension=m["extension"],
                month=m["month"],
                ended_at=m["ended_at"],
                number_key=m["number_key"],
                kind=m["kind"],
                dial=m["dial"],
                billsec=m["billsec"],
                cost_fen=m["cost_fen"],
            )
            for m in (r._mapping for r in rows)
        ]
