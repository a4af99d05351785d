"""Complaint cases step by step (appendix 3) over the recordings area's complaints.

Registering goes through ``RecordingsService.register_complaint`` (the number is
blacklisted at once, the number's recordings linked and held). Each later step is
checked by the pure state machine (``casework.cases``), then written in one
transaction with its audit entry: the step's record (``case_steps``), where the
case stands (``case_cases``), what the step changes on the complaint itself
(``rec_complaints``: judgement, actions, reply, closing, so the existing list,
report and evidence bundle show it) and the penalties. A case closed here releases
its recordings' legal holds as ``complaint close`` does. The evidence bundle is
the recordings area's own export (signed manifest, audited).

Refusals (a step out of order, a missing field) are values: :class:`StepRefused`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from casework.cases import (
    CaseState,
    FieldProblem,
    Step,
    StepInput,
    advance,
    check_step,
    due_at,
    next_steps,
    transition_problem,
)
from casework.quality import month_of
from casework.schema import case_penalties, case_steps, cases, ensure_tables
from casework.settings import CaseworkSettings
from compliance.clock import SYSTEM_CLOCK, Clock
from compliance.masking import mask_data, mask_text
from identity.model import Principal
from recordings import audit, index
from recordings.bundle import BundleInfo
from recordings.model import Complaint, ComplaintChannel, ComplaintStatus, Recording
from recordings.schema import complaints
from recordings.service import RecordingsService, complaint_public


@dataclass(frozen=True, slots=True)
class StepRecord:
    step: Step
    at: datetime
    actor: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CaseView:
    complaint: Complaint
    state: CaseState
    category: str
    due_at: datetime | None
    overdue: bool
    next_steps: tuple[Step, ...]
    steps: tuple[StepRecord, ...] = ()
    recordings: tuple[Recording, ...] = ()


@dataclass(frozen=True, slots=True)
class StepRefused:
    """A step that was not taken: out of order, or fields missing or wrong."""

    complaint_id: int
    step: Step
    problems: tuple[FieldProblem, ...]

    def message(self) -> str:
        return f"complaint {self.complaint_id}: {self.step.value} refused: " + "; ".join(
            str(p) for p in self.problems
        )


def _legacy_state(c: Complaint) -> CaseState:
    """Where a complaint stands that has no case row (registered or judged by the older
    ``complaint judge``/``close`` commands)."""
    if c.status is ComplaintStatus.CLOSED:
        return CaseState(Step.CLOSED, c.received_at, None, None)
    if c.judgement is not None:
        return CaseState(Step.JUDGED, c.received_at, True, c.judgement.company_at_fault)
    return CaseState(Step.REGISTERED, c.received_at)


class CaseService:
    def __init__(
        self,
        recordings: RecordingsService,
        settings: CaseworkSettings,
        *,
        tz: tzinfo = UTC,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.recordings = recordings
        self.clock = clock
        self.settings = settings
        self.rules = settings.cases
        self.tz = tz
        self.engine = recordings.engine

    async def ensure(self) -> None:
        await ensure_tables(self.engine)

    # -- registration ---------------------------------------------------------------------

    async def register(
        self,
        who: Principal,
        number: str,
        channel: ComplaintChannel,
        text: str,
        *,
        received_at: datetime | None = None,
    ) -> CaseView:
        """Register through the recordings area (blacklist first), then open the case."""
        complaint = await self.recordings.register_complaint(
            who, number, channel, text, received_at=received_at
        )
        state = CaseState(Step.REGISTERED, complaint.received_at)
        now = self.clock.wall()
        async with self.engine.begin() as conn:
            await conn.execute(
                cases.insert().values(
                    complaint_id=complaint.id,
                    step=Step.REGISTERED.value,
                    category="",
                    due_at=due_at(state, self.rules),
                    updated_at=now,
                )
            )
            await conn.execute(
                case_steps.insert().values(
                    complaint_id=complaint.id,
                    step=Step.REGISTERED.value,
                    at=now,
                    actor=who.name,
                    data=_json(
                        {"channel": channel.value, "recordings": len(complaint.recording_ids)}
                    ),
                )
            )
        return await self.case(complaint.id)

    # -- steps ----------------------------------------------------------------------------

    async def take_step(
        self, who: Principal, complaint_id: int, step: Step, fields: Mapping[str, Any]
    ) -> CaseView | StepRefused:
        now = self.clock.wall()
        async with self.engine.begin() as conn:
            complaint = await self._complaint(conn, complaint_id)
            row = (
                await conn.execute(
                    select(cases).where(cases.c.complaint_id == complaint_id).with_for_update()
                )
            ).first()
            state = _state(complaint, row)
            problem = transition_problem(state, step)
            if problem is not None:
                return StepRefused(complaint_id, step, (FieldProblem("step", problem),))
            checked = check_step(
                step,
                fields,
                self.rules,
                linked_recordings=complaint.recording_ids,
                item_points=self.settings.scorecard.points(),
            )
            if not isinstance(checked, StepInput):
                return StepRefused(complaint_id, step, tuple(checked))
            after = advance(state, checked)
            await self._apply(conn, who, complaint, checked, now)
            values = {
                "step": step.value,
                "telemarketing": after.telemarketing,
                "at_fault": after.at_fault,
                "due_at": due_at(after, self.rules),
                "updated_at": now,
            }
            if step is Step.CLASSIFIED:
                values["category"] = checked.data["category"]
            if row is None:
                await conn.execute(
                    cases.insert().values({"category": "", **values, "complaint_id": complaint_id})
                )
            else:
                await conn.execute(
                    update(cases).where(cases.c.complaint_id == complaint_id).values(**values)
                )
            await conn.execute(
                case_steps.insert().values(
                    complaint_id=complaint_id,
                    step=step.value,
                    at=now,
                    actor=who.name,
                    data=_json(checked.data),
                )
            )
            await audit.append(
                conn,
                actor=who.name,
                role=who.role.value,
                action=f"complaint.{step.value}",
                target=f"complaint:{complaint_id}",
                reason=f"complaint step {step.value}",
                detail=mask_data(_audit_detail(checked)),
            )
        return await self.case(complaint_id)

    async def _apply(
        self,
        conn: AsyncConnection,
        who: Principal,
        complaint: Complaint,
        done: StepInput,
        now: datetime,
    ) -> None:
        """What a step changes on the complaint record itself."""
        where = complaints.c.id == complaint.id
        d = done.data
        if done.step is Step.JUDGED:
            await conn.execute(
                update(complaints)
                .where(where)
                .values(
                    company_at_fault=d["company_at_fault"],
                    judgement_note=f"[{d['standard']}] {d['note']}",
                    judged_by=who.name,
                    judged_at=now,
                )
            )
        elif done.step is Step.PENALISED:
            for p in done.penalties:
                await conn.execute(
                    case_penalties.insert().values(
                        complaint_id=complaint.id,
                        target_kind=p.target_kind.value,
                        target=p.target,
                        item=p.item,
                        points=p.points,
                        note=p.note,
                        month=month_of(complaint.received_at, self.tz),
                        at=now,
                    )
                )
            summary = "; ".join(
                f"{p.target_kind.value} {p.target}: {p.points} points"
                + (f" ({p.item})" if p.item else "")
                + (f" {p.note}" if p.note else "")
                for p in done.penalties
            )
            await conn.execute(update(complaints).where(where).values(penalty_note=summary))
        elif done.step is Step.REMEDIED:
            refund = d["refund"]
            await conn.execute(
                update(complaints)
                .where(where)
                .values(
                    order_cancelled=bool(d["order_cancelled"]),
                    refund=None if refund is None else Decimal(refund),
                )
            )
        elif done.step is Step.REPLIED:
            await conn.execute(update(complaints).where(where).values(reply=d["reply"]))
        elif done.step is Step.CLOSED:
            await conn.execute(
                update(complaints)
                .where(where)
                .values(status=ComplaintStatus.CLOSED.value, closed_by=who.name, closed_at=now)
            )
            # The recordings of a closed case are no longer held for it.
            await index.refresh_holds(conn, complaint.recording_ids)

    # -- reading --------------------------------------------------------------------------

    async def case(self, complaint_id: int, *, now: datetime | None = None) -> CaseView:
        async with self.recordings.reader.connect() as conn:
            complaint = await self._complaint(conn, complaint_id)
            row = (
                await conn.execute(select(cases).where(cases.c.complaint_id == complaint_id))
            ).first()
            step_rows = (
                await conn.execute(
                    select(case_steps)
                    .where(case_steps.c.complaint_id == complaint_id)
                    .order_by(case_steps.c.id)
                )
            ).all()
            recs = await index.get_by_ids(conn, complaint.recording_ids)
        steps = tuple(
            StepRecord(Step(r.step), r.at, r.actor, json.loads(r.data)) for r in step_rows
        )
        return self._view(complaint, row, now or self.clock.wall(), steps, tuple(recs))

    async def list_cases(
        self,
        *,
        open_only: bool = False,
        overdue_only: bool = False,
        category: str | None = None,
        now: datetime | None = None,
        limit: int = 500,
    ) -> list[CaseView]:
        """Cases newest first; ``overdue_only`` keeps open cases past their next deadline."""
        when = now or self.clock.wall()
        status = ComplaintStatus.OPEN if open_only or overdue_only else None
        found = await self.recordings.list_complaints(status=status, limit=100_000)
        ids = [c.id for c in found]
        async with self.recordings.reader.connect() as conn:
            rows = (
                {
                    int(r.complaint_id): r
                    for r in (
                        await conn.execute(select(cases).where(cases.c.complaint_id.in_(ids)))
                    ).all()
                }
                if ids
                else {}
            )
        out: list[CaseView] = []
        for c in sorted(found, key=lambda c: c.id, reverse=True):
            view = self._view(c, rows.get(c.id), when, (), ())
            if overdue_only and not view.overdue:
                continue
            if category is not None and view.category != category:
                continue
            out.append(view)
            if len(out) >= limit:
                break
        return out

    def _view(
        self,
        complaint: Complaint,
        row: Any,
        now: datetime,
        steps: tuple[StepRecord, ...],
        recs: tuple[Recording, ...],
    ) -> CaseView:
        state = _state(complaint, row)
        due = due_at(state, self.rules)
        return CaseView(
            complaint=complaint,
            state=state,
            category="" if row is None else str(row.category),
            due_at=due,
            overdue=due is not None and now > due,
            next_steps=next_steps(state),
            steps=steps,
            recordings=recs,
        )

    async def _complaint(self, conn: AsyncConnection, complaint_id: int) -> Complaint:
        return await self.recordings.complaint_in(conn, complaint_id)

    async def penalties(
        self,
        *,
        target_kind: str | None = None,
        target: str | None = None,
        month: str | None = None,
    ) -> list[dict[str, Any]]:
        conditions = []
        if target_kind:
            conditions.append(case_penalties.c.target_kind == target_kind)
        if target:
            conditions.append(case_penalties.c.target == target)
        if month:
            conditions.append(case_penalties.c.month == month)
        async with self.recordings.reader.connect() as conn:
            rows = (
                await conn.execute(
                    select(case_penalties).where(*conditions).order_by(case_penalties.c.id)
                )
            ).all()
        return [
            {
                "complaint": int(r.complaint_id),
                "target_kind": r.target_kind,
                "target": r.target,
                "item": r.item,
                "points": str(Decimal(r.points)),
                "note": mask_text(r.note),
                "month": r.month,
            }
            for r in rows
        ]

    # -- evidence -------------------------------------------------------------------------

    async def export_bundle(
        self, who: Principal, complaint_id: int, out_path: Path, *, reason: str
    ) -> BundleInfo:
        """The recordings area's signed evidence bundle of the case (numbers by role)."""
        return await self.recordings.export_bundle(who, complaint_id, out_path, reason=reason)


