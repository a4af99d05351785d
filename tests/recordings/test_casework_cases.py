"""Complaint cases step by step (appendix 3) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from rec_helpers import COMPLIANCE, NUMBER, OTHER, T0, Env

from casework.cases import Step
from casework.schema import case_penalties
from casework.service import CaseService, CaseView, StepRefused, case_public
from casework.settings import default_settings
from identity.model import Principal, Role
from recordings import audit
from recordings.model import ComplaintChannel, ComplaintStatus, Judgement, SearchQuery

pytestmark = pytest.mark.timeout(60)

SUPERVISOR = Principal("sam", Role.SUPERVISOR)


async def _cases(env: Env) -> CaseService:
    cs = CaseService(env.service, default_settings())
    await cs.ensure()
    return cs


async def _step(cs: CaseService, cid: int, step: Step, **fields: object) -> CaseView:
    result = await cs.take_step(COMPLIANCE, cid, step, fields)
    assert isinstance(result, CaseView), result
    return result


async def test_complaint_from_registration_to_closing(env: Env, tmp_path: Path) -> None:
    cs = await _cases(env)
    r1 = await env.add("rec-c1", started=T0, freq=440)
    await env.add("rec-c2", started=T0 + timedelta(days=1), freq=550, agent="a2")
    await env.add("rec-x", number=OTHER, started=T0, freq=660)

    # Registration blacklists the number at once and links the number's calls.
    assert not (await env.lists.status(NUMBER)).blacklisted
    view = await cs.register(
        COMPLIANCE, "138 1234 5678", ComplaintChannel.CALL, "客户13812345678投诉态度差"
    )
    cid = view.complaint.id
    assert (await env.lists.status(NUMBER)).blacklisted
    assert view.state.step is Step.REGISTERED and view.next_steps == (Step.CLASSIFIED,)
    assert {r.name for r in view.recordings} == {"rec-c1", "rec-c2"}
    assert view.due_at == view.complaint.received_at + timedelta(hours=24)
    doc = case_public(view)
    assert "13812345678" not in json.dumps(doc, ensure_ascii=False)
    assert doc["number"] == "138****5678"

    # Out of order: refused as a value naming the step; nothing is written.
    refused = await cs.take_step(COMPLIANCE, cid, Step.JUDGED, {"company_at_fault": True})
    assert isinstance(refused, StepRefused)
    assert refused.problems[0].field == "step" and "next step is classified" in refused.message()
    bad = await cs.take_step(COMPLIANCE, cid, Step.CLASSIFIED, {"category": "attitude"})
    assert isinstance(bad, StepRefused) and bad.problems[0].field == "dispatched_to"
    assert (await cs.case(cid)).state.step is Step.REGISTERED

    await _step(cs, cid, Step.CLASSIFIED, category="attitude", dispatched_to="tm-desk")
    stray = await cs.take_step(COMPLIANCE, cid, Step.EVIDENCE, {"recordings": [r1.id, 99999]})
    assert isinstance(stray, StepRefused) and "99999" in stray.message()
    await _step(cs, cid, Step.EVIDENCE, recordings=[r1.id], note="listened to rec-c1")
    await _step(
        cs,
        cid,
        Step.JUDGED,
        company_at_fault="yes",
        standard="四.1",
        note="agent raised voice at 0:42",
    )
    await _step(
        cs,
        cid,
        Step.PENALISED,
        penalties=[
            {"target_kind": "agent", "target": "a1", "item": "complaint"},
            {"target_kind": "partner", "target": "acme-call", "points": "3", "note": "partner fee"},
        ],
    )
    await _step(
        cs,
        cid,
        Step.REMEDIED,
        order_cancelled=True,
        refund="120.50",
        note="order cancelled, fee refunded",
    )
    await _step(cs, cid, Step.REPORTED, summary="agent warned, partner fined, refunded")
    await _step(cs, cid, Step.REPLIED, channel="call", reply="我们已处理并致歉")

    # The complaint record shows the judgement and actions (list, report, bundle read it).
    c = await env.service.complaint(cid)
    assert c.judgement is not None and c.judgement.company_at_fault
    assert c.judgement.order_cancelled and c.judgement.refund == Decimal("120.50")
    assert "partner acme-call: 3 points" in c.judgement.penalty_note
    assert c.reply == "我们已处理并致歉" and c.status is ComplaintStatus.OPEN
    assert all(
        r.legal_hold
        for r in (
            await env.service.search(
                COMPLIANCE, SearchQuery(complaint_id=cid), reason="holds", filters={}
            )
        ).items
    )

    # The evidence bundle: the recordings area's signed export, verified.
    out = tmp_path / "case.zip"
    info = await cs.export_bundle(COMPLIANCE, cid, out, reason="complaint case")
    assert info.files > 0 and await env.service.verify_bundle(out) == []
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        complaint_doc = json.loads(zf.read("complaint.json"))
    assert "recordings/rec-c1.wav" in names and complaint_doc["number"] == NUMBER
    assert complaint_doc["judgement"]["refund"] == "120.50"

    closed = await _step(cs, cid, Step.CLOSED)
    assert closed.state.step is Step.CLOSED and not closed.overdue and closed.due_at is None
    assert [s.step for s in closed.steps] == list(Step)
    assert (await env.service.complaint(cid)).status is ComplaintStatus.CLOSED
    held = await env.service.search(
        COMPLIANCE, SearchQuery(complaint_id=cid), reason="h", filters={}
    )
    assert not any(r.legal_hold for r in held.items)
    again = await cs.take_step(COMPLIANCE, cid, Step.CLOSED, {})
    assert isinstance(again, StepRefused) and "closed" in again.message()

    # Each step is on the audit record, numbers masked, and the chain holds.
    actions = [e.action async for e in audit.entries(env.engine)]
    for step in list(Step)[1:]:
        assert f"complaint.{step.value}" in actions
    assert await audit.verify(env.engine) == []
    month = view.complaint.received_at.astimezone(UTC).strftime("%Y-%m")
    assert await cs.penalties(target="a1") == [
        {
            "complaint": cid,
            "target_kind": "agent",
            "target": "a1",
            "item": "complaint",
            "points": "1.00",
            "note": "",
            "month": month,
        }
    ]
    async with env.engine.connect() as conn:
        rows = (await conn.execute(case_penalties.select().order_by(case_penalties.c.id))).all()
    assert [(r.target_kind, r.target, Decimal(r.points)) for r in rows] == [
        ("agent", "a1", Decimal(1)),
        ("partner", "acme-call", Decimal(3)),
    ]


async def test_other_complaint_route_and_not_at_fault(env: Env) -> None:
    cs = await _cases(env)
    other = await cs.register(COMPLIANCE, NUMBER, ComplaintChannel.LETTER, "billing question")
    await _step(cs, other.complaint.id, Step.CLASSIFIED, category="other", dispatched_to="billing")
    view = await _step(cs, other.complaint.id, Step.REPORTED, summary="forwarded to billing")
    assert view.next_steps == (Step.REPLIED,)

    fair = await cs.register(COMPLIANCE, OTHER, ComplaintChannel.VISIT, "agent was rude")
    cid = fair.complaint.id
    await _step(cs, cid, Step.CLASSIFIED, category="attitude", dispatched_to="tm-desk")
    await _step(cs, cid, Step.EVIDENCE, note="no call recorded for this number")
    judged = await _step(
        cs, cid, Step.JUDGED, company_at_fault="no", standard="四.1", note="no call found"
    )
    assert judged.next_steps == (Step.REPORTED,)
    refused = await cs.take_step(COMPLIANCE, cid, Step.PENALISED, {"penalties": []})
    assert isinstance(refused, StepRefused)


async def test_overdue_cases_and_legacy_commands_keep_working(env: Env) -> None:
    cs = await _cases(env)
    now = datetime.now(UTC)
    late = await cs.register(
        COMPLIANCE,
        NUMBER,
        ComplaintChannel.CALL,
        "no answer for days",
        received_at=now - timedelta(days=2),
    )
    fresh = await cs.register(COMPLIANCE, OTHER, ComplaintChannel.CALL, "just now")
    overdue = await cs.list_cases(overdue_only=True)
    assert [v.complaint.id for v in overdue] == [late.complaint.id]
    assert {v.complaint.id for v in await cs.list_cases(open_only=True)} == {
        late.complaint.id,
        fresh.complaint.id,
    }
    # Classifying moves the deadline to the evidence step (48 h from receipt): still late.
    view = await _step(
        cs, late.complaint.id, Step.CLASSIFIED, category="harassment", dispatched_to="tm-desk"
    )
    assert view.overdue
    assert [v.complaint.id for v in await cs.list_cases(category="harassment")] == [
        late.complaint.id
    ]

    # The older one-shot commands still judge and close; the case follows.
    await env.service.judge(
        COMPLIANCE, fresh.complaint.id, Judgement(company_at_fault=False, reply="sorry")
    )
    await env.service.close(COMPLIANCE, fresh.complaint.id)
    assert (await cs.case(fresh.complaint.id)).state.step is Step.CLOSED
    legacy = await env.service.register_complaint(
        COMPLIANCE, "13700001111", ComplaintChannel.CALL, "old path"
    )
    assert (await cs.case(legacy.id)).state.step is Step.REGISTERED
    await _step(cs, legacy.id, Step.CLASSIFIED, category="attitude", dispatched_to="tm")


async def test_a_case_falls_overdue_as_the_clock_moves(env: Env) -> None:
    from compliance.clock import ManualClock

    clock = ManualClock(datetime.now(UTC))
    cs = CaseService(env.service, default_settings(), clock=clock)
    await cs.ensure()
    view = await cs.register(COMPLIANCE, NUMBER, ComplaintChannel.CALL, "no call back")
    assert not (await cs.case(view.complaint.id)).overdue
    clock.advance(25 * 3600)  # the classification was due within 24 hours
    assert (await cs.case(view.complaint.id)).overdue
    assert [v.complaint.id for v in await cs.list_cases(overdue_only=True)] == [view.complaint.id]
    await _step(cs, view.complaint.id, Step.CLASSIFIED, category="harassment", dispatched_to="tm")
    assert not (await cs.case(view.complaint.id)).overdue  # evidence is due at 48 hours
