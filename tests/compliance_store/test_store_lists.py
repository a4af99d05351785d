"""Do-not-call and special lists: entries, status, audit trail, all-or-nothing CSV import."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine
from store_helpers import snapshot

from compliance.lists import (
    ImportFailed,
    ListKind,
    ListReason,
    ListStore,
    RedisListMirror,
)
from compliance.model import ListStatus
from compliance.numbers import InvalidNumber


async def test_add_update_remove_with_audit(engine: AsyncEngine) -> None:
    lists = ListStore(engine)
    assert await lists.status("13800138000") == ListStatus()
    await lists.add("138 0013 8000", ListReason.COMPLAINT, source="call", actor="ann")
    assert await lists.status("+8613800138000") == ListStatus(
        blacklisted=True, blacklist_reason="complaint"
    )
    await lists.add("13800138000", ListReason.OPT_OUT, source="ivr", actor="bob", note="pressed 9")
    await lists.add("13800138000", ListReason.SPECIAL, source="admin", actor="cid")
    status = await lists.status("13800138000")
    assert status == ListStatus(True, "opt_out", True, "special")
    assert await lists.remove("13800138000", source="admin", actor="dan", kind=ListKind.DNC) == 1
    assert await lists.status("13800138000") == ListStatus(special=True, special_reason="special")
    assert await lists.remove("13800138000", source="admin", actor="dan") == 1
    assert await lists.remove("13800138000", source="admin", actor="dan") == 0
    audit = await lists.audit("13800138000")
    assert [(a.action, a.kind, a.reason, a.actor) for a in audit] == [
        ("add", "dnc", "complaint", "ann"),
        ("update", "dnc", "opt_out", "bob"),
        ("add", "special", "special", "cid"),
        ("remove", "dnc", "opt_out", "dan"),
        ("remove", "special", "special", "dan"),
    ]
    assert await lists.entries() == []


async def test_invalid_number_changes_nothing(engine: AsyncEngine) -> None:
    lists = ListStore(engine)
    before = await snapshot(engine)
    with pytest.raises(InvalidNumber) as err:
        await lists.add("13800x38000", ListReason.COMPLAINT, source="s", actor="a")
    assert "13800x38000" not in str(err.value)  # masked in the message
    assert await snapshot(engine) == before


async def test_csv_import(engine: AsyncEngine, tmp_path: Path) -> None:
    lists = ListStore(engine)
    await lists.add("13900139000", ListReason.COMPLAINT, source="call", actor="ann")
    f = tmp_path / "dnc.csv"
    f.write_text(
        "number,reason,note\n"
        "13800138000,opt_out,\n"
        "+86 138 0013 8000,complaint,again\n"
        "13900139000,do_not_disturb,\n"
        "010-65001234,special,public phone\n",
        encoding="utf-8",
    )
    report = await lists.import_csv(f, actor="importer")
    assert (report.rows, report.added, report.updated, report.duplicates) == (4, 2, 1, 1)
    assert (await lists.status("13800138000")).blacklist_reason == "complaint"
    assert (await lists.status("01065001234")).special
    audit = await lists.audit()
    assert audit[-1].action == "import" and "4 rows" in audit[-1].detail


async def test_bad_csv_lists_every_problem_and_imports_nothing(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    lists = ListStore(engine)
    await lists.add("13900139000", ListReason.COMPLAINT, source="call", actor="ann")
    before = await snapshot(engine)
    f = tmp_path / "bad.csv"
    f.write_text(
        "number,reason\n13800138000,opt_out\n1380013800x,opt_out\n13700137000,angry\n13600136000\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportFailed) as err:
        await lists.import_csv(f, actor="importer")
    problems = [(p.line, p.field) for p in err.value.problems]
    assert problems == [(3, "number"), (4, "reason"), (5, "row")]
    assert "line 3, field 'number'" in str(err.value)
    assert "1380013800x" not in str(err.value)
    assert await snapshot(engine) == before


async def test_bad_header_is_refused(engine: AsyncEngine, tmp_path: Path) -> None:
    lists = ListStore(engine)
    f = tmp_path / "bad.csv"
    f.write_text("phone,reason\n13800138000,opt_out\n", encoding="utf-8")
    before = await snapshot(engine)
    with pytest.raises(ImportFailed) as err:
        await lists.import_csv(f, actor="importer")
    assert {(p.line, p.field) for p in err.value.problems} == {(1, "number"), (1, "phone")}
    assert await snapshot(engine) == before


async def test_redis_mirror_serves_status(
    engine: AsyncEngine, redis_client: aioredis.Redis, redis_target: object
) -> None:
    mirror = RedisListMirror(redis_client, prefix=f"{redis_target.prefix}lists:")  # type: ignore[attr-defined]
    sql_only = ListStore(engine)
    await sql_only.add("13800138000", ListReason.COMPLAINT, source="call", actor="ann")
    lists = ListStore(engine, mirror=mirror)
    assert await lists.rebuild_mirror() == 1
    assert (await lists.status("13800138000")).blacklisted
    await lists.add("13900139000", ListReason.SPECIAL, source="admin", actor="bob")
    assert (await lists.status("13900139000")).special
    await lists.remove("13800138000", source="admin", actor="bob")
    assert await lists.status("13800138000") == ListStatus()
