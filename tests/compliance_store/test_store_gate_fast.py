"""The gate's fast path keeps the behaviour: campaign cache, one-read lookups, decision logs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from store_helpers import CALLER_ID, SHANGHAI, LedgerFactory, local

from compliance.campaigns import CampaignState, CampaignStore, parse_campaign_spec
from compliance.clock import ManualClock
from compliance.gate import ComplianceGate, ComplianceStores, open_compliance
from compliance.ledger import ContactLedger
from compliance.lists import ListReason, ListStore
from compliance.model import (
    AttemptOutcome,
    CallRequest,
    ContactEvent,
    ContactKind,
    ListStatus,
    ReasonCode,
)
from compliance.numbers import NumberPlan, mask
from compliance.policy import Policy
from compliance.redis_ledger import RedisLedger, replay_journal, sync_journal
from compliance.sql_ledger import SqlLedger

AT = local(2026, 11, 3, 10, 30)
SPEC = {"name": "c1", "script": "Hello", "products": ["loan", "card"], "caller_id": CALLER_ID}
LEADS = "number,segment,product,assigned_at\n13800138000,default,card,2026-10-20T09:00\n"


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def target(request: pytest.FixtureRequest, sqlite_url: str) -> tuple[str, str | None, str | None]:
    """(database URL, schema, Redis URL or None): SQLite, PostgreSQL, or SQLite + Redis."""
    if request.param == "postgres":
        pg: Any = request.getfixturevalue("pg_target")
        return pg.url, pg.schema, None
    if request.param == "redis":
        redis: Any = request.getfixturevalue("redis_target")
        return sqlite_url, None, f"{redis.url}#{redis.prefix}"
    return sqlite_url, None, None


@pytest.fixture
async def stores(
    target: tuple[str, str | None, str | None], policy: Policy
) -> AsyncIterator[ComplianceStores]:
    db_url, schema, redis = target
    redis_url, _, prefix = (redis or "").partition("#")
    opened = await open_compliance(
        db_url, policy, schema=schema, redis_url=redis_url or None, redis_prefix=prefix or "dialer:"
    )
    await opened.campaigns.create(parse_campaign_spec(SPEC))
    await opened.leads.import_text(LEADS, "leads.csv", "c1", tz=SHANGHAI)
    yield opened
    await opened.close()


async def test_unknown_campaign_refusal_is_logged(stores: ComplianceStores) -> None:
    gate = stores.gate
    decision = await gate.check_and_reserve("13800138000", "ghost", "loan", AT, attempt_id="u1")
    assert decision.codes == (ReasonCode.UNKNOWN_CAMPAIGN,)
    checked = await gate.check("13900139000", "ghost", None, AT)
    assert checked.codes == (ReasonCode.UNKNOWN_CAMPAIGN,)
    [logged] = await stores.ledger.decisions("13800138000")
    assert logged.codes == (ReasonCode.UNKNOWN_CAMPAIGN,), mask("13800138000")
    assert (logged.attempt_id, logged.campaign, logged.allowed, logged.reserved) == (
        "u1",
        "ghost",
        False,
        False,
    )
    assert [d.codes for d in await stores.ledger.decisions("13900139000")] == [
        (ReasonCode.UNKNOWN_CAMPAIGN,)
    ]
    # request_for only builds the request: nothing is logged for it.
    await gate.request_for("13700137000", "ghost", None, AT)
    assert await stores.ledger.decisions("13700137000") == []
    assert await stores.ledger.history("13800138000") == []


async def test_campaign_changes_through_the_store_are_seen_at_once(
    stores: ComplianceStores,
) -> None:
    gate = stores.gate
    before = await gate.check("13800138000", "late", "loan", AT)
    assert before.codes == (ReasonCode.UNKNOWN_CAMPAIGN,)  # cached as unknown now
    await stores.campaigns.create(parse_campaign_spec({**SPEC, "name": "late", "script": ""}))
    no_script = await gate.check("13800138000", "late", "loan", AT)
    assert ReasonCode.NO_SCRIPT in no_script.codes
    paused = await stores.campaigns.set_state("c1", CampaignState.PAUSED)
    assert (await stores.campaigns.find_cached("c1")) == paused


async def test_other_processes_changes_are_seen_after_the_ttl(
    stores: ComplianceStores,
) -> None:
    clock = ManualClock(AT)
    mine = CampaignStore(stores.engine, cache_ttl=0.05, clock=clock)
    other = CampaignStore(stores.engine)  # as if in another process
    assert await mine.find_cached("remote") is None
    await other.create(parse_campaign_spec({**SPEC, "name": "remote"}))
    assert await mine.find_cached("remote") is None  # still cached
    clock.advance(0.06)
    found = await mine.find_cached("remote")
    assert found is not None and found.name == "remote"
    await other.set_state("remote", CampaignState.RUNNING)
    clock.advance(0.06)
    found = await mine.find_cached("remote")
    assert found is not None and found.state == CampaignState.RUNNING


async def test_lead_and_lists_come_with_the_decision(stores: ComplianceStores) -> None:
    gate = stores.gate
    request = await gate.request_for("13800138000", "c1", None, AT)
    assert isinstance(request, CallRequest)
    assert request.product == "card" and request.assigned_at == local(2026, 10, 20, 9, 0)
    await stores.lists.add("13800138000", ListReason.OPT_OUT, source="call", actor="ann")
    await stores.lists.add("13900139000", ListReason.SPECIAL, source="call", actor="ann")
    listed = await gate.check_and_reserve("13800138000", "c1", None, AT, attempt_id="l1")
    assert ReasonCode.BLACKLISTED in listed.codes
    special = await gate.check_and_reserve("13900139000", "c1", "loan", AT, attempt_id="l2")
    assert ReasonCode.SPECIAL_NUMBER in special.codes
    assert ReasonCode.BLACKLISTED not in special.codes
    clean = await gate.check_and_reserve("13700137000", "c1", "loan", AT, attempt_id="l3")
    assert clean.allowed, clean.reasons
    await stores.lists.remove("13800138000", source="call", actor="ann")
    again = await gate.check_and_reserve("13800138000", "c1", None, AT, attempt_id="l4")
    assert again.allowed, again.reasons
    invalid = await gate.check_and_reserve("12", "c1", "loan", AT, attempt_id="l5")
    assert ReasonCode.INVALID_NUMBER in invalid.codes


async def test_a_caller_holding_the_lead_spares_the_lookup(stores: ComplianceStores) -> None:
    gate = stores.gate
    # The stored lead was assigned recently; the caller's lead says 2025: the caller wins.
    recalled = await gate.check(
        "13800138000", "c1", "loan", AT, segment="default", assigned_at=local(2025, 12, 1, 9)
    )
    assert ReasonCode.DATA_RECALLED in recalled.codes
    vip = await gate.check_and_reserve(
        "13800138000",
        "c1",
        "loan",
        AT,
        attempt_id="h1",
        segment="vip",
        assigned_at=local(2026, 10, 20, 9),
    )
    assert ReasonCode.UNKNOWN_SEGMENT in vip.codes
    ok = await gate.check_and_reserve(
        "13800138000", "c1", "loan", AT, attempt_id="h2", assigned_at=local(2026, 10, 20, 9)
    )
    assert ok.allowed, ok.reasons
    assert [e.attempt_id for e in await stores.ledger.history("13800138000")] == ["h2"]


async def test_stores_must_key_numbers_with_the_policy_plan(
    stores: ComplianceStores, policy: Policy
) -> None:
    other_plan = ListStore(stores.engine, plan=NumberPlan(home_area="21"))
    with pytest.raises(ValueError, match=r"plan=policy\.numbers"):
        ComplianceGate(policy, stores.ledger, other_plan, stores.campaigns, stores.leads)


async def _seed(ledger: ContactLedger, number: str, events: list[ContactEvent]) -> None:
    if isinstance(ledger, RedisLedger):
        await ledger.load_history(number, events)
    else:
        assert isinstance(ledger, SqlLedger)
        key = ledger.policy.numbers.parse(number).key
        for event in events:
            await ledger.import_event(key, event)


async def test_old_attempts_do_not_count_old_refusals_do(
    make_ledger: LedgerFactory, policy: Policy
) -> None:
    """The decision path reads a bounded history: attempts from the horizon on, every refusal."""
    ledger = await make_ledger(policy)
    number = "13800138000"
    old = [
        ContactEvent(
            local(2024, 3, d, 10),
            ContactKind.ATTEMPT,
            "c0",
            "loan",
            AttemptOutcome.ANSWERED,
            f"o{d}",
        )
        for d in range(1, 13)
    ]
    refusals = [
        ContactEvent(
            local(2024, 4, d, 10),
            ContactKind.REFUSAL,
            "c0",
            "card",
            AttemptOutcome.ANSWERED,
            f"r{d}",
        )
        for d in range(1, 4)
    ]
    await _seed(ledger, number, old + refusals)
    loan = CallRequest(number, "c1", "loan", AT, CALLER_ID)
    assert (await ledger.check(loan, ListStatus())).allowed  # 12 calls in March 2024: forgotten
    card = CallRequest(number, "c1", "card", AT, CALLER_ID)
    refused = await ledger.check_and_reserve(card, attempt_id="n1", lists=ListStatus())
    assert ReasonCode.PRODUCT_REFUSED in refused.codes  # refusals count forever
    assert len(await ledger.history(number)) == 15  # nothing was dropped from the history


async def test_sync_copies_the_redis_decisions_log_into_sql(
    redis_target: Any, sqlite_url: str, policy: Policy
) -> None:
    hot = RedisLedger.from_url(redis_target.url, policy, prefix=redis_target.prefix)
    sql = await SqlLedger.open(sqlite_url, policy)
    try:
        number = "13800138000"
        await hot.check_and_reserve(
            CallRequest(number, "c1", "loan", AT, CALLER_ID), attempt_id="a1", lists=ListStatus()
        )
        await hot.check(CallRequest(number, "c1", "loan", AT, CALLER_ID), ListStatus())
        await hot.record_decision(
            CallRequest(number, "ghost", "loan", AT, CALLER_ID),
            (await hot.check(CallRequest(number, "c1", "loan", AT, CALLER_ID), ListStatus())),
            "a9",
        )
        await sync_journal(hot, sql)
        want = [
            (d.codes, d.attempt_id, d.allowed, d.reserved, d.decided_at)
            for d in await hot.decisions(number)
        ]
        got = [
            (d.codes, d.attempt_id, d.allowed, d.reserved, d.decided_at)
            for d in await sql.decisions(number)
        ]
        assert got == want and len(got) == 4
        await replay_journal(hot, sql)  # from the start again: nothing twice
        assert len(await sql.decisions(number)) == 4
    finally:
        await hot.close()
        await sql.close()
