"""Quality checks (part 5) stored: samples, reviews with findings, monthly scores, disputes.

Supervisors and compliance staff score a sampled or flagged call against the
site's scorecard; a finding of an item marked ``case`` (customer data leaked, a
complaint) is linked to the complaint case of that call. Agents dispute a review of
their own calls; a supervisor answers; compliance resolves (an overturned review no
longer counts). Each change commits with its audit entry. Refusals are values
(:class:`Refused`); a missing row is ``NotFound``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from casework.quality import (
    DisputeStatus,
    MonthScore,
    Resolution,
    ReviewSource,
    Scorecard,
    check_month,
    item_deduction,
    month_bounds,
    month_of,
    month_score,
    months_back,
    sample,
    team_score,
)
from casework.schema import case_penalties, qa_disputes, qa_findings, qa_reviews, qa_samples
from compliance.clock import SYSTEM_CLOCK, Clock
from compliance.masking import mask_text
from identity.model import Principal, Role
from recordings import audit, index
from recordings.model import ComplaintStatus, Recording
from recordings.schema import complaint_recordings, complaints, recordings
from recordings.service import NotFound, RecordingsService

MAX_COUNT = 50
MAX_NOTE = 4000


@dataclass(frozen=True, slots=True)
class Refused:
    """A quality action not taken, and why (a value, shown to the user as it is)."""

    message: str


@dataclass(frozen=True, slots=True)
class Finding:
    item: str
    count: int = 1
    note: str = ""


@dataclass(frozen=True, slots=True)
class Review:
    id: int
    recording: str
    recording_id: int
    agent: str
    team: str
    month: str
    source: ReviewSource
    reviewer: str
    reviewed_at: datetime
    note: str
    deduction: Decimal
    complaint_id: int | None
    voided: bool
    findings: tuple[Finding, ...]
    dispute: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SampleRow:
    month: str
    recording_id: int
    recording: str
    agent: str
    source: str
    started_at: datetime
    reviewed: bool


class QualityService:
    def __init__(
        self,
        recordings: RecordingsService,
        card: Scorecard,
        *,
        tz: tzinfo = UTC,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.recordings = recordings
        self.clock = clock
        self.card = card
        self.tz = tz
        self.engine = recordings.engine

    # -- samples --------------------------------------------------------------------------

    async def draw_samples(
        self, who: Principal, month: str, *, per_agent: int | None = None
    ) -> dict[str, list[int]] | Refused:
        """Draw N calls per agent for ``month`` (reproducible; already drawn ones stay)."""
        if (bad := check_month(month)) is not None:
            return Refused(bad)
        n = self.card.sample_per_agent if per_agent is None else per_agent
        start, end = month_bounds(month, self.tz)
        in_month = and_(recordings.c.started_at >= start, recordings.c.started_at < end)
        async with self.recordings.reader.connect() as conn:
            rows = (
                await conn.execute(
                    select(recordings.c.agent, recordings.c.id).where(
                        in_month, recordings.c.agent != ""
                    )
                )
            ).all()
        by_agent: dict[str, list[int]] = {}
        for agent, rid in rows:
            by_agent.setdefault(str(agent), []).append(int(rid))
        drawn = {
            agent: sample(ids, n, seed=self.card.sample_seed, month=month, agent=agent)
            for agent, ids in sorted(by_agent.items())
        }
        now = self.clock.wall()
        async with self.engine.begin() as conn:
            have = {
                int(r)
                for r in (
                    await conn.execute(
                        select(qa_samples.c.recording_id).where(qa_samples.c.month == month)
                    )
                ).scalars()
            }
            new = [
                {
                    "month": month,
                    "recording_id": rid,
                    "agent": agent,
                    "source": "sampled",
                    "flagged_by": "",
                    "note": "",
                    "at": now,
                }
                for agent, ids in drawn.items()
                for rid in ids
                if rid not in have
            ]
            if new:
                await conn.execute(qa_samples.insert(), new)
            await audit.append(
                conn,
                actor=who.name,
                role=who.role.value,
                action="qa.sample",
                target=f"month:{month}",
                reason=f"quality sample of {n} per agent",
                detail={
                    "agents": len(drawn),
                    "drawn": sum(len(v) for v in drawn.values()),
                    "new": len(new),
                },
            )
        return drawn

    async def flag(
        self, who: Principal, recording_name: str, *, note: str = ""
    ) -> Recording | Refused:
        """Put a call on the review list (a supervisor heard something, a complaint)."""
        if len(note) > MAX_NOTE:
            return Refused(f"note is too long ({len(note)} characters, at most {MAX_NOTE})")
        rec = await self.recordings.get(recording_name)
        if not rec.agent:
            return Refused(f"recording {rec.name} has no agent: nobody to score")
        month = month_of(rec.started_at, self.tz)
        async with self.engine.begin() as conn:
            exists = (
                await conn.execute(
                    select(qa_samples.c.source).where(
                        qa_samples.c.month == month, qa_samples.c.recording_id == rec.id
                    )
                )
            ).first()
            if exists is None:
                await conn.execute(
                    qa_samples.insert().values(
                        month=month,
                        recording_id=rec.id,
                        agent=rec.agent,
                        source="flagged",
                        flagged_by=who.name,
                        note=note,
                        at=self.clock.wall(),
                    )
                )
            await audit.append(
                conn,
                actor=who.name,
                role=who.role.value,
                action="qa.flag",
                target=rec.name,
                reason="call flagged for a quality review",
                detail={"note_chars": len(note)},
            )
        return rec

    async def queue(self, month: str, *, agent: str | None = None) -> list[SampleRow]:
        """The calls to review in a month (sampled and flagged), with whether each is done."""
        cond = [qa_samples.c.month == month]
        if agent:
            cond.append(qa_samples.c.agent == agent)
        reviewed = (
            select(func.count())
            .select_from(qa_reviews)
            .where(qa_reviews.c.recording_id == qa_samples.c.recording_id)
            .scalar_subquery()
        )
        async with self.recordings.reader.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        qa_samples.c.month,
                        qa_samples.c.recording_id,
                        recordings.c.name,
                        qa_samples.c.agent,
                        qa_samples.c.source,
                        recordings.c.started_at,
                        reviewed.label("reviews"),
                    )
                    .select_from(
                        qa_samples.join(recordings, recordings.c.id == qa_samples.c.recording_id)
                    )
                    .where(*cond)
                    .order_by(qa_samples.c.agent, recordings.c.started_at)
                )
            ).all()
        return [
            SampleRow(
                r.month,
                int(r.recording_id),
                r.name,
                r.agent,
                r.source,
                r.started_at,
                int(r.reviews) > 0,
            )
            for r in rows
        ]

    # -- reviews --------------------------------------------------------------------------

    async def score(
        self,
        who: Principal,
        recording_name: str,
        findings: Sequence[Finding],
        *,
        note: str = "",
        complaint_id: int | None = None,
    ) -> Review | Refused:
        """Score one call. No finding is a clean call (zero deductions)."""
        problem = self._check_findings(findings, note)
        if problem is not None:
            return problem
        rec = await self.recordings.get(recording_name)
        if not rec.agent:
            return Refused(f"recording {rec.name} has no agent: nobody to score")
        if who.agent_id and who.agent_id == rec.agent:
            return Refused("nobody scores their own calls")
        month = month_of(rec.started_at, self.tz)
        deduction = sum(
            (item_deduction(self.card.items[f.item], f.count) for f in findings), Decimal(0)
        )
        needs_case = [f.item for f in findings if self.card.items[f.item].opens_case]
        now = self.clock.wall()
        async with self.engine.begin() as conn:
            sampled = (
                await conn.execute(
                    select(qa_samples.c.source).where(
                        qa_samples.c.month == month, qa_samples.c.recording_id == rec.id
                    )
                )
            ).scalar()
            linked = await self._case_of(conn, rec.id, complaint_id)
            if isinstance(linked, Refused):
                return linked
            if needs_case and linked is None:
                return Refused(
                    f"finding {', '.join(needs_case)} belongs to a complaint case and the call "
                    f"{rec.name} is linked to none: register the complaint "
                    "(dialer complaint register) and give its id"
                )
            source = (
                ReviewSource.COMPLAINT
                if linked is not None and needs_case
                else ReviewSource(sampled or "flagged")
            )
            try:
                rid = int(
                    (
                        await conn.execute(
                            qa_reviews.insert()
                            .values(
                                recording_id=rec.id,
                                agent=rec.agent,
                                team=self.card.team_of(rec.agent),
                                month=month,
                                source=source.value,
                                reviewer=who.name,
                                reviewed_at=now,
                                note=note,
                                deduction=deduction,
                                complaint_id=linked,
                                voided=False,
                            )
                            .returning(qa_reviews.c.id)
                        )
                    ).scalar_one()
                )
            except IntegrityError:
                return Refused(f"{who.name} has already scored {rec.name}")
            if findings:
                await conn.execute(
                    qa_findings.insert(),
                    [
                        {"review_id": rid, "item": f.item, "count": f.count, "note": f.note}
                        for f in findings
                    ],
                )
            await audit.append(
                conn,
                actor=who.name,
                role=who.role.value,
                action="qa.score",
                target=rec.name,
                reason="quality review",
                detail={
                    "review": rid,
                    "agent": rec.agent,
                    "month": month,
                    "findings": {f.item: f.count for f in findings},
                    "deduction": str(deduction),
                    "complaint": linked,
                },
            )
        return await self.review(rid)

    def _check_findings(self, findings: Sequence[Finding], note: str) -> Refused | None:
        if len(note) > MAX_NOTE or "\x00" in note:
            return Refused(f"note: at most {MAX_NOTE} characters, no NUL")
        seen: set[str] = set()
        for i, f in enumerate(findings):
            if f.item not in self.card.items:
                known = ", ".join(sorted(self.card.items))
                return Refused(f"findings[{i}].item: unknown item {f.item!r} (known: {known})")
            if f.item in seen:
                return Refused(f"findings[{i}].item: {f.item} given twice; give a count")
            seen.add(f.item)
            if not 1 <= f.count <= MAX_COUNT:
                return Refused(f"findings[{i}].count: must be 1 to {MAX_COUNT}, got {f.count}")
            if len(f.note) > MAX_NOTE:
                return Refused(f"findings[{i}].note: at most {MAX_NOTE} characters")
        return None

    async def _case_of(
        self, conn: AsyncConnection, recording_id: int, complaint_id: int | None
    ) -> int | Refused | None:
        """The complaint case a finding of this call belongs to: the one named (it must
        cover the call), else the call's open complaint, else its latest one."""
        rows = (
            await conn.execute(
                select(complaints.c.id, complaints.c.status)
                .select_from(
                    complaint_recordings.join(
                        complaints, complaints.c.id == complaint_recordings.c.complaint_id
                    )
                )
                .where(complaint_recordings.c.recording_id == recording_id)
                .order_by(complaints.c.id.desc())
            )
        ).all()
        ids = [int(r.id) for r in rows]
        if complaint_id is not None:
            if complaint_id not in ids:
                return Refused(f"complaint {complaint_id} does not cover this call")
            return complaint_id
        open_ids = [int(r.id) for r in rows if r.status == ComplaintStatus.OPEN.value]
        if open_ids:
            return open_ids[0]
        return ids[0] if ids else None

    async def review(self, review_id: int) -> Review:
        found = await self._reviews([qa_reviews.c.id == review_id])
        if not found:
            raise NotFound(f"no review {review_id}")
        return found[0]

    async def reviews(
        self, *, agent: str | None = None, month: str | None = None, team: str | None = None
    ) -> list[Review]:
        cond = []
        if agent:
            cond.append(qa_reviews.c.agent == agent)
        if month:
            cond.append(qa_reviews.c.month == month)
        if team:
            cond.append(qa_reviews.c.team == team)
        return await self._reviews(cond)

    async def _reviews(self, cond: list[Any]) -> list[Review]:
        async with self.recordings.reader.connect() as conn:
            rows = (
                await conn.execute(
                    select(qa_reviews, recordings.c.name)
                    .select_from(
                        qa_reviews.join(recordings, recordings.c.id == qa_reviews.c.recording_id)
                    )
                    .where(*cond)
                    .order_by(qa_reviews.c.id)
                )
            ).all()
            ids = [int(r.id) for r in rows]
            found: dict[int, list[Finding]] = {}
            disputes: dict[int, dict[str, Any]] = {}
            if ids:
                for f in (
                    await conn.execute(
                        select(qa_findings)
                        .where(qa_findings.c.review_id.in_(ids))
                        .order_by(qa_findings.c.id)
                    )
                ).all():
                    found.setdefault(int(f.review_id), []).append(
                        Finding(f.item, int(f._mapping["count"]), f.note)
                    )
                for d in (
                    await conn.execute(select(qa_disputes).where(qa_disputes.c.review_id.in_(ids)))
                ).all():
                    disputes[int(d.review_id)] = _dispute_doc(d)
        return [
            Review(
                id=int(r.id),
                recording=r.name,
                recording_id=int(r.recording_id),
                agent=r.agent,
                team=r.team,
                month=r.month,
                source=ReviewSource(r.source),
                reviewer=r.reviewer,
                reviewed_at=r.reviewed_at,
                note=r.note,
                deduction=Decimal(r.deduction),
                complaint_id=None if r.complaint_id is None else int(r.complaint_id),
                voided=bool(r.voided),
                findings=tuple(found.get(int(r.id), ())),
                dispute=disputes.get(int(r.id)),
            )
            for r in rows
        ]

    # -- monthly scores -------------------------------------------------------------------

    async def month_scores(
        self, month: str, *, agent: str | None = None, team: str | None = None
    ) -> list[MonthScore]:
        """Each agent's month (agents with a review or a complaint penalty that month)."""
        cond_r = [qa_reviews.c.month == month, qa_reviews.c.voided.is_(False)]
        cond_p = [case_penalties.c.month == month, case_penalties.c.target_kind == "agent"]
        if agent:
            cond_r.append(qa_reviews.c.agent == agent)
            cond_p.append(case_penalties.c.target == agent)
        async with self.recordings.reader.connect() as conn:
            reviews = (
                await conn.execute(
                    select(qa_reviews.c.agent, func.count())
                    .where(*cond_r)
                    .group_by(qa_reviews.c.agent)
                )
            ).all()
            findings = (
                await conn.execute(
                    select(qa_reviews.c.agent, qa_findings.c.item, func.sum(qa_findings.c.count))
                    .select_from(
                        qa_findings.join(qa_reviews, qa_reviews.c.id == qa_findings.c.review_id)
                    )
                    .where(*cond_r)
                    .group_by(qa_reviews.c.agent, qa_findings.c.item)
                )
            ).all()
            penalties = (
                await conn.execute(
                    select(case_penalties.c.target, case_penalties.c.points).where(*cond_p)
                )
            ).all()
        counts = {str(a): int(n) for a, n in reviews}
        by_agent: dict[str, list[tuple[str, int]]] = {}
        for a, item, n in findings:
            by_agent.setdefault(str(a), []).append((str(item), int(n)))
        pen: dict[str, list[Decimal]] = {}
        for target, points in penalties:
            pen.setdefault(str(target), []).append(Decimal(points))
        agents = sorted(set(counts) | set(pen))
        if team is not None:
            members = set(self.card.teams.get(team, ()))
            agents = [a for a in agents if a in members]
        return [
            month_score(
                self.card,
                a,
                month,
                by_agent.get(a, ()),
                reviews=counts.get(a, 0),
                penalties=pen.get(a, ()),
            )
            for a in agents
        ]

    async def agent_trend(
        self, agent: str, month: str, months: int = 6
    ) -> list[tuple[str, MonthScore | None]]:
        out: list[tuple[str, MonthScore | None]] = []
        for m in months_back(month, months):
            found = await self.month_scores(m, agent=agent)
            out.append((m, found[0] if found else None))
        return out

    async def team_trend(
        self, team: str, month: str, months: int = 6
    ) -> list[tuple[str, Decimal | None, int]]:
        out: list[tuple[str, Decimal | None, int]] = []
        for m in months_back(month, months):
            scores = await self.month_scores(m, team=team)
            out.append((m, team_score(scores), len(scores)))
        return out

    # -- disputes -------------------------------------------------------------------------

    async def open_dispute(self, who: Principal, review_id: int, text: str) -> Review | Refused:
        """An agent disputes a review of one of their own calls."""
        if not text.strip() or len(text) > MAX_NOTE:
            return Refused(f"text: required, at most {MAX_NOTE} characters")
        review = await self.review(review_id)
        if who.role is not Role.AGENT or who.agent_id != review.agent:
            return Refused("only the agent whose call was scored may dispute the review")
        if review.voided:
            return Refused(f"review {review_id} no longer counts; nothing to dispute")
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    qa_disputes.insert().values(
                        review_id=review_id,
                        agent=review.agent,
                        status=DisputeStatus.OPEN.value,
                        text=text,
                        opened_at=self.clock.wall(),
                    )
                )
                await audit.append(
                    conn,
                    actor=who.name,
                    role=who.role.value,
                    action="qa.dispute",
                    target=f"review:{review_id}",
                    reason="agent disputes a quality review",
                    detail={"chars": len(text)},
                )
        except IntegrityError:
            return Refused(f"review {review_id} is already disputed")
        return await self.review(review_id)

    async def answer_dispute(self, who: Principal, review_id: int, answer: str) -> Review | Refused:
        if not answer.strip() or len(answer) > MAX_NOTE:
            return Refused(f"answer: required, at most {MAX_NOTE} characters")
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(qa_disputes)
                .where(
                    qa_disputes.c.review_id == review_id,
                    qa_disputes.c.status == DisputeStatus.OPEN.value,
                )
                .values(
                    status=DisputeStatus.ANSWERED.value,
                    answer=answer,
                    answered_by=who.name,
                    answered_at=self.clock.wall(),
                )
            )
            if result.rowcount == 0:
                return Refused(f"review {review_id} has no open dispute")
            await audit.append(
                conn,
                actor=who.name,
                role=who.role.value,
                action="qa.dispute.answer",
                target=f"review:{review_id}",
                reason="dispute answered",
                detail={"chars": len(answer)},
            )
        return await self.review(review_id)

    async def resolve_dispute(
        self, who: Principal, review_id: int, resolution: Resolution, note: str
    ) -> Review | Refused:
        if not note.strip() or len(note) > MAX_NOTE:
            return Refused(f"note: required, at most {MAX_NOTE} characters")
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(qa_disputes)
                .where(
                    qa_disputes.c.review_id == review_id,
                    qa_disputes.c.status == DisputeStatus.ANSWERED.value,
                )
                .values(
                    status=DisputeStatus.RESOLVED.value,
                    resolution=resolution.value,
                    resolution_note=note,
                    resolved_by=who.name,
                    resolved_at=self.clock.wall(),
                )
            )
            if result.rowcount == 0:
                return Refused(f"review {review_id} has no answered dispute to resolve")
            if resolution is Resolution.OVERTURNED:
                await conn.execute(
                    update(qa_reviews).where(qa_reviews.c.id == review_id).values(voided=True)
                )
            await audit.append(
                conn,
                actor=who.name,
                role=who.role.value,
                action="qa.dispute.resolve",
                target=f"review:{review_id}",
                reason=f"dispute {resolution.value}",
                detail={"chars": len(note)},
            )
        return await self.review(review_id)

    async def disputes(self, *, status: DisputeStatus | None = None) -> list[dict[str, Any]]:
        cond = [] if status is None else [qa_disputes.c.status == status.value]
        async with self.recordings.reader.connect() as conn:
            rows = (
                await conn.execute(select(qa_disputes).where(*cond).order_by(qa_disputes.c.id))
            ).all()
        return [_dispute_doc(r) for r in rows]

    async def recording_of(self, review: Review) -> Recording:
        async with self.recordings.reader.connect() as conn:
            found = await index.get_by_ids(conn, [review.recording_id])
        if not found:
            raise NotFound(f"recording of review {review.id} is gone")
        return found[0]


