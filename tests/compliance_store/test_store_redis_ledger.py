"""Redis-specific parts of the ledger: journal replay into SQL, seeding, lost script cache."""

from __future__ import annotations

import uuid
from typing import Any

from store_helpers import CALLER_ID, local

from compliance.model import AttemptOutcome, CallRequest, ListStatus
from compliance.policy import Policy
from compliance.redis_ledger import _READ, RedisLedger, replay_journal
from compliance.sql_ledger import SqlLedger

AT = local(2026, 11, 3, 10, 30)


def req(number: str, product: str) -> CallRequest:
    return CallRequest(number, "c1", product, AT, CALLER_ID)


async def test_journal_replays_into_sql(redis_target: Any, sqlite_url: str, policy: Policy) -> None:
    hot = RedisLedger.from_url(redis_target.url, policy, prefix=redis_target.prefix)
    sql = await SqlLedger.open(sqlite_url, policy)
    try:
        await hot.check_and_reserve(req("13800138000", "loan"), attempt_id="a1", lists=ListStatus())
        await hot.check_and_reserve(req("13800138000", "card"), attempt_id="a2", lists=ListStatus())
        await hot.check_and_reserve(req("13800138000", "fund"), attempt_id="a3", lists=ListStatus())
        await hot.resolve("a1", AttemptOutcome.ANSWERED)
        await hot.record_refusal("13800138000", "c1", "loan", AT, attempt_id="a1")
        last = await replay_journal(hot, sql)
        assert await sql.history("13800138000") == await hot.history("13800138000")
        # Replaying again from the start copies nothing twice; from ``last`` there is nothing.
        assert await replay_journal(hot, sql) == last
        assert await replay_journal(hot, sql, after=last) == last
        assert len(await sql.history("13800138000")) == 3
    finally:
        await hot.close()
        await sql.close()


async def test_load_history_seeds_redis_from_sql(
    redis_target: Any, sqlite_url: str, policy: Policy
) -> None:
    sql = await SqlLedger.open(sqlite_url, policy)
    hot = RedisLedger.from_url(redis_target.url, policy, prefix=redis_target.prefix)
    try:
        await sql.check_and_reserve(req("13900139000", "loan"), attempt_id="s1", lists=ListStatus())
        await sql.check_and_reserve(req("13900139000", "card"), attempt_id="s2", lists=ListStatus())
        await hot.load_history("13900139000", await sql.history("13900139000"))
        refused = await hot.check(req("13900139000", "fund"), ListStatus())
        assert not refused.allowed  # the monthly cap holds on Redis too
        await hot.resolve("s2", AttemptOutcome.CANCELLED)
        assert (await hot.check(req("13900139000", "fund"), ListStatus())).allowed
    finally:
        await hot.close()
        await sql.close()


async def test_lost_script_cache_is_reloaded(redis_target: Any, policy: Policy) -> None:
    ledger = RedisLedger.from_url(redis_target.url, policy, prefix=redis_target.prefix)
    try:
        # A script text Redis has never seen: its EVALSHA fails with NOSCRIPT, as after a
        # Redis restart; the batcher must load it and still answer.
        fresh = f"{_READ}\n-- {uuid.uuid4().hex}\n"
        ledger._read = ledger._r.register_script(fresh)
        decision = await ledger.check_and_reserve(
            req("13700137000", "loan"), attempt_id="n1", lists=ListStatus()
        )
        assert decision.allowed
        assert [e.attempt_id for e in await ledger.history("13700137000")] == ["n1"]
    finally:
        await ledger.close()


async def test_decisions_log_is_capped(redis_target: Any, policy: Policy) -> None:
    ledger = RedisLedger.from_url(
        redis_target.url, policy, prefix=redis_target.prefix, decisions_kept=5
    )
    try:
        for _ in range(8):
            await ledger.check(req("13600136000", "loan"), ListStatus())
        assert len(await ledger.decisions("13600136000")) == 5
    finally:
        await ledger.close()
