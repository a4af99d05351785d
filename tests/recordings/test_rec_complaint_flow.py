"""The whole complaint flow, registration to evidence bundle, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from rec_helpers import COMPLIANCE, NUMBER, OTHER, T0, Env

from identity.model import Principal, Role
from recordings import audit
from recordings.model import ComplaintChannel, ComplaintStatus, Judgement, SearchQuery
from recordings.service import BadInput, Conflict

pytestmark = pytest.mark.timeout(30)


async def test_complaint_flow_to_verified_evidence_bundle(env: Env, tmp_path: Path) -> None:
    from datetime import timedelta

    service = env.service
    await env.add("rec-a1", started=T0, freq=440)
    await env.add("rec-a2", started=T0 + timedelta(days=3), freq=550, agent="a2")
    await env.add("rec-b1", number=OTHER, started=T0, freq=660)
    env.timeline._timelines["a1"] = [
        {"at": "2026-03-02T10:00:00Z", "event": "originate", "number": NUMBER},
        {"at": "2026-03-02T10:00:04Z", "event": "answered"},
    ]
    env.timeline._decisions["a1"] = [{"allowed": True, "policy_version": "p1", "number": NUMBER}]

    # Register: the number is blacklisted at once, its two recordings linked and held.
    assert not (await env.lists.status(NUMBER)).blacklisted
    case = await service.register_complaint(
        COMPLIANCE, "+86 138 1234 5678", ComplaintChannel.LETTER, "rude agent on 2 March"
    )
    status = await env.lists.status(NUMBER)
    assert status.blacklisted and status.blacklist_reason == "complaint"
    assert not (await env.lists.status(OTHER)).blacklisted
    assert case.status is ComplaintStatus.OPEN and len(case.recording_ids) == 2
    assert case.number_masked == "138****5678"
    held = {
        r.name: r.legal_hold
        for r in (
            await service.search(COMPLIANCE, SearchQuery(), reason="check holds", filters={})
        ).items
    }
    assert held == {"rec-a1": True, "rec-a2": True, "rec-b1": False}

    # A late recording of the same number (RecordingFinished after the complaint) is held too.
    await env.add("rec-a3", started=T0 + timedelta(days=4), freq=770)
    case = await service.complaint(case.id)
    assert len(case.recording_ids) == 3

    # Search by complaint, by number, by agent.
    by_complaint = await service.search(
        COMPLIANCE, SearchQuery(complaint_id=case.id), reason="complaint 1", filters={}
    )
    assert {r.name for r in by_complaint.items} == {"rec-a1", "rec-a2", "rec-a3"}
    by_number = await service.search(
        COMPLIANCE,
        SearchQuery(number_hmac=service.number_digest("138-1234-5678")),
        reason="complaint 1",
        filters={},
    )
    assert [r.name for r in by_number.items] == ["rec-a3", "rec-a2", "rec-a1"]

    # Closing before judging is refused; judging records the actions.
    with pytest.raises(Conflict):
        await service.close(COMPLIANCE, case.id, reply="sorry")
    judged = await service.judge(
        COMPLIANCE,
        case.id,
        Judgement(
            company_at_fault=True,
            note="agent pushed the sale",
            penalty_note="agent a1: warning",
            order_cancelled=True,
            refund=Decimal("120.50"),
            reply="We apologise; refunded.",
        ),
    )
    assert judged.judgement is not None and judged.judgement.refund == Decimal("120.50")

    # The evidence bundle: compliance gets the full number; checksums verify.
    out = tmp_path / "bundle.zip"
    info = await service.export_bundle(COMPLIANCE, case.id, out, reason="complaint 1 judgement")
    assert await service.verify_bundle(out) == []
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        complaint_doc = json.loads(zf.read("complaint.json"))
        timeline = json.loads(zf.read("calls/a1/timeline.json"))
        decisions = json.loads(zf.read("calls/a1/decisions.json"))
        audio = zf.read("recordings/rec-a1.wav")
    assert {
        "recordings/rec-a1.wav",
        "recordings/rec-a2.wav",
        "recordings/rec-a3.wav",
        "SHA256SUMS",
        "complaint.json",
    } <= names
    assert "recordings/rec-b1.wav" not in names
    assert manifest["number"] == NUMBER and complaint_doc["number"] == NUMBER
    assert complaint_doc["judgement"]["order_cancelled"] is True
    assert timeline[0]["number"] == NUMBER and decisions[0]["policy_version"] == "p1"
    assert audio == (env.spool / "rec-a1.wav").read_bytes()
    # The export is in the audit log with the bundle's digest.
    last = (await audit.tail(env.engine, 1))[0]
    assert last.action == "export" and info.sha256 in last.detail and last.reason

    # A supervisor-style (masked) export carries no full number anywhere.
    masked_out = tmp_path / "masked.zip"
    await service.export_bundle(Principal("sam", Role.SUPERVISOR), case.id, masked_out, reason="qa")
    with zipfile.ZipFile(masked_out) as zf:
        for name in zf.namelist():
            if name.endswith(".json"):
                assert NUMBER not in zf.read(name).decode(), f"full number in {name}"
    assert await service.verify_bundle(masked_out) == []

    # Close with the reply: holds released, report counts the case as closed.
    closed = await service.close(COMPLIANCE, case.id)
    assert closed.status is ComplaintStatus.CLOSED and closed.reply == "We apologise; refunded."
    page = await service.search(COMPLIANCE, SearchQuery(), reason="holds", filters={})
    assert not any(r.legal_hold for r in page.items)
    with pytest.raises(Conflict):
        await service.judge(COMPLIANCE, case.id, Judgement(company_at_fault=False))
    await service.register_complaint(COMPLIANCE, OTHER, ComplaintChannel.VISIT, "called at night")
    report = await service.report()
    assert (report.total, report.open, report.closed, report.at_fault) == (2, 1, 1, 1)
    assert report.refunds_total == Decimal("120.50") and report.orders_cancelled == 1
    assert dict(report.by_channel) == {"letter": 1, "visit": 1}
    assert await audit.verify(env.engine) == []


async def test_tampered_bundle_is_detected(env: Env, tmp_path: Path) -> None:
    await env.add("rec-x1")
    case = await env.service.register_complaint(COMPLIANCE, NUMBER, ComplaintChannel.CALL, "spam")
    out = tmp_path / "b.zip"
    await env.service.export_bundle(COMPLIANCE, case.id, out, reason="check")
    altered = tmp_path / "altered.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(altered, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "recordings/rec-x1.wav":
                data = data[:-10] + b"\x00" * 10
            if item.filename != "complaint.json":  # dropped: a missing file
                dst.writestr(item, data)
        dst.writestr("extra.txt", b"planted")
    kinds = {(p.kind, p.where) for p in await env.service.verify_bundle(altered)}
    assert ("altered", "recordings/rec-x1.wav") in kinds
    assert ("missing", "complaint.json") in kinds
    assert ("extra", "extra.txt") in kinds


async def test_complaint_input_is_checked(env: Env) -> None:
    with pytest.raises(BadInput, match="not a valid phone number"):
        await env.service.register_complaint(COMPLIANCE, "12x", ComplaintChannel.CALL, "t")
    with pytest.raises(BadInput, match="required"):
        await env.service.register_complaint(COMPLIANCE, NUMBER, ComplaintChannel.CALL, "  ")
    assert await env.service.list_complaints() == []
    assert not (await env.lists.status(NUMBER)).blacklisted


async def test_export_refuses_damaged_evidence(env: Env, tmp_path: Path) -> None:
    import os

    from recordings.service import EvidenceDamaged

    rec = await env.add("rec-z1", freq=900)
    await env.add("rec-z2", freq=910)
    case = await env.service.register_complaint(COMPLIANCE, NUMBER, ComplaintChannel.CALL, "x")
    path = env.service.store.absolute(rec.path)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-1] + b"\x01")
    out = tmp_path / "damaged.zip"
    with pytest.raises(EvidenceDamaged, match="damaged"):
        await env.service.export_bundle(COMPLIANCE, case.id, out, reason="case")
    path.unlink()
    with pytest.raises(EvidenceDamaged):
        await env.service.export_bundle(COMPLIANCE, case.id, out, reason="case")
    assert [n for n in os.listdir(tmp_path) if n.endswith((".zip", ".part"))] == []
    assert not any(e.action == "export" for e in await audit.tail(env.engine, 50))