def _dispute_doc(d: Any) -> dict[str, Any]:
    return {
        "review": int(d.review_id),
        "agent": d.agent,
        "status": d.status,
        "text": mask_text(d.text),
        "opened_at": d.opened_at.isoformat(),
        "answer": mask_text(d.answer),
        "answered_by": d.answered_by,
        "resolution": d.resolution,
        "resolution_note": mask_text(d.resolution_note),
        "resolved_by": d.resolved_by,
    }


def review_public(r: Review) -> dict[str, Any]:
    return {
        "id": r.id,
        "recording": r.recording,
        "agent": r.agent,
        "team": r.team,
        "month": r.month,
        "source": r.source.value,
        "reviewer": r.reviewer,
        "reviewed_at": r.reviewed_at.isoformat(),
        "note": mask_text(r.note),
        "deduction": str(r.deduction),
        "complaint": r.complaint_id,
        "voided": r.voided,
        "findings": [
            {"item": f.item, "count": f.count, "note": mask_text(f.note)} for f in r.findings
        ],
        "dispute": r.dispute,
    }


def score_public(s: MonthScore) -> dict[str, Any]:
    return {
        "agent": s.agent,
        "month": s.month,
        "reviews": s.reviews,
        "items": [
            {"item": t.code, "findings": t.findings, "deduction": str(t.deduction)} for t in s.items
        ],
        "penalties": str(s.penalties),
        "score": str(s.score),
    }
