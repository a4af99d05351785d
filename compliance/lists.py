"""Do-not-call (blacklist) and special-number lists, with an append-only audit trail.

A number is on the do-not-call list for a reason (complaint, opt-out,
do-not-disturb) or on the special list (public phones, protected persons: rule
A.2). Each entry keeps who put it there, from where and when. Every change
(add, update, remove, CSV import) is appended to ``compliance_list_audit`` in
the same transaction as the change itself; the audit table is never updated or
deleted from.

``ListStore.status(number)`` is what the gate asks before each call. SQL is the
system of record; ``RedisListMirror`` optionally mirrors the lists into two Redis
sets for fast checks on many hosts (``ListStore`` writes through to it).

CSV import is all or nothing: every bad row is reported (line and field) in one
``ImportFailed`` and nothing is written.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import redis.asyncio as aioredis
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from compliance.ledger import utcnow
from compliance.model import ListStatus
from compliance.numbers import InvalidNumber, NumberPlan, mask
from compliance.tables import list_audit, list_entries, reader


class ListReason(StrEnum):
    COMPLAINT = "complaint"
    OPT_OUT = "opt_out"
    DO_NOT_DISTURB = "do_not_disturb"
    SPECIAL = "special"


class ListKind(StrEnum):
    DNC = "dnc"
    SPECIAL = "special"


def kind_of(reason: ListReason) -> ListKind:
    return ListKind.SPECIAL if reason == ListReason.SPECIAL else ListKind.DNC


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """One bad spot of an input file: 1-based line (the header is line 1), field, what is wrong."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, field {self.field!r}: {self.message}"


