"""One contract, three ledgers: SQLite, PostgreSQL and Redis must answer alike."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from store_helpers import CALLER_ID, LedgerFactory, local

from compliance.ledger import (
    AttemptAlreadyResolved,
    DuplicateAttempt,
    UnknownAttempt,
)
from compliance.model import (
    AttemptOutcome,
    CallRequest,
    ContactKind,
    ListStatus,
    ReasonCode,
)
from compliance.numbers import mask
from compliance.policy import Policy

NUMBER = "13800138000"
AT = local(2026, 11, 3, 10, 30)  # a Tuesday, inside the default calling window
CLEAN = ListStatus()


def req(number: str = NUMBER, product: str = "loan", at: datetime = AT, **kw: Any) -> CallRequest:
    return CallRequest(
        number=number, campaign="c1", product=product, at=at, caller_id=CALLER_ID, **kw
    )


async def test_allowed_reservation_is_recorded_with_its_decision(
    make_ledger: LedgerFactory, policy: Policy
) -> None:
    ledger = await make_ledger(policy)
    decision = await ledger.check_and_reserve(req(), attempt_id="a1", lists=CLEAN)
    assert decision.allowed, decision.reasons
    assert decision.policy_version == "store-test-1"
    history = await ledger.history(NUMBER)
    assert [(e.kind, e.outcome, e.attempt_id, e.product) for e in history] == [
        (ContactKind.ATTEMPT, AttemptOutcome.RESERVED, "a1", "loan")
    ]
    assert history[0].at == AT
    log = await ledger.decisions(NUMBER)
    assert [(d.allowed, d.reserved, d.attempt_id, d.policy_version) for d in log] == [
        (True, True, "a1", "store-test-1")
    ]


async def test_refusal_reserves_nothing_but_is_logged_with_reasons(
    make_ledger: LedgerFactory, policy: Policy
) -> None:
    ledger = await make_ledger(policy)
    lists = ListStatus(blacklisted=True, blacklist_reason="complaint")
    decision = await ledger.check_and_reserve(req(), attempt_id="a1", lists=lists)
    assert not decision.allowed
    assert ReasonCode.BLACKLISTED in decision.codes
    assert await ledger.history(NUMBER) == []
    (logged,) = await ledger.decisions(NUMBER)
    assert not logged.allowed and not logged.reserved
    assert logged.codes == decision.codes
    assert logged.reasons == decision.reasons
    assert logged.policy_version == "store-test-1"


async def test_check_does_not_reserve(make_ledger: LedgerFactory, policy: Policy) -> None:
    ledger = await make_ledger(policy)
    for _ in range(3):
        assert (await ledger.check(req(), CLEAN)).allowed
    assert await ledger.history(NUMBER) == []
    assert len(await ledger.decisions(NUMBER)) == 3


async def test_monthly_cap_then_quiet_period(make_ledger: LedgerFactory, policy: Policy) -> None:
    ledger = await make_ledger(policy)
    assert (
        await ledger.check_and_reserve(req(product="loan"), attempt_id="a1", lists=CLEAN)
    ).allowed
    assert (
        await ledger.check_and_reserve(
            req(product="card", at=AT + timedelta(hours=4)), attempt_id="a2", lists=CLEAN
        )
    ).allowed
    third = await ledger.check_and_reserve(
        req(product="fund", at=AT + timedelta(days=1)), attempt_id="a3", lists=CLEAN
    )
    assert not third.allowed
    assert ReasonCode.MONTHLY_CAP in third.codes
    assert third.retry_at is not None and third.retry_at >= local(2027, 3, 1)
    assert [e.attempt_id for e in await ledger.history(NUMBER)] == ["a1", "a2"]


async def test_same_customer_in_any_notation_shares_one_history(
    make_ledger: LedgerFactory, policy: Policy
) -> None:
    ledger = await make_ledger(policy)
    assert (
        await ledger.check_and_reserve(req("138 0013 8000"), attempt_id="a1", lists=CLEAN)
    ).allowed
    again = await ledger.check_and_reserve(req("+86 138-0013-8000"), attempt_id="a2", lists=CLEAN)
    assert ReasonCode.PRODUCT_INTERVAL in again.codes
    assert len(await ledger.history("008613800138000")) == 1


async def test_resolve_sets_outcome_once(make_ledger: LedgerFactory, policy: Policy) -> None:
    ledger = await make_ledger(policy)
    await ledger.check_and_reserve(req(), attempt_id="a1", lists=CLEAN)
    await ledger.resolve("a1", AttemptOutcome.NO_ANSWER)
    await ledger.resolve("a1", AttemptOutcome.NO_ANSWER)  # repeated report: no-op
    assert [e.outcome for e in await ledger.history(NUMBER)] == [AttemptOutcome.NO_ANSWER]
    with pytest.raises(AttemptAlreadyResolved):
        await ledger.resolve("a1", AttemptOutcome.ANSWERED)
    with pytest.raises(UnknownAttempt):
        await ledger.resolve("never-reserved", AttemptOutcome.ANSWERED)
    assert [e.outcome for e in await ledger.history(NUMBER)] == [AttemptOutcome.NO_ANSWER]


async def test_cancelled_reservation_frees_its_slot(
    make_ledger: LedgerFactory, policy: Policy
) -> None:
    ledger = await make_ledger(policy)
    await ledger.check_and_reserve(req(product="loan"), attempt_id="a1", lists=CLEAN)
    await ledger.check_and_reserve(req(product="card"), attempt_id="a2", lists=CLEAN)
    assert not (await ledger.check(req(product="fund"), CLEAN)).allowed
    await ledger.resolve("a2", AttemptOutcome.CANCELLED)
    assert (
        await ledger.check_and_reserve(req(product="fund"), attempt_id="a3", lists=CLEAN)
    ).allowed


async def test_duplicate_attempt_id_is_refused_and_changes_nothing(
    make_ledger: LedgerFactory, policy: Policy
) -> None:
    ledger = await make_ledger(policy)
    await ledger.check_and_reserve(req(), attempt_id="a1", lists=CLEAN)
    with pytest.raises(DuplicateAttempt):
        await ledger.check_and_reserve(req("13900139000"), attempt_id="a1", lists=CLEAN)
    assert await ledger.history("13900139000") == []
    assert len(await ledger.history(NUMBER)) == 1


async def test_three_refusals_end_a_product(make_ledger: LedgerFactory, policy: Policy) -> None:
    ledger = await make_ledger(policy)
    for i in range(3):
        await ledger.record_refusal(
            NUMBER, "c1", "loan", AT - timedelta(days=100 * (i + 1)), attempt_id=f"r{i}"
        )
    await ledger.record_refusal(NUMBER, "c1", "loan", AT - timedelta(days=100), attempt_id="r0")
    history = await ledger.history(NUMBER)
    assert [e.kind for e in history] == [ContactKind.REFUSAL] * 3, "a repeated refusal counted"
    decision = await ledger.check_and_reserve(req(product="loan"), attempt_id="a1", lists=CLEAN)
    assert ReasonCode.PRODUCT_REFUSED in decision.codes
    assert (
        await ledger.check_and_reserve(req(product="card"), attempt_id="a2", lists=CLEAN)
    ).allowed


async def test_invalid_number_is_refused_and_logged_not_stored(
    make_ledger: LedgerFactory, policy: Policy
) -> None:
    ledger = await make_ledger(policy)
    decision = await ledger.check_and_reserve(req("12345abc"), attempt_id="a1", lists=CLEAN)
    assert decision.codes == (ReasonCode.INVALID_NUMBER,)
    assert [d.codes for d in await ledger.decisions("12345abc")] == [(ReasonCode.INVALID_NUMBER,)]


async def test_concurrent_reservations_on_one_customer_respect_caps(
    make_ledger: LedgerFactory, policy: Policy
) -> None:
    ledger = await make_ledger(policy)
    products = ["loan", "card", "fund", "gold"]
    results = await asyncio.gather(
        *(
            ledger.check_and_reserve(req(product=products[i % 4]), attempt_id=f"a{i}", lists=CLEAN)
            for i in range(24)
        )
    )
    granted = [f"a{i}" for i, d in enumerate(results) if d.allowed]
    assert len(granted) == 2, f"{mask(NUMBER)}: {len(granted)} reservations granted, cap is 2"
    history = await ledger.history(NUMBER)
    assert sorted(e.attempt_id for e in history) == sorted(granted)
    assert len({e.product for e in history}) == 2
    assert len(await ledger.decisions(NUMBER)) == 24


async def test_decisions_and_history_by_attempt_id(
    make_ledger: LedgerFactory, policy: Policy
) -> None:
    ledger = await make_ledger(policy)
    other = "13900139000"
    assert (await ledger.check_and_reserve(req(), attempt_id="a1", lists=CLEAN)).allowed
    await ledger.resolve("a1", AttemptOutcome.ANSWERED)
    await ledger.record_refusal(NUMBER, "c1", "loan", AT + timedelta(minutes=1), "a1")
    listed = ListStatus(blacklisted=True, blacklist_reason="complaint")
    refused = await ledger.check_and_reserve(req(other), attempt_id="m1", lists=listed)
    assert not refused.allowed
    assert (await ledger.check(req(other), CLEAN)).allowed  # a plain check: attempt id ""

    (a1,) = await ledger.decisions_for_attempt("a1")
    assert (a1.attempt_id, a1.allowed, a1.reserved, a1.product) == ("a1", True, True, "loan")
    assert a1.number_key == (await ledger.decisions(NUMBER))[0].number_key
    # A refused attempt reserves nothing, yet its decision is found by its id.
    (m1,) = await ledger.decisions_for_attempt("m1")
    assert (m1.allowed, m1.reserved, m1.codes) == (False, False, refused.codes)
    assert await ledger.decisions_for_attempt("nope") == []
    assert await ledger.decisions_for_attempt("") == []

    events = await ledger.history_for_attempt("a1")
    assert [(e.kind, e.outcome, e.attempt_id) for e in events] == [
        (ContactKind.ATTEMPT, AttemptOutcome.ANSWERED, "a1"),
        (ContactKind.REFUSAL, AttemptOutcome.ANSWERED, "a1"),
    ]
    assert await ledger.history_for_attempt("m1") == []
    assert await ledger.history_for_attempt("") == []
