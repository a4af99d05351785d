"""Property: however concurrent reservations interleave, no customer ever ends up over a cap.

The checker below recounts the caps from the final history itself (calendar
month, quiet months, calendar year, same product within 30 days); it does not
ask the engine.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, defaultdict
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_helpers import CALLER_ID, SHANGHAI, LedgerFactory, local

from compliance.model import AttemptOutcome, CallRequest, ContactEvent, ContactKind, ListStatus
from compliance.numbers import mask
from compliance.policy import Policy, parse_policy

PRODUCTS = ("loan", "card", "fund")
#: Caps that bind sooner, so the yearly cap and short product intervals are exercised too.
TIGHT = parse_policy(
    'version = "tight"\n[caller_id]\npool = ["010-58001234"]\n'
    "[caps]\nmonthly_calls = 3\nquiet_months = 1\nyearly_calls = 5\nproduct_interval_days = 7\n",
    "tight",
)
START = local(2026, 1, 5, 10, 0)  # a Monday
_run = itertools.count()


def cap_violations(number: str, history: list[ContactEvent], policy: Policy) -> list[str]:
    """Every cap the history breaks, recounted from scratch."""
    calls = sorted(
        (
            e
            for e in history
            if e.kind == ContactKind.ATTEMPT
            and e.outcome not in (AttemptOutcome.CANCELLED, AttemptOutcome.FAILED)
        ),
        key=lambda e: e.at,
    )
    caps = policy.caps
    problems = []
    months: Counter[int] = Counter()
    years: Counter[int] = Counter()
    for e in calls:
        t = e.at.astimezone(SHANGHAI)
        months[t.year * 12 + t.month - 1] += 1
        years[t.year] += 1
    for month, n in months.items():
        if n > caps.monthly_calls:
            problems.append(f"{n} calls in month {month}")
        if n >= caps.monthly_calls:
            for later in range(month + 1, month + 1 + caps.quiet_months):
                if months.get(later):
                    problems.append(f"call in quiet month {later} after capped month {month}")
    problems += [f"{n} calls in {y}" for y, n in years.items() if n > caps.yearly_calls]
    by_product: dict[str, list[datetime]] = defaultdict(list)
    for e in calls:
        by_product[e.product].append(e.at)
    for product, times in by_product.items():
        for a, b in itertools.pairwise(times):
            if b - a < timedelta(days=caps.product_interval_days):
                problems.append(f"{product} twice within {(b - a).days} days")
    return [f"{mask(number)}: {p}" for p in problems]


wave = st.tuples(
    st.integers(min_value=0, max_value=45),  # days after the previous wave
    st.lists(  # concurrent requests of the wave: (customer, product)
        st.tuples(st.integers(min_value=0, max_value=3), st.sampled_from(PRODUCTS)),
        min_size=1,
        max_size=12,
    ),
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(waves=st.lists(wave, min_size=1, max_size=6), tight=st.booleans())
async def test_concurrent_reservations_never_exceed_caps(
    make_ledger: LedgerFactory,
    policy: Policy,
    waves: list[tuple[int, list[tuple[int, str]]]],
    tight: bool,
) -> None:
    if tight:
        policy = TIGHT
    ledger = await make_ledger(policy)
    try:
        run = next(_run)  # fresh customers for every example (the backend is shared)
        numbers = [f"1390{run:03d}{c:04d}" for c in range(4)]
        at = START
        granted: set[str] = set()
        n = 0
        for gap, requests in waves:
            at = at + timedelta(days=gap)
            # Sundays and public holidays are outside the default calling days.
            while (
                policy.calendar.calling_weekday(at.date()) == 6
                or policy.calendar.day_off(at.date()) is not None
            ):
                at += timedelta(days=1)
            ids = [f"{run}-{n + i}" for i in range(len(requests))]
            n += len(requests)
            decisions = await asyncio.gather(
                *(
                    ledger.check_and_reserve(
                        CallRequest(numbers[c], "c1", product, at, CALLER_ID),
                        attempt_id=attempt_id,
                        lists=ListStatus(),
                    )
                    for (c, product), attempt_id in zip(requests, ids, strict=True)
                )
            )
            granted |= {a for a, d in zip(ids, decisions, strict=True) if d.allowed}
        assert granted, "no reservation was granted at all: the test would prove nothing"
        stored: set[str] = set()
        for number in numbers:
            history = await ledger.history(number)
            assert cap_violations(number, history, policy) == []
            stored |= {e.attempt_id for e in history}
        assert stored == granted
    finally:
        await ledger.close()  # one example, one set of connections