def _state(complaint: Complaint, row: Any) -> CaseState:
    if complaint.status is ComplaintStatus.CLOSED:
        # Closed by the older ``complaint close`` too: closed is closed.
        return CaseState(Step.CLOSED, complaint.received_at, None, None)
    if row is None:
        return _legacy_state(complaint)
    return CaseState(Step(row.step), complaint.received_at, row.telemarketing, row.at_fault)


def _json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _audit_detail(done: StepInput) -> dict[str, Any]:
    d = dict(done.data)
    # Free text stays in the case's record; the audit entry says what kind of step it was.
    for key in ("note", "reply", "summary"):
        if key in d:
            d[key] = len(str(d[key]))
    return d


def case_public(view: CaseView) -> dict[str, Any]:
    """A case as people may read it: numbers masked, free text masked."""
    doc = complaint_public(view.complaint)
    doc.update(
        {
            "step": view.state.step.value,
            "category": view.category,
            "telemarketing": view.state.telemarketing,
            "at_fault": view.state.at_fault,
            "due_at": None if view.due_at is None else view.due_at.isoformat(),
            "overdue": view.overdue,
            "next_steps": [s.value for s in view.next_steps],
            "steps": [
                {
                    "step": s.step.value,
                    "at": s.at.isoformat(),
                    "actor": s.actor,
                    "data": mask_data(dict(s.data)),
                }
                for s in view.steps
            ],
        }
    )
    return doc


def problems_public(refused: StepRefused) -> list[dict[str, str]]:
    return [{"field": p.field, "message": mask_text(p.message)} for p in refused.problems]


__all__: Sequence[str] = (
    "CaseService",
    "CaseView",
    "StepRecord",
    "StepRefused",
    "case_public",
    "problems_public",
)