class ImportFailed(ValueError):
    """A file was refused; ``problems`` lists every bad row. Nothing was written."""

    def __init__(self, source: str, problems: Sequence[ImportProblem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        shown = "\n  ".join(str(p) for p in self.problems[:50])
        more = f"\n  ... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        super().__init__(
            f"{source}: {len(self.problems)} problem(s), nothing imported:\n  {shown}{more}"
        )


@dataclass(frozen=True, slots=True)
class ListEntry:
    number_key: str
    kind: ListKind
    reason: ListReason
    source: str
    actor: str
    note: str
    added_at: datetime

    @property
    def masked(self) -> str:
        return mask(self.number_key)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    action: str
    number_key: str
    kind: str
    reason: str
    source: str
    actor: str
    detail: str


@dataclass(frozen=True, slots=True)
class ListImportReport:
    rows: int
    added: int
    updated: int
    duplicates: int


def read_csv_text(path: str | Path) -> tuple[str, str]:
    """(text, name) of a CSV file; UTF-8 with or without BOM. Raises ``ImportFailed``."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ImportFailed(str(p), [ImportProblem(0, "file", exc.strerror or str(exc))]) from exc
    try:
        return data.decode("utf-8-sig"), str(p)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFailed(
            str(p), [ImportProblem(line, "file", "not UTF-8 text (save the file as UTF-8)")]
        ) from exc


def csv_rows(
    text: str, source: str, *, required: Iterable[str], allowed: Iterable[str]
) -> tuple[list[tuple[int, dict[str, str]]], list[ImportProblem]]:
    """Parse CSV with a header into (line, row) pairs and the malformed rows' problems.

    A bad header raises ``ImportFailed`` at once (no row can be read without it).
    """
    allowed_set = set(allowed)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFailed(source, [ImportProblem(1, "header", "the file is empty")]) from None
    except csv.Error as exc:
        raise ImportFailed(source, [ImportProblem(1, "header", str(exc))]) from exc
    names = [h.strip().lower() for h in header]
    problems = []
    for name in required:
        if name not in names:
            problems.append(ImportProblem(1, name, "required column missing from the header"))
    for name in names:
        if name not in allowed_set:
            problems.append(
                ImportProblem(1, name, f"unknown column (known: {', '.join(sorted(allowed_set))})")
            )
    if len(set(names)) != len(names):
        problems.append(ImportProblem(1, "header", "a column name appears twice"))
    if problems:
        raise ImportFailed(source, problems)
    out: list[tuple[int, dict[str, str]]] = []
    try:
        for record in reader:
            line = reader.line_num
            if not record or all(not c.strip() for c in record):
                continue
            if len(record) != len(names):
                problems.append(
                    ImportProblem(
                        line, "row", f"{len(record)} fields where the header has {len(names)}"
                    )
                )
                continue
            out.append((line, {n: v.strip() for n, v in zip(names, record, strict=True)}))
    except csv.Error as exc:
        problems.append(ImportProblem(reader.line_num, "row", str(exc)))
    return out, problems


class RedisListMirror:
    """Two Redis sets (``P dnc`` and ``P special``) of number keys, plus reasons in a hash."""

    def __init__(self, client: aioredis.Redis, prefix: str = "dialer:lists:") -> None:
        self._r = client
        self._prefix = prefix

    @property
    def client(self) -> aioredis.Redis:
        return self._r

    @property
    def reason_keys(self) -> tuple[str, str]:
        """The do-not-call and special reason hashes (number key -> reason): what
        ``status`` reads, and what the Redis ledger reads in its snapshot script."""
        return self._reasons(ListKind.DNC), self._reasons(ListKind.SPECIAL)

    def _set(self, kind: ListKind) -> str:
        return f"{self._prefix}{kind.value}"

    def _reasons(self, kind: ListKind) -> str:
        return f"{self._prefix}{kind.value}:reason"

    async def put(self, entries: Sequence[ListEntry]) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            for e in entries:
                pipe.sadd(self._set(e.kind), e.number_key)
                pipe.hset(self._reasons(e.kind), e.number_key, e.reason.value)
            await pipe.execute()

    async def drop(self, key: str, kinds: Sequence[ListKind]) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            for kind in kinds:
                pipe.srem(self._set(kind), key)
                pipe.hdel(self._reasons(kind), key)
            await pipe.execute()

    async def rebuild(self, entries: Sequence[ListEntry]) -> None:
        """Replace the mirror with ``entries`` (the SQL lists), atomically."""
        async with self._r.pipeline(transaction=True) as pipe:
            for kind in ListKind:
                pipe.delete(self._set(kind), self._reasons(kind))
            for e in entries:
                pipe.sadd(self._set(e.kind), e.number_key)
                pipe.hset(self._reasons(e.kind), e.number_key, e.reason.value)
            await pipe.execute()

    async def status(self, key: str) -> ListStatus:
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.hget(self._reasons(ListKind.DNC), key)
            pipe.hget(self._reasons(ListKind.SPECIAL), key)
            dnc, special = await pipe.execute()
        return ListStatus(
            blacklisted=dnc is not None,
            blacklist_reason=dnc.decode() if dnc is not None else "",
            special=special is not None,
            special_reason=special.decode() if special is not None else "",
        )


class ListStore:
    """The do-not-call and special lists on SQL (the shared engine of ``compliance.tables``)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        plan: NumberPlan | None = None,
        mirror: RedisListMirror | None = None,
    ) -> None:
        self._engine = engine
        self._plan = plan or NumberPlan()
        self._mirror = mirror
        self._reader = reader(engine)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def plan(self) -> NumberPlan:
        """The number plan the list keys come from (must be the policy's, ``policy.numbers``)."""
        return self._plan

    @property
    def mirror(self) -> RedisListMirror | None:
        return self._mirror

    async def status(self, number: str) -> ListStatus:
        """What the lists say about ``number``; an unparseable number is on no list."""
        try:
            key = self._plan.parse(number).key
        except InvalidNumber:
            return ListStatus()
        if self._mirror is not None:
            return await self._mirror.status(key)
        async with self._reader.connect() as conn:
            rows = (
                await conn.execute(
                    select(list_entries.c.list_kind, list_entries.c.reason).where(
                        list_entries.c.number_key == key
                    )
                )
            ).all()
        found = {ListKind(r.list_kind): r.reason for r in rows}
        return ListStatus(
            blacklisted=ListKind.DNC in found,
            blacklist_reason=found.get(ListKind.DNC, ""),
            special=ListKind.SPECIAL in found,
            special_reason=found.get(ListKind.SPECIAL, ""),
        )

    async def add(
        self,
        number: str,
        reason: ListReason,
        *,
        source: str,
        actor: str,
        note: str = "",
        at: datetime | None = None,
    ) -> ListEntry:
        """Put ``number`` on the list its reason belongs to (raises ``InvalidNumber``).

        Already listed on that list: the entry is updated (reason, source...) and
        the audit says "update".
        """
        key = self._plan.parse(number).key
        entry = ListEntry(key, kind_of(reason), reason, source, actor, note, at or utcnow())
        async with self._engine.begin() as conn:
            await self._upsert(conn, entry, action_prefix="")
        if self._mirror is not None:
            await self._mirror.put([entry])
        return entry

    async def remove(
        self,
        number: str,
        *,
        source: str,
        actor: str,
        kind: ListKind | None = None,
        note: str = "",
        at: datetime | None = None,
    ) -> int:
        """Take ``number`` off one list (or both when ``kind`` is None); returns entries removed."""
        key = self._plan.parse(number).key
        when = at or utcnow()
        kinds = [kind] if kind is not None else list(ListKind)
        removed = 0
        async with self._engine.begin() as conn:
            for k in kinds:
                row = (
                    await conn.execute(
                        select(list_entries.c.reason).where(
                            (list_entries.c.number_key == key)
                            & (list_entries.c.list_kind == k.value)
                        )
                    )
                ).first()
                if row is None:
                    continue
                await conn.execute(
                    delete(list_entries).where(
                        (list_entries.c.number_key == key) & (list_entries.c.list_kind == k.value)
                    )
                )
                await conn.execute(
                    list_audit.insert().values(
                        at=when,
                        action="remove",
                        number_key=key,
                        list_kind=k.value,
                        reason=row.reason,
                        source=source,
                        actor=actor,
                        detail=note,
                    )
                )
                removed += 1
        if self._mirror is not None and removed:
            await self._mirror.drop(key, kinds)
        return removed

    async def entries(self, kind: ListKind | None = None) -> list[ListEntry]:
        query = select(list_entries).order_by(list_entries.c.added_at, list_entries.c.number_key)
        if kind is not None:
            query = query.where(list_entries.c.list_kind == kind.value)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            ListEntry(
                r.number_key,
                ListKind(r.list_kind),
                ListReason(r.reason),
                r.source,
                r.actor,
                r.note,
                r.added_at,
            )
            for r in rows
        ]

    async def audit(self, number: str | None = None) -> list[AuditEntry]:
        query = select(list_audit).order_by(list_audit.c.id)
        if number is not None:
            query = query.where(list_audit.c.number_key == self._plan.parse(number).key)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            AuditEntry(
                r.id,
                r.at,
                r.action,
                r.number_key,
                r.list_kind,
                r.reason,
                r.source,
                r.actor,
                r.detail,
            )
            for r in rows
        ]

    async def import_csv(
        self,
        path: str | Path,
        *,
        actor: str,
        default_reason: ListReason | None = None,
        source: str | None = None,
    ) -> ListImportReport:
        text, name = read_csv_text(path)
        return await self.import_text(
            text, name, actor=actor, default_reason=default_reason, source=source or name
        )

    async def import_text(
        self,
        text: str,
        name: str,
        *,
        actor: str,
        default_reason: ListReason | None = None,
        source: str,
    ) -> ListImportReport:
        """Import rows ``number[,reason][,note]``; all or nothing (see ``ImportFailed``)."""
        required = ["number"] + ([] if default_reason else ["reason"])
        rows, problems = csv_rows(
            text, name, required=required, allowed=["number", "reason", "note"]
        )
        wanted: dict[tuple[str, ListKind], ListEntry] = {}
        duplicates = 0
        now = utcnow()
        for line, row in rows:
            try:
                key = self._plan.parse(row["number"]).key
            except InvalidNumber as exc:
                problems.append(ImportProblem(line, "number", str(exc)))
                key = ""
            raw_reason = row.get("reason", "") or (default_reason.value if default_reason else "")
            try:
                reason = ListReason(raw_reason)
            except ValueError:
                problems.append(
                    ImportProblem(
                        line,
                        "reason",
                        f"{raw_reason!r} is not one of {', '.join(r.value for r in ListReason)}",
                    )
                )
                continue
            if not key:
                continue
            entry = ListEntry(key, kind_of(reason), reason, source, actor, row.get("note", ""), now)
            if (key, entry.kind) in wanted:
                duplicates += 1
            wanted[(key, entry.kind)] = entry
        if problems:
            problems.sort(key=lambda p: p.line)
            raise ImportFailed(name, problems)
        added = updated = 0
        async with self._engine.begin() as conn:
            for entry in wanted.values():
                if await self._upsert(conn, entry, action_prefix="import-"):
                    added += 1
                else:
                    updated += 1
            await conn.execute(
                list_audit.insert().values(
                    at=now,
                    action="import",
                    number_key="",
                    list_kind="",
                    reason="",
                    source=source,
                    actor=actor,
                    detail=f"{name}: {len(rows)} rows, {added} added, {updated} updated, "
                    f"{duplicates} duplicate rows",
                )
            )
        if self._mirror is not None:
            await self._mirror.put(list(wanted.values()))
        return ListImportReport(len(rows), added, updated, duplicates)

    async def rebuild_mirror(self) -> int:
        """Copy the SQL lists into the Redis mirror (at start-up, or after a Redis loss)."""
        if self._mirror is None:
            return 0
        entries = await self.entries()
        await self._mirror.rebuild(entries)
        return len(entries)

    async def _upsert(self, conn: AsyncConnection, entry: ListEntry, *, action_prefix: str) -> bool:
        """Insert or update one entry and audit it; True when it was new."""
        where = (list_entries.c.number_key == entry.number_key) & (
            list_entries.c.list_kind == entry.kind.value
        )
        existing = (await conn.execute(select(list_entries.c.reason).where(where))).first()
        values = {
            "reason": entry.reason.value,
            "source": entry.source,
            "actor": entry.actor,
            "note": entry.note,
            "added_at": entry.added_at,
        }
        if existing is None:
            await conn.execute(
                list_entries.insert().values(
                    number_key=entry.number_key, list_kind=entry.kind.value, **values
                )
            )
        else:
            await conn.execute(list_entries.update().where(where).values(**values))
        await conn.execute(
            list_audit.insert().values(
                at=entry.added_at,
                action=action_prefix + ("add" if existing is None else "update"),
                number_key=entry.number_key,
                list_kind=entry.kind.value,
                reason=entry.reason.value,
                source=entry.source,
                actor=entry.actor,
                detail=entry.note if existing is None else f"was {existing.reason}; {entry.note}",
            )
        )
        return existing is None
