"""Property: a dialer that reserves an attempt whenever the engine allows never breaks a cap.

The checker below recomputes every cap over the final history on its own
(calendar months by ``astimezone``, plain loops), without the engine.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.engine import counted_outcomes, evaluate
from compliance.model import (
    AttemptOutcome,
    CallRequest,
    ContactEvent,
    ContactKind,
    ListStatus,
)
from compliance.policy import Policy, parse_policy

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 9, tzinfo=SH)
PRODUCTS = ("a", "b", "c")
EDGES = [d * 1440 + k for d in (1, 7, 28, 29, 30, 31) for k in (-1, 0, 1)]
ALLOWED: list[int] = []  # calls placed per example, to show the test is not vacuous


@dataclass(frozen=True)
class Scenario:
    policy: Policy
    history: list[ContactEvent]
    steps: list[tuple[int, str, str, bool, AttemptOutcome | None]]


def _policy(
    monthly: int, quiet: int, yearly: int, interval: int, refusals: int, answered: bool
) -> Policy:
    seg_monthly = max(1, monthly - 1)
    return parse_policy(
        f"""
version = "prop"
[counting]
calls = "{"answered_only" if answered else "every_attempt"}"
[caps]
monthly_calls = {monthly}
quiet_months = {quiet}
yearly_calls = {yearly}
product_interval_days = {interval}
product_refusals = {refusals}
[caller_id]
pool = ["58001234"]
[segments.default]
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
windows = ["00:00-24:00"]
[segments.owner]
days = ["mon", "tue", "wed", "thu", "fri"]
windows = ["10:00-11:30", "15:00-17:00"]
monthly_calls = {seg_monthly}
yearly_calls = {min(yearly, 6)}
"""
    )


outcomes = st.sampled_from(list(AttemptOutcome))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    policy = _policy(
        draw(st.integers(1, 3)),
        draw(st.integers(0, 3)),
        draw(st.integers(3, 30)),
        draw(st.integers(0, 40)),
        draw(st.integers(1, 3)),
        draw(st.booleans()),
    )
    history: list[ContactEvent] = []
    # old counted attempts, 125+ days apart (4 months and more): no cap broken among them
    t = T0 - timedelta(days=730)
    for _ in range(draw(st.integers(0, 4))):
        t += timedelta(days=draw(st.integers(125, 180)))
        history.append(
            ContactEvent(
                t, ContactKind.ATTEMPT, "old", draw(st.sampled_from(PRODUCTS)), draw(outcomes)
            )
        )
    # attempts that never count, anywhere in the last year
    for _ in range(draw(st.integers(0, 5))):
        at = T0 - timedelta(minutes=draw(st.integers(1, 525_600)))
        outcome = draw(st.sampled_from([AttemptOutcome.FAILED, AttemptOutcome.CANCELLED]))
        history.append(
            ContactEvent(at, ContactKind.ATTEMPT, "x", draw(st.sampled_from(PRODUCTS)), outcome)
        )
    # refusals after the old attempts
    for _ in range(draw(st.integers(0, 4))):
        at = T0 - timedelta(minutes=draw(st.integers(1, 100_000)))
        history.append(ContactEvent(at, ContactKind.REFUSAL, "x", draw(st.sampled_from(PRODUCTS))))
    steps = draw(
        st.lists(
            st.tuples(
                st.one_of(  # minutes since the previous request: hours, weeks, near edges
                    st.integers(0, 60 * 24),
                    st.integers(60 * 24 * 7, 60 * 24 * 45),
                    st.sampled_from(EDGES),
                ),
                st.sampled_from(PRODUCTS),
                st.sampled_from(["default", "default", "owner"]),
                st.booleans(),  # the customer refuses the product afterwards (if called)
                st.one_of(st.none(), outcomes),  # how the reserved attempt ends, None: stays
            ),
            min_size=10,
            max_size=60,
        )
    )
    return Scenario(policy, history, steps)


def _month(at: datetime) -> int:
    local = at.astimezone(SH)
    return local.year * 12 + local.month - 1


def violations(
    policy: Policy, history: list[ContactEvent], owner_times: set[datetime]
) -> list[str]:
    """Every cap broken by ``history``, computed without the engine."""
    counted = counted_outcomes(policy.counting)
    calls = sorted(
        (e for e in history if e.kind is ContactKind.ATTEMPT and e.outcome in counted),
        key=lambda e: e.at,
    )
    return (
        _calendar_caps(policy, calls)
        + _product_rules(policy, history, calls)
        + _owner_rules(policy, calls, owner_times)
    )


def _calendar_caps(policy: Policy, calls: list[ContactEvent]) -> list[str]:
    caps = policy.caps
    problems: list[str] = []
    per_month = Counter(_month(e.at) for e in calls)
    per_year = Counter(e.at.astimezone(SH).year for e in calls)
    for m, n in per_month.items():
        if n > caps.monthly_calls:
            problems.append(f"{n} calls in month {m}")
        if n >= caps.monthly_calls:
            for later in range(m + 1, m + 1 + caps.quiet_months):
                if per_month.get(later):
                    problems.append(f"call in quiet month {later} after capped {m}")
    problems += [f"{n} calls in {y}" for y, n in per_year.items() if n > caps.yearly_calls]
    return problems


def _product_rules(
    policy: Policy, history: list[ContactEvent], calls: list[ContactEvent]
) -> list[str]:
    caps = policy.caps
    problems: list[str] = []
    by_product: dict[str, list[datetime]] = defaultdict(list)
    for e in calls:
        by_product[e.product].append(e.at)
    for product, times in by_product.items():
        for a, b in itertools.pairwise(times):
            if b - a < timedelta(days=caps.product_interval_days):
                problems.append(f"{product} twice within {caps.product_interval_days} days")
    refusals: dict[str, list[datetime]] = defaultdict(list)
    for e in sorted(history, key=lambda e: e.at):
        if e.kind is ContactKind.REFUSAL:
            refusals[e.product].append(e.at)
    for product, times in refusals.items():
        if len(times) >= caps.product_refusals:
            final = times[caps.product_refusals - 1]
            if any(t > final for t in by_product.get(product, [])):
                problems.append(f"{product} offered after {caps.product_refusals} refusals")
    return problems


def _owner_rules(
    policy: Policy, calls: list[ContactEvent], owner_times: set[datetime]
) -> list[str]:
    owner = policy.segments["owner"]
    assert owner.monthly_calls is not None and owner.yearly_calls is not None
    problems: list[str] = []
    for e in (c for c in calls if c.at in owner_times):
        local = e.at.astimezone(SH)
        minute = local.hour * 60 + local.minute
        day = local.date()  # public holidays off, adjusted working days called like Monday
        if (
            policy.calendar.day_off(day) is not None
            or policy.calendar.calling_weekday(day) not in owner.days
            or not any(w.start <= minute < w.end for w in owner.windows)
        ):
            problems.append(f"owner called outside hours at {local}")
        # the stricter segment caps: calls up to and including this one
        before = [c for c in calls if c.at <= e.at]
        month_n = sum(1 for c in before if _month(c.at) == _month(e.at))
        year_n = sum(1 for c in before if c.at.astimezone(SH).year == local.year)
        if month_n > owner.monthly_calls or year_n > owner.yearly_calls:
            problems.append(f"owner segment cap broken at {local}")
    return problems


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_reserving_whenever_allowed_never_breaks_a_cap(scenario: Scenario) -> None:
    policy = scenario.policy
    history = list(scenario.history)
    assert violations(policy, history, set()) == []  # the generated past is clean
    at = T0
    owner_times: set[datetime] = set()
    allowed = 0
    for i, (minutes, product, segment, refuses, outcome) in enumerate(scenario.steps):
        at += timedelta(minutes=minutes)
        request = CallRequest("13812345678", "camp", product, at, "58001234", segment=segment)
        decision = evaluate(policy, request, history, ListStatus())
        if not decision.allowed:
            assert decision.reasons
            if decision.retry_at is not None:
                assert decision.retry_at > at
            continue
        allowed += 1
        if segment == "owner":
            owner_times.add(at)
        history.append(ContactEvent(at, ContactKind.ATTEMPT, "camp", product, attempt_id=str(i)))
        if outcome is not None:  # the attempt ends: its outcome replaces RESERVED
            history[-1] = ContactEvent(at, ContactKind.ATTEMPT, "camp", product, outcome, str(i))
        if refuses:
            history.append(
                ContactEvent(at + timedelta(minutes=1), ContactKind.REFUSAL, "camp", product)
            )
            at += timedelta(minutes=1)
    assert violations(policy, history, owner_times) == [], policy.caps
    ALLOWED.append(allowed)


def test_checker_catches_what_it_should() -> None:
    """The checker itself can fail: a history that breaks each cap is reported."""
    policy = _policy(2, 3, 30, 30, 3, False)

    def call(at: datetime, product: str = "a") -> ContactEvent:
        return ContactEvent(at, ContactKind.ATTEMPT, "c", product)

    three = [call(T0, "a"), call(T0 + timedelta(days=1), "b"), call(T0 + timedelta(days=2), "c")]
    assert any("3 calls in month" in p for p in violations(policy, three, set()))
    quiet = [*three[:2], call(T0 + timedelta(days=40), "c")]
    assert any("quiet month" in p for p in violations(policy, quiet, set()))
    twice = [call(T0), call(T0 + timedelta(days=29))]
    assert any("twice within" in p for p in violations(policy, twice, set()))
    refused = [ContactEvent(T0, ContactKind.REFUSAL, "c", "a")] * 3 + [call(T0 + timedelta(days=1))]
    assert any("after 3 refusals" in p for p in violations(policy, refused, set()))
    sunday = T0 + timedelta(days=6)  # T0 is a Monday
    assert any("outside hours" in p for p in violations(policy, [call(sunday)], {sunday}))
