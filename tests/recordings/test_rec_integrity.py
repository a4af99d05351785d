"""Store verification, retention purge and the hash-chained audit log (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import stat
from datetime import timedelta

import pytest
from rec_helpers import ADMIN, COMPLIANCE, NUMBER, OTHER, T0, Env, drop_audit_guards, wav_bytes
from sqlalchemy import delete, select, text, update

from recordings import audit
from recordings.model import ComplaintChannel, Judgement, SearchQuery
from recordings.schema import audit_log, recordings
from recordings.service import Conflict

pytestmark = pytest.mark.timeout(30)


async def test_ingest_stores_read_only_content_addressed_files(env: Env) -> None:
    rec = await env.add("rec-s1", freq=300)
    data = (env.spool / "rec-s1.wav").read_bytes()
    path = env.service.store.absolute(rec.path)
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert rec.path.startswith(f"{rec.sha256[:2]}/{rec.sha256[2:4]}/")
    assert rec.duration_ms == 500 and rec.number_masked == "138****5678"
    assert not list((env.service.store.tmp).iterdir())
    # Same name, same content: idempotent (a replayed RecordingFinished). Other content: refused.
    again = await env.add("rec-s1", freq=300)
    assert again.id == rec.id
    with pytest.raises(Conflict):
        await env.add("rec-s1", freq=301)


async def test_verify_finds_altered_and_missing_files(env: Env) -> None:
    r1 = await env.add("rec-v1", freq=310)
    r2 = await env.add("rec-v2", freq=320)
    await env.add("rec-v3", freq=330)
    checked, problems = await env.service.verify_store()
    assert (checked, problems) == (3, [])
    p1 = env.service.store.absolute(r1.path)
    os.chmod(p1, 0o644)
    with p1.open("r+b") as handle:
        handle.seek(100)
        handle.write(b"\xff\xfe")
    env.service.store.absolute(r2.path).unlink()
    checked, problems = await env.service.verify_store()
    assert checked == 3
    assert sorted((p.kind, p.where) for p in problems) == [
        ("altered", "rec-v1"),
        ("missing", "rec-v2"),
    ]


async def test_retention_spares_recordings_of_open_complaints(env: Env) -> None:
    old = T0 - timedelta(days=400)
    await env.add("rec-old-held", started=old, freq=400)
    await env.add("rec-old-free", number=OTHER, started=old, freq=410)
    await env.add("rec-new", number=OTHER, started=T0, freq=420)
    case = await env.service.register_complaint(COMPLIANCE, NUMBER, ComplaintChannel.CALL, "again")
    now = T0 + timedelta(days=1)

    dry = await env.service.purge(ADMIN, now=now, dry_run=True)
    assert dry.purged == ("rec-old-free",) and (dry.due, dry.held_skipped) == (1, 1)
    free = await env.service.get("rec-old-free")
    result = await env.service.purge(ADMIN, now=now)
    assert result.purged == ("rec-old-free",) and result.files_removed == 1
    assert not env.service.store.absolute(free.path).exists()
    names = {
        r.name
        for r in (await env.service.search(COMPLIANCE, SearchQuery(), reason="r", filters={})).items
    }
    assert names == {"rec-old-held", "rec-new"}
    entries = await audit.tail(env.engine, 20)
    purge_entries = [e for e in entries if e.action == "purge"]
    assert [e.target for e in purge_entries] == ["rec-old-free"]
    assert NUMBER not in purge_entries[0].detail and "retention" in purge_entries[0].reason

    # Even a stale legal_hold flag never releases a recording of an open complaint.
    async with env.engine.begin() as conn:
        await conn.execute(update(recordings).values(legal_hold=False))
    assert (await env.service.purge(ADMIN, now=now)).purged == ()

    # Closed complaint: the recording becomes purgeable.
    await env.service.judge(
        COMPLIANCE, case.id, Judgement(company_at_fault=False, reply="no fault")
    )
    await env.service.close(COMPLIANCE, case.id)
    assert (await env.service.purge(ADMIN, now=now)).purged == ("rec-old-held",)
    assert await audit.verify(env.engine) == []


async def test_purge_keeps_a_file_another_row_still_uses(env: Env) -> None:
    data = wav_bytes(0.2, 500)
    from recordings.model import AttemptMeta

    for name, started in (("rec-d1", T0 - timedelta(days=400)), ("rec-d2", T0)):
        path = env.spool_file(name, data)
        await env.service.ingest(name, AttemptMeta(number=OTHER, started_at=started), path)
    shared = await env.service.get("rec-d2")
    result = await env.service.purge(ADMIN, now=T0)
    assert result.purged == ("rec-d1",) and result.files_removed == 0
    assert env.service.store.absolute(shared.path).exists()
    assert (await env.service.verify_store())[1] == []


async def _seed_audit(env: Env) -> None:
    for i in range(5):
        await env.service.log_access(COMPLIANCE, "play", f"rec-{i}", reason=f"case {i}")
    assert await audit.verify(env.engine) == []
    await drop_audit_guards(env)


async def test_the_database_refuses_to_change_the_audit_log(env: Env) -> None:
    from sqlalchemy.exc import DBAPIError

    await env.service.log_access(COMPLIANCE, "play", "rec-1", reason="case")
    for statement in (
        update(audit_log).values(reason="changed"),
        delete(audit_log),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with env.engine.begin() as conn:
                await conn.execute(statement)
    assert await audit.verify(env.engine) == []
    assert (await audit.tail(env.engine, 1))[0].reason == "case"


async def test_audit_verify_finds_an_edited_entry(env: Env) -> None:
    await _seed_audit(env)
    async with env.engine.begin() as conn:
        await conn.execute(
            update(audit_log).where(audit_log.c.seq == 3).values(reason="nothing to see")
        )
    problems = await audit.verify(env.engine)
    assert [(p.kind, p.where) for p in problems] == [("edited", "seq 3")]


async def test_audit_verify_finds_a_deleted_entry(env: Env) -> None:
    await _seed_audit(env)
    async with env.engine.begin() as conn:
        await conn.execute(delete(audit_log).where(audit_log.c.seq == 2))
    kinds = {(p.kind, p.where) for p in await audit.verify(env.engine)}
    assert ("gap", "seq 3") in kinds and ("link", "seq 3") in kinds


async def test_audit_verify_finds_a_deleted_tail(env: Env) -> None:
    await _seed_audit(env)
    async with env.engine.begin() as conn:
        await conn.execute(delete(audit_log).where(audit_log.c.seq == 5))
    assert [p.kind for p in await audit.verify(env.engine)] == ["head"]


async def test_audit_verify_finds_reordered_entries(env: Env) -> None:
    await _seed_audit(env)
    async with env.engine.begin() as conn:
        # Swap entries 2 and 3 (their sequence numbers), as an editor of the table could.
        await conn.execute(update(audit_log).where(audit_log.c.seq == 2).values(seq=-2))
        await conn.execute(update(audit_log).where(audit_log.c.seq == 3).values(seq=2))
        await conn.execute(update(audit_log).where(audit_log.c.seq == -2).values(seq=3))
        order = (
            (await conn.execute(select(audit_log.c.target).order_by(audit_log.c.seq)))
            .scalars()
            .all()
        )
    assert order[1:3] == ["rec-2", "rec-1"]
    problems = await audit.verify(env.engine)
    assert {p.where for p in problems if p.kind == "edited"} == {"seq 2", "seq 3"}


async def test_audit_appends_are_serialized(env: Env) -> None:
    import asyncio

    await asyncio.gather(
        *(env.service.log_access(ADMIN, "verify", f"t{i}", reason="r") for i in range(20))
    )
    assert await audit.verify(env.engine) == []
    async with env.engine.connect() as conn:
        seqs = (
            (await conn.execute(text("SELECT seq FROM access_audit ORDER BY seq"))).scalars().all()
        )
    assert list(seqs) == list(range(1, 21))
