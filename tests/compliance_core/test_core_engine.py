"""compliance.engine: every rule of rules.md A, its edges, retry times, many reasons at once."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from compliance.engine import (
    PERMANENT_CODES,
    REQUEST_CODES,
    RULES,
    evaluate,
    explain,
    history_horizon,
    next_window_open,
)
from compliance.model import (
    AttemptOutcome,
    CallRequest,
    ContactEvent,
    ContactKind,
    Decision,
    ListStatus,
    ReasonCode,
)
from compliance.numbers import mask
from compliance.policy import Policy, parse_policy

SH = ZoneInfo("Asia/Shanghai")
R = ReasonCode
Out = AttemptOutcome
NO_LISTS = ListStatus()
CUSTOMER = "13812345678"
CID = "58001234"  # local form of 010-58001234, in the pool

POLICY = parse_policy(
    'version = "test-1"\n[caller_id]\npool = ["010-58001234", "400-123-4567"]\n', "test.toml"
)


def sh(y: int, mo: int, d: int, h: int = 10, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=SH)


NOW = sh(2026, 11, 26)  # Thursday 10:00


def call(at: datetime, product: str = "p", outcome: Out = Out.NO_ANSWER) -> ContactEvent:
    return ContactEvent(at, ContactKind.ATTEMPT, "camp", product, outcome, f"a-{at.isoformat()}")


def refusal(at: datetime, product: str = "p") -> ContactEvent:
    return ContactEvent(at, ContactKind.REFUSAL, "camp", product)


def req(at: datetime = NOW, **kw: object) -> CallRequest:
    base = CallRequest(number=CUSTOMER, campaign="camp", product="p", at=at, caller_id=CID)
    return replace(base, **kw)  # type: ignore[arg-type]


def ev(
    request: CallRequest,
    history: Sequence[ContactEvent] = (),
    lists: ListStatus = NO_LISTS,
    policy: Policy = POLICY,
) -> Decision:
    d = evaluate(policy, request, history, lists)
    for r in d.reasons:  # every message is for people: never a full customer number
        assert CUSTOMER not in r.message, mask(r.message)
        assert r.rule == RULES[r.code] or r.rule == "numbers.customer_kinds"
    assert d.policy_version == policy.version
    assert d.allowed == (not d.reasons)
    return d


def only(d: Decision, code: ReasonCode) -> None:
    assert d.codes == (code,), explain(d)


def test_allowed() -> None:
    d = ev(req())
    assert d == Decision(allowed=True, reasons=(), retry_at=None, policy_version="test-1")
    assert explain(d) == ["allowed (policy test-1)"]


def test_naive_time_is_a_broken_invariant() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(POLICY, req(at=datetime(2026, 11, 26, 10)), [], ListStatus())


# --- A.1 / A.2 lists and numbers ------------------------------------------------


def test_blacklisted() -> None:
    d = ev(req(), lists=ListStatus(blacklisted=True, blacklist_reason="complaint"))
    only(d, R.BLACKLISTED)
    assert d.reasons[0].message == "138****5678 is on the do-not-call list: complaint"
    assert d.reasons[0].rule == "part 1 §1.3; art. 36"
    assert d.retry_at is None


def test_special_from_lists_and_from_policy() -> None:
    d = ev(req(), lists=ListStatus(special=True, special_reason="public_phone"))
    only(d, R.SPECIAL_NUMBER)
    assert "public_phone" in d.reasons[0].message and d.retry_at is None
    policy = parse_policy(
        'version = "s"\n[caller_id]\npool = ["58001234"]\n'
        '[special_numbers.numbers]\n"+86 138 1234 5678" = "protected_person"\n'
    )
    d = ev(req(), policy=policy)
    only(d, R.SPECIAL_NUMBER)
    assert "protected_person" in d.reasons[0].message


@pytest.mark.parametrize(
    ("number", "fragment"),
    [
        ("1381234567x", "contains 'x'"),
        ("", "empty"),
        ("110", "is a emergency number"),
        ("16812345", "is a premium_rate number"),
        ("10086", "is a short number"),
        ("8001", "is a internal number"),
        ("400-123-4567", "is a service number"),
        ("+44 20 7946 0958", "is a international number"),
    ],
)
def test_not_a_customer_number(number: str, fragment: str) -> None:
    d = ev(req(number=number))
    only(d, R.INVALID_NUMBER)
    assert fragment in d.reasons[0].message
    assert d.retry_at is None


@pytest.mark.parametrize("number", ["+86 138-1234-5678", "010 8888 6666", "0755-12345678"])
def test_customer_number_forms(number: str) -> None:
    assert ev(req(number=number)).allowed


# --- A.3 caps ---------------------------------------------------------------------


def test_monthly_cap() -> None:
    d = ev(req(), [call(sh(2026, 11, 2), "r"), call(sh(2026, 11, 20), "q")])
    only(d, R.MONTHLY_CAP)
    assert d.reasons[0].message == "2 calls in 2026-11, limit 2; then 3 quiet months"
    assert d.reasons[0].rule == "part 1 §1.3"
    assert d.retry_at == sh(2027, 3, 1, 9)  # Monday, first window after the quiet months
    assert ev(req(), [call(sh(2026, 11, 2), "q")]).allowed


def test_month_boundary_in_local_time() -> None:
    # 2026-10-31 16:30 UTC is 2026-11-01 00:30 in Shanghai: November
    nov = [
        call(datetime(2026, 10, 31, 16, 30, tzinfo=UTC), "q"),
        call(datetime(2026, 10, 31, 17, 0, tzinfo=UTC), "r"),
    ]
    only(ev(req(), nov), R.MONTHLY_CAP)
    # 2026-10-31 15:59 UTC is 23:59 local on 31 October: one October call is no cap
    mixed = [call(datetime(2026, 10, 31, 15, 59, tzinfo=UTC), "q"), nov[0]]
    assert ev(req(), mixed).allowed
    # a request at 2026-11-30 16:30 UTC is 1 December 00:30 local: November's calls
    # no longer count, but November is capped: quiet period
    late = req(at=datetime(2026, 12, 1, 1, 30, tzinfo=UTC))  # 09:30 local, Tuesday
    assert ev(late, mixed).allowed
    only(ev(late, nov), R.QUIET_PERIOD)


@pytest.mark.parametrize(
    ("capped", "request_at", "until"),
    [
        ((2026, 8), sh(2026, 9, 1), sh(2026, 12, 1, 9)),
        ((2026, 8), sh(2026, 11, 30, 19, 59), sh(2026, 12, 1, 9)),
        ((2026, 9), sh(2026, 12, 15), sh(2027, 1, 1, 9)),
        ((2026, 11), sh(2027, 2, 27), sh(2027, 3, 1, 9)),  # across the year boundary
    ],
)
def test_quiet_period(capped: tuple[int, int], request_at: datetime, until: datetime) -> None:
    y, m = capped
    history = [call(sh(y, m, 3), "x"), call(sh(y, m, 20), "y")]
    d = ev(req(at=request_at), history)
    only(d, R.QUIET_PERIOD)
    assert d.reasons[0].message == (
        f"2 calls in {y}-{m:02d} reached the monthly limit 2: no call in the 3 months after, "
        f"until {until:%Y-%m}"
    )
    assert d.retry_at == until
    assert ev(req(at=until), history).allowed


def test_quiet_period_ends_after_three_months() -> None:
    history = [call(sh(2026, 7, 3)), call(sh(2026, 7, 20), "q")]
    assert ev(req(at=sh(2026, 11, 2)), history).allowed
    only(ev(req(at=sh(2026, 10, 31, 19, 59)), history), R.QUIET_PERIOD)


def test_quiet_period_latest_capped_month_decides() -> None:
    history = [call(sh(2026, 5, 3), "x"), call(sh(2026, 5, 4), "q")]
    history += [call(sh(2026, 9, 3), "r"), call(sh(2026, 9, 4), "s")]
    d = ev(req(at=sh(2026, 9, 30)), history)
    assert d.codes == (R.MONTHLY_CAP,)  # May's quiet period ended with August
    d = ev(req(at=sh(2026, 8, 31)), history[:2])
    assert d.codes == (R.QUIET_PERIOD,) and d.retry_at == sh(2026, 9, 1, 9)
    d = ev(req(at=sh(2026, 10, 12)), history)  # a Monday (10-01..10-08 are public holidays)
    assert d.codes == (R.QUIET_PERIOD,) and d.retry_at == sh(2027, 1, 1, 9)


LOOSE = parse_policy(
    'version = "loose"\n[caps]\nmonthly_calls = 100\nquiet_months = 0\n'
    '[caller_id]\npool = ["58001234"]\n'
)


def _spread(n: int, year: int = 2026) -> list[ContactEvent]:
    return [call(sh(year, 1 + i % 10, 1 + i // 10), f"p{i}") for i in range(n)]


def test_yearly_cap() -> None:
    d = ev(req(), _spread(30), policy=LOOSE)
    only(d, R.YEARLY_CAP)
    assert d.reasons[0].message == "30 calls in 2026, limit 30"
    assert d.reasons[0].rule == "art. 37.1"
    assert d.retry_at == sh(2027, 1, 1, 9)
    assert ev(req(), _spread(29), policy=LOOSE).allowed


def test_year_boundary_in_local_time() -> None:
    # 2025-12-31 16:00 UTC is 2026-01-01 00:00 local: in 2026
    history = [*_spread(29), call(datetime(2025, 12, 31, 16, 0, tzinfo=UTC), "x")]
    only(ev(req(), history, policy=LOOSE), R.YEARLY_CAP)
    history = [*_spread(29), call(datetime(2025, 12, 31, 15, 59, tzinfo=UTC), "x")]
    assert ev(req(), history, policy=LOOSE).allowed
    # the calls of 2026 do not count in 2027
    assert ev(req(at=sh(2027, 1, 4)), _spread(30), policy=LOOSE).allowed


def test_product_interval() -> None:
    last = sh(2026, 11, 10, 10, 30)
    d = ev(req(), [call(sh(2026, 10, 1)), call(last)])
    only(d, R.PRODUCT_INTERVAL)
    assert d.reasons[0].message == (
        "product 'p' was offered on 2026-11-10 10:30, less than 30 days ago"
    )
    assert d.reasons[0].rule == "art. 37.2"
    assert d.retry_at == last + timedelta(days=30)  # Thursday 10:30: inside a window
    assert ev(req(product="q"), [call(last)]).allowed  # another product
    assert ev(req(at=last + timedelta(days=30)), [call(last)]).allowed
    only(ev(req(at=last + timedelta(days=30, seconds=-1)), [call(last)]), R.PRODUCT_INTERVAL)


def test_product_interval_retry_moves_to_a_window() -> None:
    last = sh(2026, 11, 10, 19, 30)  # + 30 days = Thursday 2026-12-10 19:30, then closed
    d = ev(req(), [call(last)])
    assert d.retry_at == sh(2026, 12, 10, 19, 30)
    last = sh(2026, 11, 10, 11, 59)  # retry 2026-12-10 11:59 is in a window
    assert ev(req(), [call(last)]).retry_at == sh(2026, 12, 10, 11, 59)


def test_product_refused_three_times() -> None:
    refusals = [refusal(sh(2026, 1, 5)), refusal(sh(2026, 3, 5)), refusal(sh(2026, 6, 5))]
    d = ev(req(), refusals)
    only(d, R.PRODUCT_REFUSED)
    assert d.reasons[0].message == "product 'p' refused 3 times, limit 3: never offered again"
    assert d.retry_at is None
    assert ev(req(product="q"), refusals).allowed  # other products still may
    assert ev(req(), refusals[:2]).allowed
    # refusals are dispositions, not calls: no cap counts them
    assert ev(req(product="q"), refusals * 10).allowed


@pytest.mark.parametrize(
    ("outcome", "every_attempt", "answered_only"),
    [
        (Out.RESERVED, True, True),
        (Out.ANSWERED, True, True),
        (Out.MACHINE, True, True),
        (Out.NO_ANSWER, True, False),
        (Out.BUSY, True, False),
        (Out.CONGESTION, True, False),
        (Out.REJECTED, True, False),
        (Out.FAILED, False, False),
        (Out.CANCELLED, False, False),
    ],
)
def test_what_counts_as_a_call(outcome: Out, every_attempt: bool, answered_only: bool) -> None:
    answered = parse_policy(
        'version = "a"\n[counting]\ncalls = "answered_only"\n[caller_id]\npool = ["58001234"]\n'
    )
    history = [call(sh(2026, 11, 2), "q", outcome), call(sh(2026, 11, 3), "r", outcome)]
    for policy, counts in ((POLICY, every_attempt), (answered, answered_only)):
        d = ev(req(), history, policy=policy)
        assert d.codes == ((R.MONTHLY_CAP,) if counts else ()), (policy.counting, outcome)
    # the same rule decides the product interval
    for policy, counts in ((POLICY, every_attempt), (answered, answered_only)):
        d = ev(req(), [call(sh(2026, 11, 20), "p", outcome)], policy=policy)
        assert d.codes == ((R.PRODUCT_INTERVAL,) if counts else ()), (policy.counting, outcome)


# --- A.4 calling hours and segments ----------------------------------------------------


@pytest.mark.parametrize(
    ("at", "retry"),
    [
        (sh(2026, 11, 26, 9, 0, 0), None),  # window opens: allowed
        (sh(2026, 11, 26, 8, 59, 59), sh(2026, 11, 26, 9)),
        (sh(2026, 11, 26, 11, 59, 59), None),
        (sh(2026, 11, 26, 12, 0, 0), sh(2026, 11, 26, 14)),  # [start, end): 12:00 is closed
        (sh(2026, 11, 26, 13, 59), sh(2026, 11, 26, 14)),
        (sh(2026, 11, 26, 14, 0), None),
        (sh(2026, 11, 26, 19, 59, 59), None),
        (sh(2026, 11, 26, 20, 0), sh(2026, 11, 27, 9)),
        (sh(2026, 11, 26, 0, 0), sh(2026, 11, 26, 9)),
        (sh(2026, 11, 28, 10, 0), None),  # Saturday
        (sh(2026, 11, 28, 20, 0), sh(2026, 11, 30, 9)),  # Saturday evening -> Monday
        (sh(2026, 11, 29, 10, 0), sh(2026, 11, 30, 9)),  # Sunday
    ],
)
def test_calling_hours(at: datetime, retry: datetime | None) -> None:
    d = ev(req(at=at))
    if retry is None:
        assert d.allowed, explain(d)
    else:
        only(d, R.OUTSIDE_CALLING_HOURS)
        assert d.retry_at == retry
        assert d.reasons[0].rule == "art. 37"


def test_calling_hours_message_and_utc_request() -> None:
    d = ev(req(at=datetime(2026, 11, 29, 2, 0, tzinfo=UTC)))  # Sunday 10:00 local
    assert d.reasons[0].message == (
        "sun 10:00 (Asia/Shanghai) is outside the calling hours of segment 'default': "
        "mon,tue,wed,thu,fri,sat 09:00-12:00, 14:00-20:00"
    )
    assert d.retry_at == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    assert d.retry_at.tzinfo is UTC  # retry times come in the request's time zone


SEGMENTED = parse_policy(
    """
