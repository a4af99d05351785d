"""The SQL contact ledger (SQLAlchemy 2 async): the system of record for contact history.

SQLite (embedded default) and PostgreSQL (production) share the code; only the
per-customer serialization differs:

* PostgreSQL: each check-and-reserve runs in one transaction that locks the
  customer's row of ``compliance_customers`` with ``SELECT ... FOR UPDATE``
  (a new customer's row is inserted first, ``INSERT ... ON CONFLICT DO
  NOTHING RETURNING``: see ``_lock_customer``).
  Every other transaction touching the same customer (reserve, resolve,
  refusal) waits on that row lock, so the history read, the evaluation and the
  append happen as one step per customer, while different customers proceed in
  parallel. READ COMMITTED is enough: the history is read after the lock is
  granted, so it sees every transaction that held the lock before.
* SQLite: every transaction begins with ``BEGIN IMMEDIATE`` (see
  ``compliance.tables.open_engine``): the database-wide write lock is taken
  before the history is read, so writers are serialized (SQLite has one writer
  at a time anyway) and readers keep working thanks to WAL.

The evaluation itself is the pure engine (``compliance.ledger.decide``); the
ledger only supplies the history and stores the result and the decision log.

Hot path, per decision: the history read is bounded (attempts from
``compliance.engine.history_horizon`` on, every refusal); on PostgreSQL the
RESERVED attempt and its decision log row go in one statement; on SQLite the
transaction talks to the aiosqlite driver connection directly (one thread hop
per statement instead of about four through the SQLAlchemy adapter), with the
same statements and the same column conversions as SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from compliance.database import UtcDateTime
from compliance.engine import history_horizon
from compliance.ledger import (
    DecisionRecord,
    DuplicateAttempt,
    LedgerError,
    UnknownAttempt,
    check_resolution,
    decide,
    invalid_key,
    number_key,
    reasons_from_json,
    reasons_to_json,
    try_number_key,
    utcnow,
)
from compliance.model import (
    AttemptOutcome,
    CallRequest,
    ContactEvent,
    ContactKind,
    Decision,
    ListStatus,
)
from compliance.policy import Policy
from compliance.tables import contact_events, customers, decisions, open_engine, reader

# Built once: the hot path only binds parameters (no statement construction per call).
_LOAD_COLUMNS = select(
    contact_events.c.at,
    contact_events.c.kind,
    contact_events.c.campaign,
    contact_events.c.product,
    contact_events.c.outcome,
    contact_events.c.attempt_id,
)
_LOAD = _LOAD_COLUMNS.where(contact_events.c.number_key == bindparam("key")).order_by(
    contact_events.c.at, contact_events.c.id
)
# The decision path reads only what the engine can use: attempts from the policy's
# history horizon on (``compliance.engine.history_horizon``) and every refusal.
_LOAD_RECENT = _LOAD_COLUMNS.where(
    (contact_events.c.number_key == bindparam("key"))
    & (
        (contact_events.c.at >= bindparam("horizon", type_=UtcDateTime))
        | (contact_events.c.kind == ContactKind.REFUSAL.value)
    )
)
_INSERT_EVENT = contact_events.insert()
_INSERT_DECISION = decisions.insert()
_EVENT_COLUMNS = (
    "number_key",
    "at",
    "kind",
    "campaign",
    "product",
    "outcome",
    "attempt_id",
    "recorded_at",
)
_DECISION_COLUMNS = (
    "number_key",
    "at",
    "decided_at",
    "campaign",
    "product",
    "attempt_id",
    "allowed",
    "reserved",
    "codes",
    "reasons",
    "retry_at",
    "policy_version",
)
# PostgreSQL: the RESERVED attempt (a data-modifying CTE) and its decision log row in one
# statement. A duplicate attempt id still fails the whole statement (unique index).
_PG_RESERVE_AND_LOG = (
    decisions.insert()
    .values({decisions.c[c]: bindparam(c, type_=decisions.c[c].type) for c in _DECISION_COLUMNS})
    .add_cte(
        contact_events.insert()
        .values(
            {
                contact_events.c[c]: bindparam("e_" + c, type_=contact_events.c[c].type)
                for c in _EVENT_COLUMNS
            }
        )
        .cte("new_attempt")
    )
)
_PG_ENSURE_CUSTOMER = (
    pg_insert(customers)
    .values(number_key=bindparam("key"))
    .on_conflict_do_nothing()
    .returning(customers.c.number_key)
)
_PG_LOCK_CUSTOMER = (
    select(customers.c.number_key)
    .where(customers.c.number_key == bindparam("key"))
    .with_for_update()
)


_KINDS = {k.value: k for k in ContactKind}
_OUTCOMES = {o.value: o for o in AttemptOutcome}


_SQLITE_LOAD_RECENT = (
    "SELECT at, kind, campaign, product, outcome, attempt_id FROM compliance_contact_events"
    " WHERE number_key = ? AND (at >= ? OR kind = 'refusal')"
)
_SQLITE_INSERT_EVENT = (
    "INSERT INTO compliance_contact_events"
    " (number_key, at, kind, campaign, product, outcome, attempt_id, recorded_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_INSERT_DECISION = (
    "INSERT INTO compliance_decisions (number_key, at, decided_at, campaign, product,"
    " attempt_id, allowed, reserved, codes, reasons, retry_at, policy_version)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


_PG_SQL_LOCK = "SELECT number_key FROM compliance_customers WHERE number_key = $1 FOR UPDATE"
_PG_SQL_ENSURE = (
    "INSERT INTO compliance_customers (number_key) VALUES ($1)"
    " ON CONFLICT DO NOTHING RETURNING number_key"
)
_PG_SQL_LOAD_RECENT = (
    "SELECT at, kind, campaign, product, outcome, attempt_id FROM compliance_contact_events"
    " WHERE number_key = $1 AND (at >= $2 OR kind = 'refusal')"
)
_PG_SQL_LOG = (
    "INSERT INTO compliance_decisions (number_key, at, decided_at, campaign, product,"
    " attempt_id, allowed, reserved, codes, reasons, retry_at, policy_version)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
)
# The attempt reuses the decision's parameters: key $1, at $2, recorded_at $3 (the
# decision time), campaign $4, product $5, attempt id $6.
_PG_SQL_RESERVE_AND_LOG = (
    "WITH new_attempt AS (INSERT INTO compliance_contact_events"
    " (number_key, at, kind, campaign, product, outcome, attempt_id, recorded_at)"
    " VALUES ($1, $2, $13, $4, $5, $14, $6, $3)) " + _PG_SQL_LOG
)


def _identity(value: Any) -> Any:
    return value


class SqlLedger:
    """``ContactLedger`` on SQLite or PostgreSQL."""

    def __init__(self, engine: AsyncEngine, policy: Policy, *, own_engine: bool = False) -> None:
        self._engine = engine
        self._policy = policy
        self._own_engine = own_engine
        self._postgres = engine.dialect.name == "postgresql"
        self._local_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._reader = reader(engine)
        self._asyncpg = self._postgres and engine.dialect.driver == "asyncpg"
        if self._local_lock is not None:
            # Exactly the conversions SQLAlchemy applies to these columns on this dialect,
            # for the SQLite decision path that talks to the driver directly.
            dt = UtcDateTime().dialect_impl(engine.dialect)
            self._dt_in: Callable[[Any], Any] = dt.bind_processor(engine.dialect) or _identity
            self._dt_out: Callable[[Any], Any] = (
                dt.result_processor(engine.dialect, None) or _identity
            )

    @classmethod
    async def open(cls, url: str, policy: Policy, *, schema: str | None = None) -> SqlLedger:
        """Open a ledger on its own engine (tables created when missing)."""
        engine = await open_engine(url, schema=schema)
        return cls(engine, policy, own_engine=True)

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction. On SQLite, writers of this process queue on an asyncio lock:
        SQLite admits one writer anyway, and its busy handler (sleep and retry) would turn
        in-process contention into long latency tails. Other processes still wait on
        BEGIN IMMEDIATE."""
        if self._local_lock is None:
            async with self._engine.begin() as conn:
                yield conn
            return
        async with self._local_lock, self._engine.begin() as conn:
            yield conn

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        if self._own_engine:
            await self._engine.dispose()

    # --- decisions ---------------------------------------------------------------------------

    async def check(self, request: CallRequest, lists: ListStatus) -> Decision:
        key = try_number_key(request.number, self._policy.numbers)
        if key is not None:
            if self._local_lock is not None:
                return await self._sqlite_decide(request, key, lists, "")
            if self._asyncpg:
                return await self._pg_decide(request, key, lists, "")
        async with self._write() as conn:
            history = await self._load_recent(conn, key, request.at) if key else []
            decision = decide(self._policy, request, history, lists)
            await self._log(conn, key or invalid_key(request.number), request, "", decision, False)
        return decision

    async def check_and_reserve(
        self, request: CallRequest, *, attempt_id: str, lists: ListStatus
    ) -> Decision:
        if not attempt_id:
            raise ValueError("check_and_reserve needs a non-empty attempt_id")
        key = try_number_key(request.number, self._policy.numbers)
        if key is not None:
            if self._local_lock is not None:
                return await self._sqlite_decide(request, key, lists, attempt_id)
            if self._asyncpg:
                return await self._pg_decide(request, key, lists, attempt_id)
        async with self._write() as conn:
            if key is None:
                # No customer to lock: the engine refuses an invalid number by itself.
                decision = decide(self._policy, request, [], lists)
                if decision.allowed:
                    raise LedgerError("the engine allowed a call to an unparseable number")
                await self._log(
                    conn, invalid_key(request.number), request, attempt_id, decision, False
                )
                return decision
            await self._lock_customer(conn, key)
            history = await self._load_recent(conn, key, request.at)
            decision = decide(self._policy, request, history, lists)
            if decision.allowed:
                now = utcnow()
                event = {
                    "number_key": key,
                    "at": request.at,
                    "kind": ContactKind.ATTEMPT.value,
                    "campaign": request.campaign,
                    "product": request.product,
                    "outcome": AttemptOutcome.RESERVED.value,
                    "attempt_id": attempt_id,
                    "recorded_at": now,
                }
                try:
                    if self._postgres:
                        # Attempt and decision log in one statement: one round trip less.
                        params = self._decision_params(key, request, attempt_id, decision, True)
                        params.update({"e_" + k: v for k, v in event.items()})
                        await conn.execute(_PG_RESERVE_AND_LOG, params)
                        return decision
                    await conn.execute(_INSERT_EVENT, event)
                except IntegrityError as exc:
                    # The unique index on (kind, attempt_id) is the duplicate check: no extra
                    # query on the hot path; the whole transaction (decision log too) rolls back.
                    raise DuplicateAttempt(
                        f"attempt id {attempt_id!r} was already reserved"
                    ) from exc
            await self._log(conn, key, request, attempt_id, decision, decision.allowed)
        return decision

    async def _sqlite_decide(
        self, request: CallRequest, key: str, lists: ListStatus, attempt_id: str
    ) -> Decision:
        """Check (and with ``attempt_id`` reserve) on SQLite, on the driver connection.

        Same transaction as the generic path (BEGIN IMMEDIATE, bounded history
        read, engine, attempt, decision log, COMMIT), but each statement is one
        hop to the aiosqlite thread instead of four (cursor, execute, fetch,
        close through the SQLAlchemy adapter): the decision path of the
        embedded default is bound by those hops.
        """
        assert self._local_lock is not None
        async with self._local_lock, self._engine.connect() as conn:
            db: Any = (await conn.get_raw_connection()).driver_connection
            await db.execute("BEGIN IMMEDIATE")
            done = False
            try:
                rows = await db.execute_fetchall(
                    _SQLITE_LOAD_RECENT,
                    (key, self._dt_in(history_horizon(self._policy, request.at))),
                )
                history = [_event(r, self._dt_out(r[0])) for r in rows]
                decision = decide(self._policy, request, history, lists)
                at = self._dt_in(request.at)
                now = self._dt_in(utcnow())
                reserve = bool(attempt_id) and decision.allowed
                if reserve:
                    try:
                        await db.execute(
                            _SQLITE_INSERT_EVENT,
                            (
                                key,
                                at,
                                ContactKind.ATTEMPT.value,
                                request.campaign,
                                request.product,
                                AttemptOutcome.RESERVED.value,
                                attempt_id,
                                now,
                            ),
                        )
                    except sqlite3.IntegrityError as exc:
                        raise DuplicateAttempt(
                            f"attempt id {attempt_id!r} was already reserved"
                        ) from exc
                await db.execute(
                    _SQLITE_INSERT_DECISION,
                    _decision_row(
                        key,
                        at,
                        now,
                        request,
                        attempt_id,
                        decision,
                        reserve,
                        self._dt_in(decision.retry_at),
                    ),
                )
                await db.execute("COMMIT")
                done = True
            finally:
                if not done:
                    await db.execute("ROLLBACK")
        return decision

    async def _pg_decide(
        self, request: CallRequest, key: str, lists: ListStatus, attempt_id: str
    ) -> Decision:
        """Check (and with ``attempt_id`` reserve) on PostgreSQL, on the asyncpg connection.

        Same transaction as the generic path: lock the customer's row (``FOR
        UPDATE``, inserting it when new), bounded history read, engine, attempt
        and decision log in one statement, COMMIT. asyncpg prepares and caches
        the statements; no SQLAlchemy layer per statement.
        """
        async with self._engine.connect() as conn:
            db: Any = (await conn.get_raw_connection()).driver_connection
            async with db.transaction():
                if await db.fetchval(_PG_SQL_LOCK, key) is None:
                    # See _lock_customer: an inserted row is ours; else someone else's
                    # insert won (we waited for it), then lock it.
                    if await db.fetchval(_PG_SQL_ENSURE, key) is None:
                        await db.fetchval(_PG_SQL_LOCK, key)
                rows = await db.fetch(
                    _PG_SQL_LOAD_RECENT, key, history_horizon(self._policy, request.at)
                )
                history = [_event(r, r[0]) for r in rows]
                decision = decide(self._policy, request, history, lists)
                reserve = bool(attempt_id) and decision.allowed
                now = utcnow()
                log = _decision_row(
                    key, request.at, now, request, attempt_id, decision, reserve, decision.retry_at
                )
                if not reserve:
                    await db.execute(_PG_SQL_LOG, *log)
                    return decision
                try:
                    await db.execute(
                        _PG_SQL_RESERVE_AND_LOG,
                        *log,
                        ContactKind.ATTEMPT.value,
                        AttemptOutcome.RESERVED.value,
                    )
                except Exception as exc:
                    # asyncpg's UniqueViolationError, by SQLSTATE: no asyncpg import needed.
                    if getattr(exc, "sqlstate", None) == "23505":
                        raise DuplicateAttempt(
                            f"attempt id {attempt_id!r} was already reserved"
                        ) from exc
                    raise
        return decision

    async def resolve(self, attempt_id: str, outcome: AttemptOutcome) -> None:
        async with self._write() as conn:
            where = (contact_events.c.kind == ContactKind.ATTEMPT.value) & (
                contact_events.c.attempt_id == attempt_id
            )
            key = (await conn.execute(select(contact_events.c.number_key).where(where))).scalar()
            if key is None:
                raise UnknownAttempt(f"no reserved attempt with id {attempt_id!r}")
            await self._lock_customer(conn, key)
            current = (
                await conn.execute(select(contact_events.c.outcome).where(where))
            ).scalar_one()
            if not check_resolution(attempt_id, AttemptOutcome(current), outcome):
                return
            await conn.execute(
                update(contact_events)
                .where(where)
                .values(outcome=outcome.value, resolved_at=utcnow())
            )

    async def record_refusal(
        self, number: str, campaign: str, product: str, at: datetime, attempt_id: str = ""
    ) -> None:
        key = number_key(number, self._policy.numbers)
        async with self._write() as conn:
            await self._lock_customer(conn, key)
            if attempt_id:
                existing = await conn.execute(
                    select(contact_events.c.id).where(
                        (contact_events.c.kind == ContactKind.REFUSAL.value)
                        & (contact_events.c.attempt_id == attempt_id)
                    )
                )
                if existing.first() is not None:
                    return  # the same refusal reported twice: recorded once
            await conn.execute(
                contact_events.insert().values(
                    number_key=key,
                    at=at,
                    kind=ContactKind.REFUSAL.value,
                    campaign=campaign,
                    product=product,
                    outcome=AttemptOutcome.ANSWERED.value,
                    attempt_id=attempt_id or None,
                    recorded_at=utcnow(),
                )
            )

    async def record_decision(
        self, request: CallRequest, decision: Decision, attempt_id: str = ""
    ) -> None:
        """Log a decision taken before the ledger was asked (e.g. an unknown campaign)."""
        key = try_number_key(request.number, self._policy.numbers) or invalid_key(request.number)
        async with self._write() as conn:
            await self._log(conn, key, request, attempt_id, decision, False)

    # --- copying from the Redis journal ------------------------------------------------------

    async def import_decisions(self, records: Sequence[DecisionRecord]) -> int:
        """Append decisions taken elsewhere (Redis); one already here (same customer,
        decision time and attempt id) is skipped. Returns how many were added."""
        added = 0
        async with self._write() as conn:
            for r in records:
                found = await conn.execute(
                    select(decisions.c.id).where(
                        (decisions.c.number_key == r.number_key)
                        & (decisions.c.decided_at == r.decided_at)
                        & (decisions.c.attempt_id == r.attempt_id)
                    )
                )
                if found.first() is not None:
                    continue
                await conn.execute(
                    _INSERT_DECISION,
                    {
                        "number_key": r.number_key,
                        "at": r.at,
                        "decided_at": r.decided_at,
                        "campaign": r.campaign,
                        "product": r.product,
                        "attempt_id": r.attempt_id,
                        "allowed": r.allowed,
                        "reserved": r.reserved,
                        "codes": ",".join(c.value for c in r.codes),
                        "reasons": reasons_to_json(r.reasons),
                        "retry_at": r.retry_at,
                        "policy_version": r.policy_version,
                    },
                )
                added += 1
        return added

    async def import_event(self, key: str, event: ContactEvent) -> bool:
        """Append an event decided elsewhere (Redis); False when its attempt id is already here."""
        async with self._write() as conn:
            await self._lock_customer(conn, key)
            if event.attempt_id:
                found = await conn.execute(
                    select(contact_events.c.id).where(
                        (contact_events.c.kind == event.kind.value)
                        & (contact_events.c.attempt_id == event.attempt_id)
                    )
                )
                if found.first() is not None:
                    return False
            await conn.execute(
                contact_events.insert().values(
                    number_key=key,
                    at=event.at,
                    kind=event.kind.value,
                    campaign=event.campaign,
                    product=event.product,
                    outcome=event.outcome.value,
                    attempt_id=event.attempt_id or None,
                    recorded_at=utcnow(),
                )
            )
        return True

    async def import_resolution(self, attempt_id: str, outcome: AttemptOutcome) -> None:
        """Apply a resolution decided elsewhere; an already equal outcome is a no-op."""
        await self.resolve(attempt_id, outcome)

    # --- reading -----------------------------------------------------------------------------

    async def history(self, number: str) -> list[ContactEvent]:
        key = number_key(number, self._policy.numbers)
        async with self._reader.connect() as conn:
            return await self._load(conn, key)

    async def decisions(self, number: str) -> list[DecisionRecord]:
        key = try_number_key(number, self._policy.numbers) or invalid_key(number)
        async with self._reader.connect() as conn:
            rows = await conn.execute(
                select(decisions).where(decisions.c.number_key == key).order_by(decisions.c.id)
            )
            return [_decision_record(r) for r in rows]

    async def decisions_for_attempt(self, attempt_id: str) -> list[DecisionRecord]:
        if not attempt_id:
            return []
        async with self._reader.connect() as conn:
            rows = await conn.execute(
                select(decisions)
                .where(decisions.c.attempt_id == attempt_id)
                .order_by(decisions.c.id)
            )
            return [_decision_record(r) for r in rows]

    async def history_for_attempt(self, attempt_id: str) -> list[ContactEvent]:
        if not attempt_id:
            return []
        async with self._reader.connect() as conn:
            rows = await conn.execute(
                _LOAD_COLUMNS.where(
                    # Naming every kind lets the (kind, attempt_id) unique index serve.
                    contact_events.c.kind.in_([k.value for k in ContactKind])
                    & (contact_events.c.attempt_id == attempt_id)
                ).order_by(contact_events.c.at, contact_events.c.id)
            )
            return [_event(r, r[0]) for r in rows]

    # --- internals ---------------------------------------------------------------------------

    async def _lock_customer(self, conn: AsyncConnection, key: str) -> None:
        """Serialize on the customer: on PostgreSQL lock the customer's row.

        A known customer costs one statement (``SELECT ... FOR UPDATE``). A new one
        is inserted; the uncommitted insert already excludes every other
        transaction (they wait on the unique key), so a row that ``RETURNING``
        hands back needs no further lock. When someone else inserted it first,
        the insert did nothing (after waiting for them) and the row is locked.

        SQLite needs nothing here: the transaction began with BEGIN IMMEDIATE and
        already holds the database write lock.
        """
        if not self._postgres:
            return
        if (await conn.execute(_PG_LOCK_CUSTOMER, {"key": key})).first() is not None:
            return
        if (await conn.execute(_PG_ENSURE_CUSTOMER, {"key": key})).first() is not None:
            return
        await conn.execute(_PG_LOCK_CUSTOMER, {"key": key})

    async def _load_recent(
        self, conn: AsyncConnection, key: str, at: datetime
    ) -> list[ContactEvent]:
        """What a decision at ``at`` needs of the history (in no particular order)."""
        rows = await conn.execute(
            _LOAD_RECENT, {"key": key, "horizon": history_horizon(self._policy, at)}
        )
        return [_event(r, r[0]) for r in rows]

    async def _load(self, conn: AsyncConnection, key: str) -> list[ContactEvent]:
        rows = await conn.execute(_LOAD, {"key": key})
        return [_event(r, r[0]) for r in rows]

    async def _log(
        self,
        conn: AsyncConnection,
        key: str,
        request: CallRequest,
        attempt_id: str,
        decision: Decision,
        reserved: bool,
    ) -> None:
        await conn.execute(
            _INSERT_DECISION, self._decision_params(key, request, attempt_id, decision, reserved)
        )

    @staticmethod
    def _decision_params(
        key: str, request: CallRequest, attempt_id: str, decision: Decision, reserved: bool
    ) -> dict[str, Any]:
        return {
            "number_key": key,
            "at": request.at,
            "decided_at": utcnow(),
            "campaign": request.campaign,
            "product": request.product,
            "attempt_id": attempt_id,
            "allowed": decision.allowed,
            "reserved": reserved,
            "codes": ",".join(c.value for c in decision.codes),
            "reasons": reasons_to_json(decision.reasons) if decision.reasons else "[]",
            "retry_at": decision.retry_at,
            "policy_version": decision.policy_version,
        }


