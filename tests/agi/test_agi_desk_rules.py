"""The pure desk-phone rules (rules.md E): every class x number kind, prefix, grants, quotas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from agi_scripts.desk_rules import (
    DeskPolicy,
    DeskReason,
    ExtensionClass,
    Grant,
    MobilePolicy,
    Quota,
    QuotaPolicy,
    Tariff,
    decide,
)
from compliance.numbers import NumberKind, PhoneNumber, mobile_area, parse

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
E, F, L = ExtensionClass.EXECUTIVE, ExtensionClass.FAX, ExtensionClass.LOCAL
TARIFF = Tariff()
QUOTA = Quota()

NUMBERS = {
    "emergency": "110",
    "internal": "8001",
    "local": "88886666",
    "long_distance": "02088886666",
    "mobile": "13812345678",
    "premium": "16812345678",
    "international": "+14155552671",
    "service": "4001234567",
    "short": "10086",
    "invalid": None,
}


def grant(
    start: timedelta = timedelta(days=-1),
    end: timedelta = timedelta(days=30),
    revoked: datetime | None = None,
) -> Grant:
    return Grant(1, "230", "alice", ("bob", "carol"), NOW + start, NOW + end, revoked_at=revoked)


def number(name: str) -> PhoneNumber | None:
    raw = NUMBERS[name]
    return None if raw is None else parse(raw)


ALLOW, R = DeskReason.OK, DeskReason
# class x number kind -> expected reason (OK/EMERGENCY/INTERNAL = allowed)
MATRIX = {
    "emergency": {E: R.EMERGENCY, F: R.EMERGENCY, L: R.EMERGENCY, "L+grant": R.EMERGENCY},
    "internal": {E: R.INTERNAL, F: R.INTERNAL, L: R.INTERNAL, "L+grant": R.INTERNAL},
    "local": {E: ALLOW, F: ALLOW, L: ALLOW, "L+grant": ALLOW},
    "long_distance": {E: ALLOW, F: ALLOW, L: R.LONG_DISTANCE, "L+grant": ALLOW},
    "mobile": {E: ALLOW, F: R.MOBILE, L: ALLOW, "L+grant": ALLOW},
    "premium": {E: R.PREMIUM_RATE, F: R.PREMIUM_RATE, L: R.PREMIUM_RATE, "L+grant": R.PREMIUM_RATE},
    "international": {
        E: R.INTERNATIONAL,
        F: R.INTERNATIONAL,
        L: R.INTERNATIONAL,
        "L+grant": R.INTERNATIONAL,
    },
    "service": {E: ALLOW, F: ALLOW, L: ALLOW, "L+grant": ALLOW},
    "short": {E: ALLOW, F: ALLOW, L: ALLOW, "L+grant": ALLOW},
    "invalid": {
        E: R.INVALID_NUMBER,
        F: R.INVALID_NUMBER,
        L: R.INVALID_NUMBER,
        "L+grant": R.INVALID_NUMBER,
    },
}
CASES = [(kind, cls, reason) for kind, row in MATRIX.items() for cls, reason in row.items()]


@pytest.mark.parametrize(("kind", "cls", "reason"), CASES, ids=[f"{k}-{c}" for k, c, _ in CASES])
def test_class_by_number_kind(kind: str, cls: object, reason: DeskReason) -> None:
    grants = (grant(),) if cls == "L+grant" else ()
    ext_class = L if cls == "L+grant" else cls
    d = decide(ext_class, number(kind), grants, 0, QUOTA, TARIFF, at=NOW)  # type: ignore[arg-type]
    assert d.reason is reason, f"{kind} from {cls}: {d}"
    assert d.allowed is (reason in (R.OK, R.EMERGENCY, R.INTERNAL))
    assert (d.dial != "") is d.allowed


def test_long_distance_gets_the_17909_prefix_and_nothing_else_does() -> None:
    d = decide(E, parse("020-8888 6666"), (), 0, QUOTA, TARIFF, at=NOW)
    assert d.dial == "17909" + "02088886666"
    assert decide(E, parse("010 8888 6666"), (), 0, QUOTA, TARIFF, at=NOW).dial == "88886666"
    assert decide(E, parse("13812345678"), (), 0, QUOTA, TARIFF, at=NOW).dial == "13812345678"
    assert decide(E, parse("110"), (), 0, QUOTA, TARIFF, at=NOW).dial == "110"
    custom = DeskPolicy(long_distance_prefix="12593")
    d = decide(F, parse("075512345678"), (), 0, QUOTA, TARIFF, at=NOW, policy=custom)
    assert d.dial == "12593075512345678"


@pytest.mark.parametrize(
    ("g", "allowed"),
    [
        (grant(), True),
        (grant(end=timedelta(seconds=1)), True),
        (grant(end=timedelta(0)), False),  # expires exactly now: expired
        (grant(end=timedelta(seconds=-1)), False),
        (grant(start=timedelta(seconds=1)), False),  # not yet started
        (grant(revoked=NOW - timedelta(minutes=1)), False),
        (grant(revoked=NOW + timedelta(minutes=1)), True),  # revocation takes effect later
    ],
    ids=["active", "last-second", "expires-now", "expired", "future", "revoked", "revoke-later"],
)
def test_long_distance_grants_expire(g: Grant, allowed: bool) -> None:
    d = decide(L, parse("02088886666"), (g,), 0, QUOTA, TARIFF, at=NOW)
    assert d.allowed is allowed
    assert d.quota_fen == (15000 if allowed else 8000)  # LD-enabled quota only while granted


@pytest.mark.parametrize(
    ("cls", "spend", "allowed"),
    [
        (L, 7999, True),  # one fen under: this call may cross the quota
        (L, 8000, False),  # at the quota: refused
        (L, 9000, False),
        (E, 14999, True),
        (E, 15000, False),
        (F, 15000, False),
    ],
)
def test_quota_boundary(cls: ExtensionClass, spend: int, allowed: bool) -> None:
    d = decide(cls, parse("88886666"), (), spend, QUOTA, TARIFF, at=NOW)
    assert d.allowed is allowed
    assert d.reason is (R.OK if allowed else R.QUOTA_EXHAUSTED)


def test_the_call_that_crosses_the_quota_is_allowed_the_next_is_not() -> None:
    spend = 7950
    first = decide(L, parse("13812345678"), (), spend, QUOTA, TARIFF, at=NOW)
    assert first.allowed
    spend += TARIFF.cost_fen(NumberKind.MOBILE, 10 * 60)  # 10 minutes at 0.15 = 150 fen
    assert spend == 8100
    second = decide(L, parse("13812345678"), (), spend, QUOTA, TARIFF, at=NOW)
    assert not second.allowed and second.reason is R.QUOTA_EXHAUSTED


def test_quota_warn_policy_allows_with_a_warning() -> None:
    warn = DeskPolicy(quota=QuotaPolicy.WARN)
    d = decide(L, parse("88886666"), (), 8000, QUOTA, TARIFF, at=NOW, policy=warn)
    assert d.allowed and d.quota_warning and d.reason is R.QUOTA_WARNING
    d = decide(L, parse("88886666"), (), 7999, QUOTA, TARIFF, at=NOW, policy=warn)
    assert d.allowed and not d.quota_warning


@pytest.mark.parametrize("emergency", ["110", "119", "120", "122"])
@pytest.mark.parametrize("cls", [E, F, L])
def test_emergency_with_exhausted_quota(emergency: str, cls: ExtensionClass) -> None:
    d = decide(cls, parse(emergency), (), 10**9, QUOTA, TARIFF, at=NOW)
    assert d.allowed and d.reason is R.EMERGENCY and d.dial == emergency
    assert not d.chargeable


def test_free_calls_are_not_blocked_by_the_quota() -> None:
    free = Tariff(rates={NumberKind.LOCAL: Decimal(0)})
    assert decide(L, parse("88886666"), (), 10**6, QUOTA, free, at=NOW).allowed
    assert decide(L, parse("8001"), (), 10**6, QUOTA, TARIFF, at=NOW).allowed


def test_home_area_mobile_policy() -> None:
    policy = DeskPolicy(mobile=MobilePolicy.HOME_AREA, home_area="10")
    areas = {"13911112222": "10", "13812345678": "518"}
    for raw, allowed in (("13911112222", True), ("13812345678", False), ("13700000000", False)):
        d = decide(
            L, parse(raw), (), 0, QUOTA, TARIFF, at=NOW, policy=policy, home_area_of=areas.get
        )
        assert d.allowed is allowed, raw
        if not allowed:
            assert d.reason is R.MOBILE_OUTSIDE_HOME_AREA
    # executives may call every mobile whatever the policy
    assert decide(
        E, parse("13812345678"), (), 0, QUOTA, TARIFF, at=NOW, policy=policy, home_area_of=areas.get
    ).allowed


def test_home_area_mobile_policy_with_the_real_number_ranges() -> None:
    policy = DeskPolicy(mobile=MobilePolicy.HOME_AREA, home_area="10")
    assert mobile_area("13911112222") == "10"
    assert decide(L, parse("13911112222"), (), 0, QUOTA, TARIFF, at=NOW, policy=policy).allowed
    assert not decide(L, parse("13812345678"), (), 0, QUOTA, TARIFF, at=NOW, policy=policy).allowed


@pytest.mark.parametrize(
    ("kind", "billsec", "fen"),
    [
        (NumberKind.LOCAL, 0, 0),
        (NumberKind.LOCAL, 1, 10),  # a started minute
        (NumberKind.LOCAL, 60, 10),
        (NumberKind.LOCAL, 61, 20),
        (NumberKind.DOMESTIC_LONG_DISTANCE, 125, 90),
        (NumberKind.MOBILE, 600, 150),
        (NumberKind.EMERGENCY, 600, 0),
        (NumberKind.INTERNAL, 600, 0),
    ],
)
def test_rating(kind: NumberKind, billsec: int, fen: int) -> None:
    assert TARIFF.cost_fen(kind, billsec) == fen


def test_rating_with_six_second_increments_rounds_up_to_the_fen() -> None:
    t = Tariff(rates={NumberKind.LOCAL: Decimal("0.07")}, increment_s=6)
    assert t.cost_fen(NumberKind.LOCAL, 7) == 2  # 12 s at 0.07/min = 1.4 fen -> 2
