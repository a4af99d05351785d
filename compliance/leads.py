"""Lead lists: CSV import into a campaign, lead status, and atomic claiming for the dialer.

CSV columns (header required, any order): ``number`` (required), ``name``,
``segment``, ``product``, ``assigned_at`` (ISO 8601; a time without offset is
in the policy time zone; empty: the import time), ``dialled_number`` (the number
the customer called us on: the lead came from their own call, so every call to it
is a return / care call presenting that number, rule A.5 / art. 35; see
``dialer.runner.presented_caller_id``). Unknown columns are refused.

Import is all or nothing: every bad row is reported by line and field in one
``ImportFailed`` and nothing is written. Rows with the same number key (in the
file, or already in the campaign) are merged into one lead: empty fields are
filled from the other row, ``assigned_at`` keeps the earliest time (the data
recall clock of rule A.6 starts at the first assignment), an existing lead keeps
its status and history.

The dialer takes work with ``due_leads(campaign, now, limit)``, which claims
leads atomically (status -> in_progress) so two dialer processes never get the
same lead: PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED`` then ``UPDATE`` in one
transaction; SQLite one ``UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING``
(under ``BEGIN IMMEDIATE``). It reports back with ``update_lead``. At start-up a
dialer hands back the claims it still holds with ``release_stale(..., claimer=its
own name)``; other dialer processes' claims on the campaign are left alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from compliance.campaigns import UnknownCampaign
from compliance.ledger import utcnow
from compliance.lists import ImportFailed, ImportProblem, csv_rows, read_csv_text
from compliance.numbers import InvalidNumber, NumberKind, NumberPlan, mask
from compliance.tables import campaigns as campaigns_table
from compliance.tables import leads as leads_table
from compliance.tables import reader

LEAD_COLUMNS = ("number", "name", "segment", "product", "assigned_at", "dialled_number")


class LeadStatus(StrEnum):
    NEW = "new"  # never tried
    IN_PROGRESS = "in_progress"  # claimed by a dialer process
    RETRY = "retry"  # tried (no answer, busy...) or deferred by the gate; due at next_attempt_at
    CALLBACK_DUE = "callback_due"  # the customer asked to be called back at next_attempt_at
    DONE = "done"  # finished (order, talked, retries exhausted)
    REFUSED = "refused"  # may not be called (gate refusal without retry, do-not-call...); reasons


DUE_STATUSES = (LeadStatus.NEW, LeadStatus.RETRY, LeadStatus.CALLBACK_DUE)


@dataclass(frozen=True, slots=True)
class Lead:
    id: int
    campaign: str
    number_key: str
    name: str
    segment: str
    product: str
    assigned_at: datetime
    dialled_number: str | None
    status: LeadStatus
    reasons: tuple[str, ...]
    attempts: int
    next_attempt_at: datetime | None
    claimed_by: str
    claimed_at: datetime | None
    updated_at: datetime

    @property
    def masked(self) -> str:
        return mask(self.number_key)

    def __repr__(self) -> str:  # never print a full number by accident
        return (
            f"Lead(id={self.id}, campaign={self.campaign!r}, number={self.masked}, "
            f"status={self.status.value})"
        )


@dataclass(frozen=True, slots=True)
class LeadImportReport:
    rows: int
    created: int
    merged_in_file: int  # rows folded into an earlier row of the same file
    merged_existing: int  # leads already in the campaign that the file updated

    @property
    def duplicates_merged(self) -> int:
        return self.merged_in_file + self.merged_existing


@dataclass(slots=True)
class _Row:
    line: int
    key: str
    name: str
    segment: str
    product: str
    assigned_at: datetime | None
    dialled_number: str | None


def _parse_time(text: str, tz: tzinfo) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def _merge(a: _Row, b: _Row) -> _Row:
    """``a`` keeps what it has; empty fields come from ``b``; earliest assignment wins."""
    times = [t for t in (a.assigned_at, b.assigned_at) if t is not None]
    return _Row(
        line=a.line,
        key=a.key,
        name=a.name or b.name,
        segment=a.segment or b.segment,
        product=a.product or b.product,
        assigned_at=min(times) if times else None,
        dialled_number=a.dialled_number or b.dialled_number,
    )


def parse_lead_rows(
    text: str,
    source: str,
    tz: tzinfo,
    plan: NumberPlan,
    kinds: frozenset[NumberKind] | None = None,
) -> tuple[list[_Row], int, int]:
    """Validated, merged rows; (rows, row count, merged count). Raises ``ImportFailed``."""
    rows, problems = csv_rows(text, source, required=["number"], allowed=LEAD_COLUMNS)
    merged: dict[str, _Row] = {}
    folded = 0
    for line, row in rows:
        ok = True
        key = ""
        try:
            parsed = plan.parse(row["number"])
            key = parsed.key
            if kinds is not None and parsed.kind not in kinds:
                allowed = ", ".join(sorted(k.value for k in kinds))
                problems.append(
                    ImportProblem(
                        line,
                        "number",
                        f"{parsed.masked} is a {parsed.kind.value} number, not a customer number "
                        f"(policy numbers.customer_kinds: {allowed})",
                    )
                )
                ok = False
        except InvalidNumber as exc:
            problems.append(ImportProblem(line, "number", str(exc)))
            ok = False
        assigned: datetime | None = None
        if row.get("assigned_at"):
            try:
                assigned = _parse_time(row["assigned_at"], tz)
            except ValueError:
                problems.append(
                    ImportProblem(
                        line,
                        "assigned_at",
                        f"{row['assigned_at']!r} is not an ISO 8601 time like 2026-11-02T09:30",
                    )
                )
                ok = False
        dialled: str | None = None
        if row.get("dialled_number"):
            try:
                dialled = plan.parse(row["dialled_number"]).key
            except InvalidNumber as exc:
                problems.append(ImportProblem(line, "dialled_number", str(exc)))
                ok = False
        for name, limit in (("name", 256), ("segment", 64), ("product", 128)):
            if len(row.get(name, "")) > limit:
                problems.append(ImportProblem(line, name, f"longer than {limit} characters"))
                ok = False
        if not ok:
            continue
        item = _Row(
            line,
            key,
            row.get("name", ""),
            row.get("segment", ""),
            row.get("product", ""),
            assigned,
            dialled,
        )
        if key in merged:
            merged[key] = _merge(merged[key], item)
            folded += 1
        else:
            merged[key] = item
    if problems:
        problems.sort(key=lambda p: p.line)
        raise ImportFailed(source, problems)
    return list(merged.values()), len(rows), folded


def _lead_from_row(r: Any) -> Lead:
    return Lead(
        id=r.id,
        campaign=r.campaign,
        number_key=r.number_key,
        name=r.name,
        segment=r.segment,
        product=r.product,
        assigned_at=r.assigned_at,
        dialled_number=r.dialled_number,
        status=LeadStatus(r.status),
        reasons=tuple(json.loads(r.reasons)),
        attempts=r.attempts,
        next_attempt_at=r.next_attempt_at,
        claimed_by=r.claimed_by,
        claimed_at=r.claimed_at,
        updated_at=r.updated_at,
    )


_UNSET: Any = object()


class LeadStore:
    """Leads in SQL (table ``leads``), shared engine of ``compliance.tables``."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        plan: NumberPlan | None = None,
        customer_kinds: frozenset[NumberKind] | None = None,
    ) -> None:
        """``customer_kinds``: kinds of number a lead may have (the policy's), None: any."""
        self._engine = engine
        self._plan = plan or NumberPlan()
        self._kinds = customer_kinds
        self._postgres = engine.dialect.name == "postgresql"
        self._reader = reader(engine)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def plan(self) -> NumberPlan:
        """The number plan the lead keys come from (must be the policy's, ``policy.numbers``)."""
        return self._plan

    async def import_csv(
        self, path: str | Path, campaign: str, *, tz: tzinfo, now: datetime | None = None
    ) -> LeadImportReport:
        text, name = read_csv_text(path)
        return await self.import_text(text, name, campaign, tz=tz, now=now)

    async def import_text(
        self, text: str, source: str, campaign: str, *, tz: tzinfo, now: datetime | None = None
    ) -> LeadImportReport:
        """Import CSV text into ``campaign`` (``UnknownCampaign`` if it does not exist)."""
        when = now or utcnow()
        rows, count, folded = parse_lead_rows(text, source, tz, self._plan, self._kinds)
        created = merged_existing = 0
        async with self._engine.begin() as conn:
            exists = (
                await conn.execute(
                    select(campaigns_table.c.name).where(campaigns_table.c.name == campaign)
                )
            ).first()
            if exists is None:
                raise UnknownCampaign(campaign)
            existing = {
                r.number_key: r
                for r in (
                    await conn.execute(
                        select(leads_table).where(leads_table.c.campaign == campaign)
                    )
                ).all()
            }
            for row in rows:
                old = existing.get(row.key)
                if old is None:
                    await conn.execute(
                        leads_table.insert().values(
                            campaign=campaign,
                            number_key=row.key,
                            name=row.name,
                            segment=row.segment or "default",
                            product=row.product,
                            assigned_at=row.assigned_at or when,
                            dialled_number=row.dialled_number,
                            status=LeadStatus.NEW.value,
                            reasons="[]",
                            attempts=0,
                            next_attempt_at=None,
                            claimed_by="",
                            updated_at=when,
                        )
                    )
                    created += 1
                    continue
                merged_existing += 1
                await conn.execute(
                    update(leads_table)
                    .where(leads_table.c.id == old.id)
                    .values(
                        name=old.name or row.name,
                        segment=old.segment
                        if old.segment != "default" or not row.segment
                        else row.segment,
                        product=old.product or row.product,
                        assigned_at=min(old.assigned_at, row.assigned_at or old.assigned_at),
                        dialled_number=old.dialled_number or row.dialled_number,
                        updated_at=when,
                    )
                )
        return LeadImportReport(count, created, folded, merged_existing)

    async def get(self, lead_id: int) -> Lead:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(leads_table).where(leads_table.c.id == lead_id))
            ).first()
        if row is None:
            raise LookupError(f"no lead with id {lead_id}")
        return _lead_from_row(row)

    async def find(self, campaign: str, number: str) -> Lead | None:
        """The campaign's lead for ``number`` (raises ``InvalidNumber``), or None."""
        key = self._plan.parse(number).key
        async with self._reader.connect() as conn:
            row = (
                await conn.execute(
                    select(leads_table).where(
                        (leads_table.c.campaign == campaign) & (leads_table.c.number_key == key)
                    )
                )
            ).first()
        return None if row is None else _lead_from_row(row)

    async def list_leads(self, campaign: str, status: LeadStatus | None = None) -> list[Lead]:
        query = select(leads_table).where(leads_table.c.campaign == campaign)
        if status is not None:
            query = query.where(leads_table.c.status == status.value)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(leads_table.c.id))).all()
        return [_lead_from_row(r) for r in rows]

    async def counts(self, campaign: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for lead in await self.list_leads(campaign):
            out[lead.status.value] = out.get(lead.status.value, 0) + 1
        return out

    async def due_leads(
        self, campaign: str, now: datetime, limit: int, *, claimer: str = ""
    ) -> list[Lead]:
        """Claim up to ``limit`` due leads (status -> in_progress), oldest due first.

        Due: status new / retry / callback_due and ``next_attempt_at`` empty or <= now.
        Callbacks come first, then retries, then new leads.
        """
        if limit <= 0:
            return []
        due = and_(
            leads_table.c.campaign == campaign,
            leads_table.c.status.in_([s.value for s in DUE_STATUSES]),
            or_(leads_table.c.next_attempt_at.is_(None), leads_table.c.next_attempt_at <= now),
        )
        order = (
            (leads_table.c.status != LeadStatus.CALLBACK_DUE.value),
            leads_table.c.next_attempt_at.is_(None),
            leads_table.c.next_attempt_at,
            leads_table.c.id,
        )
        values = {
            "status": LeadStatus.IN_PROGRESS.value,
            "claimed_by": claimer,
            "claimed_at": now,
            "updated_at": now,
        }
        async with self._engine.begin() as conn:
            if self._postgres:
                ids = (
                    (
                        await conn.execute(
                            select(leads_table.c.id)
                            .where(due)
                            .order_by(*order)
                            .limit(limit)
                            .with_for_update(skip_locked=True)
                        )
                    )
                    .scalars()
                    .all()
                )
                if not ids:
                    return []
                rows = (
                    await conn.execute(
                        update(leads_table)
                        .where(leads_table.c.id.in_(ids))
                        .values(**values)
                        .returning(*leads_table.c)
                    )
                ).all()
            else:
                inner = select(leads_table.c.id).where(due).order_by(*order).limit(limit)
                rows = (
                    await conn.execute(
                        update(leads_table)
                        .where(leads_table.c.id.in_(inner.scalar_subquery()))
                        .values(**values)
                        .returning(*leads_table.c)
                    )
                ).all()
        leads = [_lead_from_row(r) for r in rows]
        leads.sort(key=lambda lead: (lead.status != LeadStatus.CALLBACK_DUE, lead.id))
        return leads

    async def update_lead(
        self,
        lead_id: int,
        *,
        status: LeadStatus,
        next_attempt_at: datetime | None = _UNSET,
        reasons: Sequence[str] | None = None,
        count_attempt: bool = False,
        now: datetime | None = None,
    ) -> Lead:
        """Report back on a claimed lead: its new status, when it is due again, why.

        ``count_attempt`` adds one to the lead's attempt counter (a dial happened).
        Leaving the status in_progress is refused: a claim ends with every update.
        """
        if status == LeadStatus.IN_PROGRESS:
            raise ValueError("update_lead ends a claim; in_progress is set by due_leads only")
        when = now or utcnow()
        values: dict[str, Any] = {
            "status": status.value,
            "claimed_by": "",
            "claimed_at": None,
            "updated_at": when,
        }
        if next_attempt_at is not _UNSET:
            values["next_attempt_at"] = next_attempt_at
        if reasons is not None:
            values["reasons"] = json.dumps(list(reasons), ensure_ascii=False)
        if count_attempt:
            values["attempts"] = leads_table.c.attempts + 1
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(leads_table)
                .where(leads_table.c.id == lead_id)
                .values(**values)
                .returning(*leads_table.c)
            )
            row = result.first()
        if row is None:
            raise LookupError(f"no lead with id {lead_id}")
        return _lead_from_row(row)

    async def release_stale(
        self,
        campaign: str,
        older_than: timedelta,
        now: datetime | None = None,
        *,
        claimer: str | None = None,
    ) -> int:
        """Give back leads claimed longer than ``older_than`` ago (a dialer died holding them).

        ``claimer``: only the leads that claimer holds (a restarting dialer hands back
        its own claims and leaves those of the other dialer processes on the campaign);
        None: every claimer's (only safe when no dialer of the campaign is running).
        """
        when = now or utcnow()
        stale = (
            (leads_table.c.campaign == campaign)
            & (leads_table.c.status == LeadStatus.IN_PROGRESS.value)
            & (leads_table.c.claimed_at < when - older_than)
        )
        if claimer is not None:
            stale = stale & (leads_table.c.claimed_by == claimer)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(leads_table)
                .where(stale)
                .values(
                    status=LeadStatus.RETRY.value, claimed_by="", claimed_at=None, updated_at=when
                )
                .returning(leads_table.c.id)
            )
            return len(result.all())