def _event(r: Sequence[Any], at: datetime) -> ContactEvent:
    """A history row (at, kind, campaign, product, outcome, attempt id) as an event."""
    return ContactEvent(
        at=at,
        kind=_KINDS[r[1]],
        campaign=r[2],
        product=r[3],
        outcome=_OUTCOMES[r[4]],
        attempt_id=r[5] or "",
    )


def _decision_record(r: Any) -> DecisionRecord:
    return DecisionRecord(
        number_key=r.number_key,
        at=r.at,
        decided_at=r.decided_at,
        campaign=r.campaign,
        product=r.product,
        attempt_id=r.attempt_id,
        allowed=r.allowed,
        reserved=r.reserved,
        reasons=reasons_from_json(r.reasons),
        retry_at=r.retry_at,
        policy_version=r.policy_version,
    )


def _decision_row(
    key: str,
    at: Any,
    decided_at: Any,
    request: CallRequest,
    attempt_id: str,
    decision: Decision,
    reserved: bool,
    retry_at: Any,
) -> tuple[Any, ...]:
    """The decisions-log columns in table order, for the driver-level INSERTs.

    ``at``, ``decided_at`` and ``retry_at`` come already in the driver's form (SQLite:
    naive UTC text via ``_dt_in``; asyncpg: aware datetimes).
    """
    return (
        key,
        at,
        decided_at,
        request.campaign,
        request.product,
        attempt_id,
        decision.allowed,
        reserved,
        ",".join(c.value for c in decision.codes),
        reasons_to_json(decision.reasons) if decision.reasons else "[]",
        retry_at,
        decision.policy_version,
    )
