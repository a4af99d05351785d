"""The gate builds the request from campaign and lead, asks the lists, reserves via the ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from store_helpers import SHANGHAI, local

from compliance.campaigns import parse_campaign_spec
from compliance.gate import ComplianceStores, open_compliance
from compliance.lists import ListReason
from compliance.model import AttemptOutcome, CallRequest, ReasonCode
from compliance.policy import Policy

AT = local(2026, 11, 3, 10, 30)
SPEC = {"name": "c1", "script": "Hello", "products": ["loan", "card"], "caller_id": "010-58001234"}
LEADS = (
    "number,segment,product,assigned_at,dialled_number\n"
    "13800138000,default,card,2026-10-20T09:00,\n"
    "13500135000,default,loan,2025-12-01T09:00,\n"
    "13600136000,default,loan,2026-10-20T09:00,010-58005678\n"
    "13400134000,vip,loan,2026-10-20T09:00,\n"
)


@pytest.fixture(params=["sql", "redis"])
def ledger_redis(request: pytest.FixtureRequest) -> tuple[str | None, str]:
    """(redis URL or None, key prefix): the SQL ledger, or the Redis ledger and list mirror."""
    if request.param == "redis":
        target: Any = request.getfixturevalue("redis_target")
        return target.url, target.prefix
    return None, "dialer:"


@pytest.fixture
async def stores(
    ledger_redis: tuple[str | None, str], sqlite_url: str, policy: Policy
) -> AsyncIterator[ComplianceStores]:
    redis_url, prefix = ledger_redis
    opened = await open_compliance(sqlite_url, policy, redis_url=redis_url, redis_prefix=prefix)
    await opened.campaigns.create(parse_campaign_spec(SPEC))
    await opened.campaigns.create(parse_campaign_spec({**SPEC, "name": "noscript", "script": ""}))
    await opened.leads.import_text(LEADS, "leads.csv", "c1", tz=SHANGHAI)
    yield opened
    await opened.close()


async def test_lead_product_and_campaign_caller_id_are_used(stores: ComplianceStores) -> None:
    gate = stores.gate
    request = await gate.request_for("13800138000", "c1", None, AT)
    assert isinstance(request, CallRequest)
    assert request.product == "card" and request.caller_id == "01058001234"
    decision = await gate.check_and_reserve("13800138000", "c1", None, AT, attempt_id="g1")
    assert decision.allowed, decision.reasons
    assert [e.product for e in await stores.ledger.history("13800138000")] == ["card"]
    await gate.resolve("g1", AttemptOutcome.ANSWERED)
    again = await gate.check("13800138000", "c1", "card", AT)
    assert ReasonCode.PRODUCT_INTERVAL in again.codes


async def test_refusals_from_registry_lead_and_lists(stores: ComplianceStores) -> None:
    gate = stores.gate
    unknown = await gate.check_and_reserve("13800138000", "ghost", "loan", AT, attempt_id="x1")
    assert unknown.codes == (ReasonCode.UNKNOWN_CAMPAIGN,)
    noscript = await gate.check("13800138000", "noscript", "loan", AT)
    assert ReasonCode.NO_SCRIPT in noscript.codes
    recalled = await gate.check("13500135000", "c1", None, AT)
    assert ReasonCode.DATA_RECALLED in recalled.codes
    segment = await gate.check("13400134000", "c1", None, AT)
    assert ReasonCode.UNKNOWN_SEGMENT in segment.codes
    await stores.lists.add("13800138000", ListReason.COMPLAINT, source="call", actor="ann")
    listed = await gate.check_and_reserve("13800138000", "c1", None, AT, attempt_id="x2")
    assert ReasonCode.BLACKLISTED in listed.codes
    assert await stores.ledger.history("13800138000") == []


async def test_callback_presents_the_dialled_number(stores: ComplianceStores) -> None:
    gate = stores.gate
    wrong = await gate.check(
        "13600136000", "c1", None, AT, caller_id="010-58001234", is_callback=True
    )
    assert ReasonCode.CALLER_ID_MUST_BE_DIALLED_NUMBER in wrong.codes
    right = await gate.check("13600136000", "c1", None, AT, is_callback=True)
    assert right.allowed, right.reasons


async def test_a_lead_from_the_customers_own_call_is_a_callback_without_the_flag(
    stores: ComplianceStores,
) -> None:
    """Art. 35 is derived from the lead (it has a dialled number), never only from a flag:
    the manual-call and CLI paths pass no flag and a pool number, and are refused."""
    gate = stores.gate
    pool = await gate.check("13600136000", "c1", None, AT, caller_id="010-58001234")
    assert ReasonCode.CALLER_ID_MUST_BE_DIALLED_NUMBER in pool.codes
    reserved = await gate.check_and_reserve(
        "13600136000", "c1", None, AT, caller_id="010-58001234", attempt_id="cb-1"
    )
    assert not reserved.allowed and await stores.ledger.history("13600136000") == []
    dialled = await gate.check("13600136000", "c1", None, AT, caller_id="010-58005678")
    assert dialled.allowed, dialled.reasons


async def test_a_callback_presenting_a_private_number_is_refused(stores: ComplianceStores) -> None:
    """The dialled number a lead list claims must still be one of the company's numbers."""
    await stores.leads.import_text(
        "number,segment,product,assigned_at,dialled_number\n"
        "13300133000,default,loan,2026-10-20T09:00,139 0013 9000\n",
        "private.csv",
        "c1",
        tz=SHANGHAI,
    )
    d = await stores.gate.check("13300133000", "c1", None, AT, caller_id="13900139000")
    assert d.codes == (ReasonCode.CALLER_ID_NOT_IN_POOL,), d.codes
