"""The gate's per-call reads: the held SQLite read connection and one campaign lookup at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from store_helpers import CALLER_ID, SHANGHAI, local

from compliance.campaigns import Campaign, CampaignStore, parse_campaign_spec
from compliance.clock import SYSTEM_CLOCK, Clock, ManualClock
from compliance.gate import ComplianceGate, ComplianceStores, open_compliance
from compliance.model import CallRequest
from compliance.numbers import mask
from compliance.policy import Policy

AT = local(2026, 11, 3, 10, 30)
SPEC = {"name": "c1", "script": "Hello", "products": ["loan", "card"], "caller_id": CALLER_ID}
NUMBER = "13800138000"


@pytest.fixture(params=["sqlite", "redis"])
def redis_at(request: pytest.FixtureRequest) -> tuple[str | None, str]:
    """(Redis URL or None, key prefix): the ledger on SQLite, or on Redis with the list mirror."""
    if request.param == "redis":
        redis: Any = request.getfixturevalue("redis_target")
        return redis.url, redis.prefix
    return None, "dialer:"


@pytest.fixture
async def stores(
    redis_at: tuple[str | None, str], sqlite_url: str, policy: Policy
) -> AsyncIterator[ComplianceStores]:
    redis_url, prefix = redis_at
    opened = await open_compliance(sqlite_url, policy, redis_url=redis_url, redis_prefix=prefix)
    await opened.campaigns.create(parse_campaign_spec(SPEC))
    yield opened
    await opened.close()


async def _request(gate: ComplianceGate, number: str = NUMBER) -> CallRequest:
    request = await gate.request_for(number, "c1", None, AT)
    assert isinstance(request, CallRequest), mask(number)
    return request


async def test_held_read_connection_sees_every_change_at_once(stores: ComplianceStores) -> None:
    gate = stores.gate
    pool: Any = stores.engine.pool
    before = await _request(gate)
    assert (before.product, before.assigned_at) == ("loan", None), mask(NUMBER)
    assert pool.checkedout() == 1  # the gate holds one connection for its reads
    await stores.leads.import_text(
        f"number,segment,product,assigned_at\n{NUMBER},default,card,2026-10-20T09:00\n",
        "leads.csv",
        "c1",
        tz=SHANGHAI,
    )
    after = await _request(gate)  # no cache in between: the next statement sees the import
    assert after.product == "card", mask(NUMBER)
    assert after.assigned_at == local(2026, 10, 20, 9, 0)
    await gate.close()
    assert pool.checkedout() == 0
    again = await _request(gate)  # still usable: the connection is taken again
    assert again.product == "card", mask(NUMBER)
    assert pool.checkedout() == 1


class _SlowCampaigns(CampaignStore):
    """Counts the campaign reads; the first ``fail`` of them raise after a pause."""

    def __init__(self, engine: Any, fail: int = 0) -> None:
        super().__init__(engine, cache_ttl=0.0)  # every lookup misses the cache
        self.reads = 0
        self.fail = fail
        self.started = asyncio.Event()

    async def find(self, name: str) -> Campaign | None:
        self.reads += 1
        self.started.set()
        await asyncio.sleep(0.05)
        if self.reads <= self.fail:
            raise RuntimeError("campaign read failed")
        return await super().find(name)


def _gate(stores: ComplianceStores, campaigns: CampaignStore) -> ComplianceGate:
    return ComplianceGate(stores.gate.policy, stores.ledger, stores.lists, campaigns, stores.leads)


async def test_concurrent_misses_read_the_campaign_once(stores: ComplianceStores) -> None:
    campaigns = _SlowCampaigns(stores.engine)
    gate = _gate(stores, campaigns)
    requests = await asyncio.gather(*(_request(gate, f"1390013{i:04d}") for i in range(20)))
    assert campaigns.reads == 1
    assert {r.caller_id.replace("-", "") for r in requests} == {CALLER_ID.replace("-", "")}
    await _request(gate)  # the lookup is over: the next miss reads again
    assert campaigns.reads == 2


async def test_a_failed_lookup_fails_only_its_own_caller(stores: ComplianceStores) -> None:
    campaigns = _SlowCampaigns(stores.engine, fail=1)
    gate = _gate(stores, campaigns)
    results = await asyncio.gather(
        *(_request(gate, f"1390013{i:04d}") for i in range(5)), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert [str(e) for e in errors] == ["campaign read failed"]
    assert all(isinstance(r, CallRequest) for r in results if r not in errors)
    assert campaigns.reads == 2  # the first waiter read again, the others waited for it


async def test_a_cancelled_lookup_leaves_the_waiters_answered(stores: ComplianceStores) -> None:
    campaigns = _SlowCampaigns(stores.engine)
    gate = _gate(stores, campaigns)
    first = asyncio.create_task(_request(gate, "13900130000"))
    await campaigns.started.wait()
    waiters = [asyncio.create_task(_request(gate, f"1390013{i:04d}")) for i in range(1, 4)]
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    answered = await asyncio.gather(*waiters)
    assert [r.campaign for r in answered] == ["c1"] * 3
    assert campaigns.reads == 2


class _CountingCampaigns(CampaignStore):
    """Counts the asynchronous lookups (``find_cached``) and the SQL reads (``find``)."""

    def __init__(self, engine: Any, cache_ttl: float = 60.0, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(engine, cache_ttl=cache_ttl, clock=clock)
        self.lookups = 0
        self.reads = 0

    async def find_cached(self, name: str) -> Campaign | None:
        self.lookups += 1
        return await super().find_cached(name)

    async def find(self, name: str) -> Campaign | None:
        self.reads += 1
        return await super().find(name)


async def test_peek_answers_only_from_a_fresh_entry(stores: ComplianceStores) -> None:
    clock = ManualClock(AT)
    campaigns = _CountingCampaigns(stores.engine, cache_ttl=0.05, clock=clock)
    assert campaigns.peek_cached("c1") == (False, None)  # never looked up
    found = await campaigns.find_cached("c1")
    assert found is not None and campaigns.peek_cached("c1") == (True, found)
    assert await campaigns.find_cached("nope") is None
    assert campaigns.peek_cached("nope") == (True, None)  # an unknown campaign is cached too
    campaigns.invalidate("c1")
    assert campaigns.peek_cached("c1") == (False, None)
    await campaigns.find_cached("c1")
    clock.advance(0.06)
    assert campaigns.peek_cached("c1") == (False, None)  # stale: find_cached must read again
    assert campaigns.reads == 3


async def test_cached_campaign_is_taken_without_a_lookup(stores: ComplianceStores) -> None:
    campaigns = _CountingCampaigns(stores.engine)
    gate = _gate(stores, campaigns)
    first = await _request(gate)
    assert (campaigns.lookups, campaigns.reads) == (1, 1)
    later = await asyncio.gather(*(_request(gate, f"1390013{i:04d}") for i in range(5)))
    decision = await gate.check_and_reserve("13900130099", "c1", None, AT, attempt_id="fast-1")
    assert decision.allowed, decision.codes
    assert (campaigns.lookups, campaigns.reads) == (1, 1)  # all answered by peek_cached
    assert {r.caller_id for r in later} == {first.caller_id}
    await stores.campaigns.create(parse_campaign_spec({**SPEC, "name": "c2"}))
    other = await gate.request_for(NUMBER, "c2", None, AT)
    assert isinstance(other, CallRequest) and other.campaign == "c2"
    assert (campaigns.lookups, campaigns.reads) == (2, 2)  # a miss still goes through the lookup


def _stale_gate(
    stores: ComplianceStores, campaigns: CampaignStore, stale_s: float
) -> ComplianceGate:
    return ComplianceGate(
        stores.gate.policy,
        stores.ledger,
        stores.lists,
        campaigns,
        stores.leads,
        campaign_stale_s=stale_s,
    )


async def test_an_expired_campaign_is_answered_while_one_lookup_refreshes_it(
    stores: ComplianceStores,
) -> None:
    campaigns = _SlowCampaigns(stores.engine)  # TTL 0: every entry is expired at once
    gate = _stale_gate(stores, campaigns, stale_s=10.0)
    await _request(gate)  # nothing cached yet: this one waits for the read
    assert campaigns.reads == 1
    # Expired, but read a moment ago: answered at once, while ONE refresh reads (50 ms).
    answered = await asyncio.gather(*(_request(gate, f"1390013{i:04d}") for i in range(10)))
    assert [r.campaign for r in answered] == ["c1"] * 10
    assert campaigns.reads == 2 and len(gate._campaign_refreshes) == 1
    await asyncio.gather(*gate._campaign_refreshes.values())
    await asyncio.sleep(0)  # the done callback
    assert not gate._campaign_refreshes


async def test_past_the_stale_window_a_caller_waits_and_fails_closed(
    stores: ComplianceStores, caplog: pytest.LogCaptureFixture
) -> None:
    campaigns = _SlowCampaigns(stores.engine, fail=0)
    gate = _stale_gate(stores, campaigns, stale_s=0.3)
    await _request(gate)
    campaigns.fail = 99  # the database is gone from now on
    stale = await _request(gate)  # within the window: the entry answers, the refresh fails
    assert stale.campaign == "c1"
    await asyncio.gather(*gate._campaign_refreshes.values(), return_exceptions=True)
    await asyncio.sleep(0)
    assert "campaign refresh failed" in caplog.text
    await asyncio.sleep(0.3)  # the entry has aged out of the window
    with pytest.raises(RuntimeError, match="campaign read failed"):
        await _request(gate)


async def test_close_cancels_a_refresh_in_flight(stores: ComplianceStores) -> None:
    campaigns = _SlowCampaigns(stores.engine)
    gate = _stale_gate(stores, campaigns, stale_s=10.0)
    await _request(gate)
    await _request(gate)  # starts a refresh (50 ms)
    (refresh,) = gate._campaign_refreshes.values()
    await gate.close()
    assert refresh.cancelled()
