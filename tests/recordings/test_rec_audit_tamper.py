"""The audit log against an insider with database access (SQLite and PostgreSQL).

First the database's own guards: every change but a well-formed append is refused,
REPLACE, UPSERT and truncation included, on the head row too. Then, with the guards
dropped (someone with DDL rights), each tampering is found by ``audit verify`` and
named by its entry, and a tail rewritten together with its head is found by the
signed anchors kept outside the database.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rec_helpers import COMPLIANCE, Env, drop_audit_guards
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from recordings import audit
from recordings.anchor import (
    FileSink,
    anchor_line,
    anchor_periodically,
    anchor_record,
    read_anchors,
    write_anchor,
)
from recordings.schema import GENESIS_HASH, audit_head, audit_log
from recordings.signing import Signer, derived_signer

pytestmark = pytest.mark.timeout(60)


async def _seed(env: Env, n: int = 5) -> None:
    for i in range(1, n + 1):
        await env.service.log_access(COMPLIANCE, "play", f"rec-{i}", reason=f"case {i}")
    assert await audit.verify(env.engine) == []


async def _row(env: Env, seq: int) -> dict[str, object]:
    async with env.engine.connect() as conn:
        row = (await conn.execute(select(audit_log).where(audit_log.c.seq == seq))).one()
    return dict(row._mapping)


def _forged(row: dict[str, object], **changes: object) -> dict[str, object]:
    """A copy of an entry with ``changes`` and a hash recomputed to match its own content."""
    forged = {**row, **changes}
    at = forged["at"]
    assert isinstance(at, datetime)
    forged["hash"] = audit.entry_hash(
        seq=int(str(forged["seq"])),
        at=at,
        actor=str(forged["actor"]),
        role=str(forged["role"]),
        action=str(forged["action"]),
        target=str(forged["target"]),
        reason=str(forged["reason"]),
        outcome=str(forged["outcome"]),
        detail=str(forged["detail"]),
        prev_hash=str(forged["prev_hash"]),
    )
    return forged


def _upsert(env: Env, values: dict[str, object]) -> str:
    """REPLACE on SQLite, INSERT ... ON CONFLICT DO UPDATE on PostgreSQL (both UPSERTs)."""
    cols = ", ".join(values)
    params = ", ".join(f":{c}" for c in values)
    if env.schema is None:
        return f"INSERT OR REPLACE INTO access_audit ({cols}) VALUES ({params})"
    sets = ", ".join(f"{c} = excluded.{c}" for c in values if c != "seq")
    return (
        f"INSERT INTO access_audit ({cols}) VALUES ({params}) "
        f"ON CONFLICT (seq) DO UPDATE SET {sets}"
    )


# --- the database's own guards ------------------------------------------------------------------


async def test_guards_refuse_replace_upsert_and_out_of_order_inserts(env: Env) -> None:
    await _seed(env)
    middle = await _row(env, 3)
    forged = _forged(middle, reason="nothing to see")
    statements = [text(_upsert(env, forged))]
    if env.schema is None:
        sets = ", ".join(f"{c} = excluded.{c}" for c in forged if c != "seq")
        cols = ", ".join(forged)
        params = ", ".join(f":{c}" for c in forged)
        statements.append(
            text(
                f"INSERT INTO access_audit ({cols}) VALUES ({params}) "
                f"ON CONFLICT (seq) DO UPDATE SET {sets}"
            )
        )
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            async with env.engine.begin() as conn:
                await conn.execute(statement, forged)
    # An entry that does not follow the last one (a fork, a gap) is refused too.
    last = await _row(env, 5)
    for bad in (
        _forged(last, seq=7, prev_hash=str(last["hash"])),
        _forged(last, seq=6, prev_hash=GENESIS_HASH),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with env.engine.begin() as conn:
                await conn.execute(insert(audit_log).values(**bad))
    assert await audit.verify(env.engine) == []
    assert (await _row(env, 3))["reason"] == "case 3"


async def test_guards_refuse_truncation_and_every_change_to_the_head(env: Env) -> None:
    await _seed(env)
    refused = [
        delete(audit_log),
        delete(audit_head),
        update(audit_head).values(seq=3),
        update(audit_head).values(hash=GENESIS_HASH),
        insert(audit_head).values(id=2, seq=5, hash=GENESIS_HASH),
    ]
    truncate = [text("TRUNCATE access_audit"), text("TRUNCATE access_audit_head")]
    for statement in refused + (truncate if env.schema is not None else []):
        with pytest.raises(DBAPIError, match=r"append-only|only follows|cannot be deleted"):
            async with env.engine.begin() as conn:
                await conn.execute(statement)
    assert await audit.verify(env.engine) == []
    assert await audit.head(env.engine) == await audit.last_entry(env.engine)


async def test_reopening_never_recreates_a_deleted_head(env: Env) -> None:
    from recordings.schema import open_engine

    await _seed(env, 3)
    await drop_audit_guards(env)
    async with env.engine.begin() as conn:
        await conn.execute(delete(audit_head))
    again = await open_engine(env.db_url, schema=env.schema)
    try:
        assert await audit.head(again) is None
        problems = await audit.verify(again)
        assert [(p.kind, p.where) for p in problems] == [("head", "head")]
        # Appends go on from the log's own last entry, chained correctly.
        await audit.append_alone(again, actor="carol", role="compliance", action="play")
        assert (await audit.last_entry(again))[0] == 4
        assert [p.kind for p in await audit.verify(again)] == ["head"]
    finally:
        await again.dispose()


# --- with the guards dropped: each tampering named by its entry ---------------------------------


async def test_replace_of_a_middle_entry_is_found(env: Env) -> None:
    await _seed(env)
    await drop_audit_guards(env)
    forged = _forged(await _row(env, 3), reason="nothing to see")
    async with env.engine.begin() as conn:
        await conn.execute(text(_upsert(env, forged)), forged)
    problems = await audit.verify(env.engine)
    # Its own hash matches its new content, but the next entry's link does not.
    assert [(p.kind, p.where) for p in problems] == [("link", "seq 4")]


async def test_a_deleted_head_row_is_found(env: Env) -> None:
    await _seed(env)
    await drop_audit_guards(env)
    async with env.engine.begin() as conn:
        await conn.execute(delete(audit_head))
    assert [(p.kind, p.where) for p in await audit.verify(env.engine)] == [("head", "head")]


async def test_a_rolled_back_head_is_found(env: Env) -> None:
    await _seed(env)
    third = await _row(env, 3)
    await drop_audit_guards(env)
    async with env.engine.begin() as conn:
        await conn.execute(update(audit_head).values(seq=3, hash=third["hash"]))
    problems = await audit.verify(env.engine)
    assert [(p.kind, p.where) for p in problems] == [("head", "seq 4")]
    assert "rolled back" in problems[0].message


async def test_a_truncated_log_is_found(env: Env) -> None:
    await _seed(env)
    await drop_audit_guards(env)
    async with env.engine.begin() as conn:
        await conn.execute(delete(audit_log).where(audit_log.c.seq >= 4))
    problems = await audit.verify(env.engine)
    assert [(p.kind, p.where) for p in problems] == [("head", "seq 4")]
    assert "4..5" in problems[0].message


def _anchors(tmp_path: Path, signer: Signer, *points: tuple[int, str]) -> Path:
    path = tmp_path / "anchors.log"
    at = datetime(2026, 3, 2, tzinfo=UTC)
    path.write_text("".join(anchor_line(anchor_record(s, h, at, signer)) + "\n" for s, h in points))
    return path


async def test_truncation_with_the_head_rewritten_needs_the_anchor(
    env: Env, tmp_path: Path
) -> None:
    await _seed(env)
    signer = env.service.signer
    anchors = _anchors(tmp_path, signer, await audit.last_entry(env.engine))
    third = await _row(env, 3)
    await drop_audit_guards(env)
    async with env.engine.begin() as conn:
        await conn.execute(delete(audit_log).where(audit_log.c.seq >= 4))
        await conn.execute(update(audit_head).values(seq=3, hash=third["hash"]))
    # Without the anchor a consistent truncation cannot be told from a shorter log.
    assert await audit.verify(env.engine) == []
    points, bad = read_anchors(anchors, signer.public)
    assert bad == []
    problems = await audit.verify(env.engine, anchors=points)
    assert [(p.kind, p.where) for p in problems] == [("anchor", "seq 5")]
    assert "4..5 were dropped" in problems[0].message


async def test_a_rewritten_tail_is_found_by_the_anchor(env: Env, tmp_path: Path) -> None:
    await _seed(env)
    signer = env.service.signer
    anchors = _anchors(tmp_path, signer, await audit.last_entry(env.engine))
    fifth = await _row(env, 5)
    await drop_audit_guards(env)
    forged = _forged(fifth, reason="routine check")
    async with env.engine.begin() as conn:
        await conn.execute(delete(audit_log).where(audit_log.c.seq == 5))
        await conn.execute(insert(audit_log).values(**forged))
        await conn.execute(update(audit_head).values(seq=5, hash=forged["hash"]))
    assert await audit.verify(env.engine) == []
    points, _ = read_anchors(anchors, signer.public)
    problems = await audit.verify(env.engine, anchors=points)
    assert [(p.kind, p.where) for p in problems] == [("anchor", "seq 5")]
    assert "rewritten" in problems[0].message


async def test_anchor_files_are_checked_line_by_line(env: Env, tmp_path: Path) -> None:
    await _seed(env, 3)
    signer = env.service.signer
    good = anchor_record(3, str((await _row(env, 3))["hash"]), datetime.now(UTC), signer)
    edited = {**good, "seq": 2}
    other = anchor_record(3, str(good["hash"]), datetime.now(UTC), derived_signer(b"x" * 32))
    path = tmp_path / "anchors.log"
    path.write_text(
        "Mar  2 10:00:00 host dialer-audit-anchor: "
        + anchor_line(good)
        + "\n"
        + anchor_line(edited)
        + "\nnot an anchor\n"
        + anchor_line(other)
        + "\n"
    )
    points, problems = read_anchors(path, signer.public)
    assert [p.seq for p in points] == [3]
    assert [(p.where, p.message.split(":")[0]) for p in problems] == [
        ("anchors.log line 2", "the signature does not verify"),
        ("anchors.log line 3", "malformed anchor"),
        (
            "anchors.log line 4",
            f"signed with key {other['key']}, not the given public key {signer.key_id}",
        ),
    ]


async def test_anchors_are_written_on_a_schedule_while_the_head_moves(
    env: Env, tmp_path: Path
) -> None:
    await _seed(env, 2)
    path = tmp_path / "anchors.log"
    task = asyncio.create_task(
        anchor_periodically(env.engine, env.service.signer, FileSink(path), 0.05)
    )
    try:
        await asyncio.sleep(0.2)
        await env.service.log_access(COMPLIANCE, "play", "rec-9", reason="case 9")
        await asyncio.sleep(0.3)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["seq"] for line in lines] == [2, 3]  # one per head position, not per tick
    assert path.stat().st_mode & 0o777 == 0o600
    points, problems = read_anchors(path, env.service.signer.public)
    assert problems == [] and await audit.verify(env.engine, anchors=points) == []
    record = await write_anchor(env.engine, env.service.signer, FileSink(path))
    assert record["seq"] == 3