version = "seg"
[caller_id]
pool = ["58001234"]
[segments.owner]
days = ["mon", "tue", "wed", "thu", "fri"]
windows = ["10:00-11:30", "15:00-17:00"]
monthly_calls = 1
yearly_calls = 5
"""
)


def test_segment_windows() -> None:
    assert ev(req(at=sh(2026, 11, 26, 10), segment="owner"), policy=SEGMENTED).allowed
    d = ev(req(at=sh(2026, 11, 26, 9), segment="owner"), policy=SEGMENTED)
    only(d, R.OUTSIDE_CALLING_HOURS)
    assert d.retry_at == sh(2026, 11, 26, 10)
    d = ev(req(at=sh(2026, 11, 27, 17), segment="owner"), policy=SEGMENTED)  # Friday 17:00
    assert d.retry_at == sh(2026, 11, 30, 10)  # Monday: owners are not called on Saturday
    assert ev(req(at=sh(2026, 11, 28, 10)), policy=SEGMENTED).allowed  # default segment


def test_segment_caps() -> None:
    d = ev(req(segment="owner"), [call(sh(2026, 11, 2), "q")], policy=SEGMENTED)
    only(d, R.SEGMENT_MONTHLY_CAP)
    assert d.reasons[0].message == "1 calls in 2026-11, segment 'owner' limit 1"
    assert d.retry_at == sh(2026, 12, 1, 10)  # no quiet period for a segment cap
    assert ev(req(), [call(sh(2026, 11, 2), "q")], policy=SEGMENTED).allowed
    history = [call(sh(2026, m, 2), f"p{m}") for m in (1, 5, 9)]
    history += [call(sh(2026, 10, 2), "x"), call(sh(2026, 3, 2), "y")]
    d = ev(req(segment="owner"), history, policy=SEGMENTED)
    only(d, R.SEGMENT_YEARLY_CAP)
    assert d.reasons[0].message == "5 calls in 2026, segment 'owner' limit 5"
    assert d.retry_at == sh(2027, 1, 1, 10)


def test_unknown_segment() -> None:
    d = ev(req(segment="vip"))
    only(d, R.UNKNOWN_SEGMENT)
    assert "'vip' is not in the policy (known: default)" in d.reasons[0].message
    assert d.retry_at is None


# --- A.5 caller ID ----------------------------------------------------------------


def test_caller_id_must_be_in_pool() -> None:
    assert ev(req(caller_id="010-5800-1234")).allowed
    assert ev(req(caller_id="+86 400 123 4567")).allowed
    d = ev(req(caller_id="01099998888"))
    only(d, R.CALLER_ID_NOT_IN_POOL)
    assert d.reasons[0].message == "caller ID 010****8888 is not in caller_id.pool"
    assert d.reasons[0].rule == "art. 35" and d.retry_at is None
    only(ev(req(caller_id="garbage")), R.CALLER_ID_NOT_IN_POOL)


def test_empty_pool_says_so() -> None:
    d = ev(req(), policy=parse_policy('version = "e"\n'))
    only(d, R.CALLER_ID_NOT_IN_POOL)
    assert "the pool is empty: set caller_id.pool" in d.reasons[0].message


SERVICE_POLICY = parse_policy(
    'version = "test-1"\n[caller_id]\npool = ["010-58001234", "400-123-4567"]\n'
    'service_numbers = ["400-888-9999"]\n',
    "test.toml",
)


def test_callback_presents_the_number_the_customer_dialled() -> None:
    # 400-888-9999 is a declared service number, not in the pool: a callback presents it
    cb = req(is_callback=True, dialled_number="400-888-9999", caller_id="4008889999")
    assert ev(cb, policy=SERVICE_POLICY).allowed
    # ... and only because the company declared it as its own (art. 35)
    d = ev(cb)
    only(d, R.CALLER_ID_NOT_IN_POOL)
    assert d.reasons[0].message == (
        "callback presents 400****999, the number the customer dialled, but it is not one "
        "of the company's numbers (caller_id.pool or caller_id.service_numbers)"
    )
    d = ev(replace(cb, caller_id=CID))  # a pool number is not enough for a callback
    only(d, R.CALLER_ID_MUST_BE_DIALLED_NUMBER)
    assert d.reasons[0].message == (
        "callback presents 58****34, but the customer dialled 400****999"
    )
    assert d.reasons[0].rule == "art. 35"
    only(ev(replace(cb, dialled_number=None)), R.CALLER_ID_MUST_BE_DIALLED_NUMBER)
    only(ev(replace(cb, caller_id="junk")), R.CALLER_ID_MUST_BE_DIALLED_NUMBER)
    # the same number written differently is the same number
    assert ev(replace(cb, dialled_number="+86 010 5800 1234", caller_id="58001234")).allowed


def test_callback_never_presents_a_private_number() -> None:
    # a lead whose "dialled number" is a private mobile: presenting it is refused
    cb = req(is_callback=True, dialled_number="139 0013 9000", caller_id="13900139000")
    only(ev(cb, policy=SERVICE_POLICY), R.CALLER_ID_NOT_IN_POOL)


# --- A.6 recall, A.7 script ---------------------------------------------------------


@pytest.mark.parametrize(
    ("assigned", "recalled"),
    [
        (sh(2026, 1, 26, 10), sh(2026, 11, 26, 10)),
        (sh(2025, 12, 31, 9), sh(2026, 10, 31, 9)),
        (sh(2026, 4, 30, 10), sh(2027, 2, 28, 10)),  # day clamped to February
    ],
)
def test_recall_after_ten_months(assigned: datetime, recalled: datetime) -> None:
    d = ev(req(at=recalled, assigned_at=assigned))
    assert R.DATA_RECALLED in d.codes and d.retry_at is None
    assert d.reasons[d.codes.index(R.DATA_RECALLED)].message == (
        f"lead assigned {assigned:%Y-%m-%d} was recalled on {recalled:%Y-%m-%d} (10 months)"
    )
    before = ev(req(at=recalled - timedelta(seconds=1), assigned_at=assigned))
    assert R.DATA_RECALLED not in before.codes


def test_retry_after_recall_is_never() -> None:
    last = sh(2026, 11, 10)
    d = ev(req(assigned_at=sh(2026, 1, 30)), [call(last)])  # recalled 2026-11-30
    only(d, R.PRODUCT_INTERVAL)
    assert d.reasons[0].retry_at == last + timedelta(days=30)
    assert d.retry_at is None  # by then the lead is recalled
    d = ev(req(assigned_at=sh(2026, 6, 1)), [call(last)])
    assert d.retry_at == last + timedelta(days=30)


def test_campaign_without_script() -> None:
    d = ev(req(campaign_has_script=False))
    only(d, R.NO_SCRIPT)
    assert d.reasons[0].message == "campaign 'camp' has no script"
    assert d.reasons[0].rule == "art. 22" and d.retry_at is None


# --- several at once, retry ------------------------------------------------------------


def test_every_failing_reason_is_reported() -> None:
    history = [call(sh(2026, 11, 2)), call(sh(2026, 11, 3), "q")]
    history += [refusal(sh(2026, 1, 1))] * 3
    d = ev(
        req(
            at=sh(2026, 11, 29, 21),
            caller_id="01099998888",
            assigned_at=sh(2025, 1, 1),
            campaign_has_script=False,
        ),
        history,
        ListStatus(blacklisted=True, special=True),
    )
    assert d.codes == (
        R.BLACKLISTED,
        R.SPECIAL_NUMBER,
        R.MONTHLY_CAP,
        R.PRODUCT_INTERVAL,
        R.PRODUCT_REFUSED,
        R.OUTSIDE_CALLING_HOURS,
        R.CALLER_ID_NOT_IN_POOL,
        R.DATA_RECALLED,
        R.NO_SCRIPT,
    )
    assert d.retry_at is None
    text = "\n".join(explain(d))
    assert text.startswith("refused (policy test-1):")
    assert "no retry" in text and CUSTOMER not in text


def test_retry_is_the_latest_reason_in_a_window() -> None:
    history = [call(sh(2026, 11, 2)), call(sh(2026, 11, 25, 15))]
    d = ev(req(at=sh(2026, 11, 29, 21)), history)  # Sunday night
    assert d.codes == (R.MONTHLY_CAP, R.PRODUCT_INTERVAL, R.OUTSIDE_CALLING_HOURS)
    retries = [r.retry_at for r in d.reasons]
    assert retries == [sh(2027, 3, 1, 9), sh(2026, 12, 25, 15), sh(2026, 11, 30, 9)]
    assert d.retry_at == sh(2027, 3, 1, 9)
    assert ev(req(at=d.retry_at), history).allowed
    assert not ev(req(at=d.retry_at - timedelta(seconds=1)), history).allowed
    assert any(line.startswith("earliest retry: 2027-03-01T09:00") for line in explain(d))


def test_code_sets() -> None:
    assert REQUEST_CODES <= PERMANENT_CODES
    assert set(RULES) == set(ReasonCode)
    for code in RULES:
        assert re.fullmatch(r"(part \d §[\d.]+|art\. [\d.]+|numbering plan)(; .*)?", RULES[code])


def test_next_window_open() -> None:
    seg = POLICY.segments["default"]
    assert next_window_open(POLICY, seg, sh(2026, 11, 26, 10)) == sh(2026, 11, 26, 10)
    assert next_window_open(POLICY, seg, sh(2026, 11, 28, 23)) == sh(2026, 11, 30, 9)


def test_history_horizon() -> None:
    assert history_horizon(POLICY, sh(2026, 11, 26)) == sh(2026, 1, 1, 0)  # year start
    assert history_horizon(POLICY, sh(2026, 2, 10)) == sh(2025, 11, 1, 0)  # quiet months back
    assert history_horizon(POLICY, sh(2026, 1, 10)) == sh(2025, 10, 1, 0)
    short = parse_policy('version = "h"\n[caps]\nquiet_months = 0\n')
    assert history_horizon(short, sh(2026, 1, 10)) == sh(2025, 12, 11)  # 30 days back
    # events before the horizon do not change a decision
    horizon = history_horizon(POLICY, NOW)
    old = [call(horizon - timedelta(seconds=1), "p") for _ in range(40)]
    assert ev(req(), old).allowed


def test_plain_string_kinds_and_outcomes_count() -> None:
    """A store that hands back plain strings must not make calls disappear from the caps."""
    history = [
        ContactEvent(sh(2026, 11, 2), "attempt", "c", "q", "no_answer"),  # type: ignore[arg-type]
        ContactEvent(sh(2026, 11, 3), "attempt", "c", "r", "reserved"),  # type: ignore[arg-type]
    ]
    only(ev(req(), history), R.MONTHLY_CAP)
    refusals = [ContactEvent(sh(2026, 1, 1), "refusal", "c", "p")] * 3  # type: ignore[arg-type]
    only(ev(req(), refusals), R.PRODUCT_REFUSED)


def test_naive_event_time_is_a_broken_invariant() -> None:
    with pytest.raises(TypeError):
        evaluate(POLICY, req(), [call(datetime(2026, 11, 2, 10))], ListStatus())


def test_history_order_does_not_matter() -> None:
    history = [call(sh(2026, 11, 20), "p"), call(sh(2026, 8, 3), "x"), call(sh(2026, 11, 1), "y")]
    a = ev(req(at=sh(2026, 11, 26)), history)
    b = ev(req(at=sh(2026, 11, 26)), list(reversed(history)))
    assert a == b and a.codes == (R.MONTHLY_CAP, R.PRODUCT_INTERVAL)
