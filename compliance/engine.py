"""The pure compliance engine: may this customer be called now, and if not, why and when.

``evaluate(policy, request, history, lists)`` checks every rule of the pre-dial
gate (rules.md A.1-A.7) and returns a :class:`~compliance.model.Decision`
listing *every* failing rule, each with its code, the policy article it comes
from and the figures, with phone numbers masked. No I/O, no clock: the time is
``request.at``, the customer's contact history and list status are passed in
(the ledger supplies them atomically with the reservation).

Interpretations of the source policy (the Chinese text is in shared/seeds):

* **What counts as a call** (policy ``counting.calls``): ``every_attempt``
  counts every ``ATTEMPT`` whose outcome is not ``FAILED`` or ``CANCELLED``
  (those never reached the network); ``answered_only`` counts ``ANSWERED`` and
  ``MACHINE`` (the line was picked up: the customer sees the call, and "answered"
  cannot be told from a machine in every case) and, conservatively, ``RESERVED``
  (an attempt still in progress may yet be answered). ``REFUSAL`` entries are
  dispositions, never calls.
* **Calendar months and years** are those of the policy time zone
  (Asia/Shanghai): a call at 2026-11-30 17:00 UTC is in December.
* **Monthly cap and quiet period** (part 1 §1.3, "每一个月只能对同一客户呼叫2次,
  三个月内不得再次呼叫该客户"): at most ``caps.monthly_calls`` calls in a calendar
  month M; a month that reached that number is *capped*, and then no call is
  placed in the ``caps.quiet_months`` following calendar months M+1..M+3. So
  after two calls in November, the next call can be on the first day of March.
  Per-segment stricter monthly caps do not start a quiet period.
* **Same product** (art. 37.2, "间隔时间不低于1个月"): two counted attempts for
  the same product must be at least ``caps.product_interval_days`` days apart
  (any campaign). Refusals (art. 37.3): ``caps.product_refusals`` ``REFUSAL``
  entries for a product end that product for the customer for good.
* **Calling windows** are half-open ``[start, end)`` in local time: with
  09:00-12:00 a call at 09:00:00 is allowed, one at 12:00:00 is not.
* **Recall** (part 1 §1.4): refused from ``assigned_at`` + ``recall.months``
  calendar months (local time, day clamped to the month's length) on.
* History is taken as given: events dated after ``request.at`` (another
  dialer's clock) count in their month, year and product interval, but the
  quiet period only looks back.

``Decision.retry_at`` is the earliest moment at which *the same request*
(same caller ID, segment, product) could be allowed, given the same history:
the latest of the failing reasons' ``retry_at``, moved to the next opening of
the segment's calling window. It is None when the call is allowed, and when
it never will be: a reason without a retry time (blacklisted, special number,
invalid or non-customer number, product refused, data recalled, caller ID
wrong, no script, unknown segment: see :data:`PERMANENT_CODES`), or when the
lead is recalled before that moment. Of those, :data:`REQUEST_CODES` are
faults of the request, not of the number: fix the request and ask again.
Each time-based reason carries its own ``retry_at`` (also window-adjusted).

Speed: per policy object the engine keeps month boundaries, calling-window
openings and the Reasons that carry only calendar figures (immutable values,
shared between customers refused for the same figures), all in bounded
in-memory dictionaries; results never depend on what is cached.
"""

from __future__ import annotations

import bisect
import calendar
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from functools import lru_cache

from compliance.calendar import WorkCalendar
from compliance.model import (
    AttemptOutcome,
    CallRequest,
    ContactEvent,
    ContactKind,
    Decision,
    ListStatus,
    Reason,
    ReasonCode,
)
from compliance.numbers import InvalidNumber, PhoneNumber, mask
from compliance.policy import DAY_NAMES, CallCounting, Policy, Segment

__all__ = [
    "PERMANENT_CODES",
    "REQUEST_CODES",
    "RULES",
    "counted_outcomes",
    "evaluate",
    "explain",
    "history_horizon",
    "next_window_open",
]

R = ReasonCode

RULES: dict[ReasonCode, str] = {
    R.INVALID_NUMBER: "numbering plan",
    R.BLACKLISTED: "part 1 §1.3; art. 36",
    R.SPECIAL_NUMBER: "art. 36.2",
    R.MONTHLY_CAP: "part 1 §1.3",
    R.QUIET_PERIOD: "part 1 §1.3",
    R.YEARLY_CAP: "art. 37.1",
    R.PRODUCT_INTERVAL: "art. 37.2",
    R.PRODUCT_REFUSED: "art. 37.3",
    R.SEGMENT_MONTHLY_CAP: "art. 37",
    R.SEGMENT_YEARLY_CAP: "art. 37",
    R.OUTSIDE_CALLING_HOURS: "art. 37",
    R.UNKNOWN_SEGMENT: "art. 37",
    R.CALLER_ID_MUST_BE_DIALLED_NUMBER: "art. 35",
    R.CALLER_ID_NOT_IN_POOL: "art. 35",
    R.DATA_RECALLED: "part 1 §1.4",
    R.NO_SCRIPT: "art. 22",
    R.UNKNOWN_CAMPAIGN: "art. 22",
}
"""The policy article each reason code enforces (``Reason.rule``)."""

PERMANENT_CODES: frozenset[ReasonCode] = frozenset(
    {
        R.INVALID_NUMBER,
        R.BLACKLISTED,
        R.SPECIAL_NUMBER,
        R.PRODUCT_REFUSED,
        R.DATA_RECALLED,
        R.NO_SCRIPT,
        R.UNKNOWN_CAMPAIGN,
        R.UNKNOWN_SEGMENT,
        R.CALLER_ID_MUST_BE_DIALLED_NUMBER,
        R.CALLER_ID_NOT_IN_POOL,
    }
)
"""Codes whose reason has no retry time: waiting never makes the same request pass."""

REQUEST_CODES: frozenset[ReasonCode] = frozenset(
    {
        R.NO_SCRIPT,
        R.UNKNOWN_CAMPAIGN,
        R.UNKNOWN_SEGMENT,
        R.CALLER_ID_MUST_BE_DIALLED_NUMBER,
        R.CALLER_ID_NOT_IN_POOL,
    }
)
"""Permanent codes that are faults of the request (campaign, caller ID), not of the number."""

_ATTEMPT = ContactKind.ATTEMPT
_REFUSAL = ContactKind.REFUSAL
_EVERY = frozenset(AttemptOutcome) - {AttemptOutcome.FAILED, AttemptOutcome.CANCELLED}
_ANSWERED = frozenset({AttemptOutcome.ANSWERED, AttemptOutcome.MACHINE, AttemptOutcome.RESERVED})


def counted_outcomes(counting: CallCounting) -> frozenset[AttemptOutcome]:
    """Outcomes of ATTEMPT entries that count as calls under a counting rule."""
    return _EVERY if counting is CallCounting.EVERY_ATTEMPT else _ANSWERED


# --- per-policy precomputation -------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Frame:
    """Boundaries around one local calendar month, as UTC datetimes.

    UTC because ledgers hand out UTC times, and comparing two datetimes with
    the same tzinfo object is a plain field comparison in CPython (no
    ``utcoffset`` calls): the loop over the history stays cheap.
    """

    month: int  # year * 12 + month - 1 of the request
    bounds: tuple[datetime, ...]  # starts of months M-Q .. M+1  (Q+2 values)
    year_start: datetime
    year_end: datetime


class _Compiled:
    """What evaluate needs from a Policy, prepared once per policy object."""

    __slots__ = (
        "allowed",
        "counted",
        "frames",
        "memo",
        "opens",
        "policy",
        "quiet",
        "recall",
        "tz",
    )

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.tz = policy.tz
        self.counted = counted_outcomes(policy.counting)
        self.quiet = policy.caps.quiet_months
        self.allowed = Decision(allowed=True, policy_version=policy.version)
        self.frames: dict[int, _Frame] = {}
        self.recall: dict[datetime, datetime] = {}
        self.opens: dict[tuple[str, datetime], datetime] = {}
        # Reasons are immutable and most carry only calendar figures ("2 calls in
        # 2026-11"): customers refused for the same figures share one Reason object.
        self.memo: dict[tuple[object, ...], Reason] = {}

    def frame(self, month: int) -> _Frame:
        f = self.frames.get(month)
        if f is None:
            if len(self.frames) > 256:
                self.frames.clear()
            tz = self.tz
            bounds = tuple(_month_start(tz, m) for m in range(month - self.quiet, month + 2))
            year = month // 12
            ys, ye = _month_start(tz, year * 12), _month_start(tz, year * 12 + 12)
            f = _Frame(month, bounds, ys, ye)
            self.frames[month] = f
        return f

    def window_open(self, segment: Segment, at: datetime) -> datetime:
        """next_window_open, remembered: cap retry times are a few month starts."""
        key = (segment.name, at)
        r = self.opens.get(key)
        if r is None:
            if len(self.opens) > 4096:
                self.opens.clear()
            r = next_window_open(self.policy, segment, at)
            self.opens[key] = r
        return r

    def reason(
        self,
        code: ReasonCode,
        figures: tuple[object, ...],
        retry: datetime,
        segment: Segment | None,
        zone: tzinfo | None,
        message: Callable[[], str],
    ) -> Reason:
        """The Reason for ``code`` with these figures; retry moved into a calling window."""
        key = (code, figures, segment.name if segment is not None else None, zone)
        r = self.memo.get(key)
        if r is None:
            if len(self.memo) > 8192:
                self.memo.clear()
            when = self.window_open(segment, retry) if segment is not None else retry
            r = Reason(code, RULES[code], message(), when.astimezone(zone))
            self.memo[key] = r
        return r

    def recall_at(self, assigned_at: datetime, months: int) -> datetime:
        r = self.recall.get(assigned_at)
        if r is None:
            if len(self.recall) > 65_536:
                self.recall.clear()
            r = _add_months(assigned_at.astimezone(self.tz), months)
            self.recall[assigned_at] = r
        return r


_compiled: dict[int, _Compiled] = {}


def _compile(policy: Policy) -> _Compiled:
    c = _compiled.get(id(policy))
    if c is None or c.policy is not policy:
        if len(_compiled) > 64:
            _compiled.clear()
        c = _Compiled(policy)
        _compiled[id(policy)] = c
    return c


def _month_start(tz: tzinfo, month: int) -> datetime:
    return datetime(month // 12, month % 12 + 1, 1, tzinfo=tz).astimezone(UTC)


def _month_dt(tz: tzinfo, month: int) -> datetime:
    return datetime(month // 12, month % 12 + 1, 1, tzinfo=tz)


def _month_name(month: int) -> str:
    return f"{month // 12:04d}-{month % 12 + 1:02d}"


def _add_months(local: datetime, months: int) -> datetime:
    y, m0 = divmod(local.month - 1 + months, 12)
    y += local.year
    day = min(local.day, calendar.monthrange(y, m0 + 1)[1])
    return local.replace(year=y, month=m0 + 1, day=day)


# --- the engine ------------------------------------------------------------------


@dataclass(slots=True)
class _Counts:
    months: list[int]  # counted calls per month M-Q .. M (last = this month)
    year: int
    last_product: datetime | None  # latest counted same-product attempt within the interval
    refusals: int


def _count(
    c: _Compiled, frame: _Frame, now: datetime, product: str, history: Sequence[ContactEvent]
) -> _Counts:
    bounds = frame.bounds
    lo, hi = bounds[0], bounds[-1]
    ys, ye = frame.year_start, frame.year_end
    interval = timedelta(days=c.policy.caps.product_interval_days)
    p_lo, p_hi = now - interval, now + interval
    counted = c.counted
    months = [0] * (len(bounds) - 1)
    year = refusals = 0
    last_product: datetime | None = None
    bisect_right = bisect.bisect_right
    attempt, refusal = _ATTEMPT, _REFUSAL
    for e in history:
        kind = e.kind  # == rather than `is`: a plain "attempt" string must count too
        if kind == attempt:
            if e.outcome not in counted:
                continue
            at = e.at
            if lo <= at < hi:
                months[bisect_right(bounds, at) - 1] += 1
            if ys <= at < ye:
                year += 1
            if p_lo < at < p_hi and e.product == product:
                if last_product is None or at > last_product:
                    last_product = at
        elif kind == refusal and e.product == product:
            refusals += 1
    return _Counts(months, year, last_product, refusals)


def evaluate(
    policy: Policy,
    request: CallRequest,
    history: Sequence[ContactEvent],
    lists: ListStatus,
) -> Decision:
    """Check every pre-dial rule; return the decision with every failing reason.

    ``history`` is the customer's contact history (at least everything from
    :func:`history_horizon` on, and every REFUSAL ever), in any order.
    ``request.at`` and the event times must be timezone-aware: a naive
    ``request.at`` raises ValueError, a naive event time TypeError (broken
    invariants, not business outcomes).
    """
    c = _compile(policy)
    at = request.at
    if at.tzinfo is None:
        raise ValueError("CallRequest.at must be timezone-aware")
    local = at.astimezone(c.tz)
    reasons: list[Reason] = []
    number = _check_number(policy, request, lists, reasons)
    segment = policy.segments.get(request.segment)
    _check_caps(c, request, local, history, segment, reasons)
    _check_hours(c, request, local, segment, reasons)
    _check_caller_id(policy, request, number, reasons)
    recall = _check_recall(c, request, reasons)
    if not request.campaign_has_script:
        reasons.append(
            Reason(R.NO_SCRIPT, RULES[R.NO_SCRIPT], f"campaign {request.campaign!r} has no script")
        )
    if not reasons:
        return c.allowed
    return Decision(
        allowed=False,
        reasons=tuple(reasons),
        retry_at=_decision_retry(c, reasons, segment, recall),
        policy_version=policy.version,
    )


def _check_number(
    policy: Policy, request: CallRequest, lists: ListStatus, reasons: list[Reason]
) -> PhoneNumber | None:
    number: PhoneNumber | None = None
    try:
        number = policy.numbers.parse(request.number)
    except InvalidNumber as exc:
        reasons.append(Reason(R.INVALID_NUMBER, RULES[R.INVALID_NUMBER], str(exc)))
    if number is not None and number.kind not in policy.customer_kinds:
        reasons.append(
            Reason(
                R.INVALID_NUMBER,
                "numbers.customer_kinds",
                f"{mask(request.number)} is a {number.kind.value} number, "
                "not one a campaign may dial",
            )
        )
    if lists.blacklisted:
        why = f": {lists.blacklist_reason}" if lists.blacklist_reason else ""
        reasons.append(
            Reason(
                R.BLACKLISTED,
                RULES[R.BLACKLISTED],
                f"{mask(request.number)} is on the do-not-call list{why}",
            )
        )
    category = policy.special_numbers.get(number.key) if number is not None else None
    if lists.special or category is not None:
        why = lists.special_reason or category or ""
        reasons.append(
            Reason(
                R.SPECIAL_NUMBER,
                RULES[R.SPECIAL_NUMBER],
                f"{mask(request.number)} is a special number that is never dialled"
                + (f": {why}" if why else ""),
            )
        )
    return number


def _check_caps(
    c: _Compiled,
    request: CallRequest,
    local: datetime,
    history: Sequence[ContactEvent],
    segment: Segment | None,
    reasons: list[Reason],
) -> None:
    """A.3 and the segment caps of A.4. Retry times are moved into a calling window."""
    month = local.year * 12 + local.month - 1
    frame = c.frame(month)
    caps = c.policy.caps
    counts = _count(c, frame, request.at.astimezone(UTC), request.product, history)
    this_month = counts.months[-1]
    tz, zone = c.tz, request.at.tzinfo
    if this_month >= caps.monthly_calls:
        reasons.append(
            c.reason(
                R.MONTHLY_CAP,
                (this_month, month),
                _month_dt(tz, month + 1 + caps.quiet_months),
                segment,
                zone,
                lambda: (
                    f"{this_month} calls in {_month_name(month)}, limit {caps.monthly_calls}"
                    + (f"; then {caps.quiet_months} quiet months" if caps.quiet_months else "")
                ),
            )
        )
    back = next(
        (b for b in range(1, c.quiet + 1) if counts.months[-1 - b] >= caps.monthly_calls), 0
    )
    if back:  # the latest capped month decides
        n, capped = counts.months[-1 - back], month - back
        until = capped + 1 + caps.quiet_months
        reasons.append(
            c.reason(
                R.QUIET_PERIOD,
                (n, capped),
                _month_dt(tz, until),
                segment,
                zone,
                lambda: (
                    f"{n} calls in {_month_name(capped)} reached the monthly limit "
                    f"{caps.monthly_calls}: no call in the {caps.quiet_months} months after, "
                    f"until {_month_name(until)}"
                ),
            )
        )
    year = month // 12
    if counts.year >= caps.yearly_calls:
        reasons.append(
            c.reason(
                R.YEARLY_CAP,
                (counts.year, year),
                _month_dt(tz, year * 12 + 12),
                segment,
                zone,
                lambda: f"{counts.year} calls in {year}, limit {caps.yearly_calls}",
            )
        )
    _check_product(c, request, counts, segment, reasons)
    if segment is not None:
        _check_segment_caps(c, segment, counts, month, zone, reasons)


def _check_product(
    c: _Compiled,
    request: CallRequest,
    counts: _Counts,
    segment: Segment | None,
    reasons: list[Reason],
) -> None:
    caps = c.policy.caps
    if counts.last_product is not None:
        last = counts.last_product.astimezone(c.tz)
        retry = last + timedelta(days=caps.product_interval_days)
        if segment is not None:
            retry = c.window_open(segment, retry)
        reasons.append(
            Reason(
                R.PRODUCT_INTERVAL,
                RULES[R.PRODUCT_INTERVAL],
                f"product {request.product!r} was offered on {last:%Y-%m-%d %H:%M}, "
                f"less than {caps.product_interval_days} days ago",
                retry.astimezone(request.at.tzinfo),
            )
        )
    if counts.refusals >= caps.product_refusals:
        reasons.append(
            Reason(
                R.PRODUCT_REFUSED,
                RULES[R.PRODUCT_REFUSED],
                f"product {request.product!r} refused {counts.refusals} times, "
                f"limit {caps.product_refusals}: never offered again",
            )
        )


def _check_segment_caps(
    c: _Compiled,
    segment: Segment,
    counts: _Counts,
    month: int,
    zone: tzinfo | None,
    reasons: list[Reason],
) -> None:
    this_month = counts.months[-1]
    if segment.monthly_calls is not None and this_month >= segment.monthly_calls:
        limit = segment.monthly_calls
        reasons.append(
            c.reason(
                R.SEGMENT_MONTHLY_CAP,
                (this_month, month),
                _month_dt(c.tz, month + 1),
                segment,
                zone,
                lambda: (
                    f"{this_month} calls in {_month_name(month)}, "
                    f"segment {segment.name!r} limit {limit}"
                ),
            )
        )
    if segment.yearly_calls is not None and counts.year >= segment.yearly_calls:
        year, limit = month // 12, segment.yearly_calls
        reasons.append(
            c.reason(
                R.SEGMENT_YEARLY_CAP,
                (counts.year, year),
                _month_dt(c.tz, year * 12 + 12),
                segment,
                zone,
                lambda: f"{counts.year} calls in {year}, segment {segment.name!r} limit {limit}",
            )
        )


def _in_window(segment: Segment, local: datetime, calendar: WorkCalendar) -> bool:
    day = local.date()
    if calendar.day_off(day) is not None:
        return False
    if calendar.calling_weekday(day) not in segment.days:
        return False
    minute = local.hour * 60 + local.minute
    for w in segment.windows:
        if w.start <= minute < w.end:
            return True
    return False


@lru_cache(maxsize=256)
def _hours_text(segment: Segment) -> str:
    days = ",".join(DAY_NAMES[d] for d in sorted(segment.days))
    return f"{days} " + ", ".join(str(w) for w in segment.windows)


def _check_hours(
    c: _Compiled,
    request: CallRequest,
    local: datetime,
    segment: Segment | None,
    reasons: list[Reason],
) -> None:
    if segment is None:
        known = ", ".join(sorted(c.policy.segments))
        reasons.append(
            Reason(
                R.UNKNOWN_SEGMENT,
                RULES[R.UNKNOWN_SEGMENT],
                f"segment {request.segment!r} is not in the policy (known: {known})",
            )
        )
        return
    if not _in_window(segment, local, c.policy.calendar):
        # same minute, same segment: same message and same next opening
        reasons.append(
            c.reason(
                R.OUTSIDE_CALLING_HOURS,
                (local.year, local.month, local.day, local.hour, local.minute),
                local.replace(second=0, microsecond=0),
                segment,
                request.at.tzinfo,
                lambda: _outside_hours_text(c.policy, segment, local),
            )
        )


def _outside_hours_text(policy: Policy, segment: Segment, local: datetime) -> str:
    holiday = policy.calendar.day_off(local.date())
    if holiday is not None:
        return (
            f"{local:%Y-%m-%d} is a public holiday ({holiday}): no calls; "
            f"segment {segment.name!r} calls {_hours_text(segment)} on working days"
        )
    return (
        f"{DAY_NAMES[local.weekday()]} {local:%H:%M} ({policy.timezone}) is "
        f"outside the calling hours of segment {segment.name!r}: {_hours_text(segment)}"
    )


def _check_caller_id(
    policy: Policy, request: CallRequest, number: PhoneNumber | None, reasons: list[Reason]
) -> None:
    try:
        presented: str | None = policy.numbers.parse(request.caller_id).key
    except InvalidNumber:
        presented = None
    if request.is_callback:
        if request.dialled_number is None:
            reasons.append(
                Reason(
                    R.CALLER_ID_MUST_BE_DIALLED_NUMBER,
                    RULES[R.CALLER_ID_MUST_BE_DIALLED_NUMBER],
                    "callback without the number the customer dialled: it must be presented",
                )
            )
            return
        try:
            dialled: str | None = policy.numbers.parse(request.dialled_number).key
        except InvalidNumber:
            dialled = None
        if presented is None or dialled is None or presented != dialled:
            reasons.append(
                Reason(
                    R.CALLER_ID_MUST_BE_DIALLED_NUMBER,
                    RULES[R.CALLER_ID_MUST_BE_DIALLED_NUMBER],
                    f"callback presents {_shown(request.caller_id)}, but the customer dialled "
                    f"{mask(request.dialled_number)}",
                )
            )
        elif presented not in policy.own_numbers:
            # The "dialled number" comes from the lead list: it must still be one of the
            # company's own numbers, never a private line someone typed in.
            reasons.append(
                Reason(
                    R.CALLER_ID_NOT_IN_POOL,
                    RULES[R.CALLER_ID_NOT_IN_POOL],
                    f"callback presents {_shown(request.caller_id)}, the number the customer "
                    "dialled, but it is not one of the company's numbers (caller_id.pool or "
                    "caller_id.service_numbers)",
                )
            )
        return
    if presented is None or presented not in policy.caller_id_pool:
        why = "is not a valid number" if presented is None else "is not in caller_id.pool"
        if not policy.caller_id_pool:
            why += " (the pool is empty: set caller_id.pool in the policy)"
        reasons.append(
            Reason(
                R.CALLER_ID_NOT_IN_POOL,
                RULES[R.CALLER_ID_NOT_IN_POOL],
                f"caller ID {_shown(request.caller_id)} {why}",
            )
        )


def _shown(caller_id: str) -> str:
    return mask(caller_id) or repr(caller_id)


def _check_recall(c: _Compiled, request: CallRequest, reasons: list[Reason]) -> datetime | None:
    if request.assigned_at is None:
        return None
    months = c.policy.recall_months
    recall = c.recall_at(request.assigned_at, months)
    if request.at >= recall:
        assigned = request.assigned_at.astimezone(c.tz)
        reasons.append(
            Reason(
                R.DATA_RECALLED,
                RULES[R.DATA_RECALLED],
                f"lead assigned {assigned:%Y-%m-%d} was recalled on {recall:%Y-%m-%d} "
                f"({months} months)",
            )
        )
    return recall


def _decision_retry(
    c: _Compiled, reasons: list[Reason], segment: Segment | None, recall: datetime | None
) -> datetime | None:
    latest: datetime | None = None
    for r in reasons:
        if r.retry_at is None:
            return None
        if latest is None or r.retry_at > latest:
            latest = r.retry_at
    if latest is None or segment is None:
        return None  # no reason has a time (unreachable) or the segment is unknown
    if recall is not None and latest >= recall:
        return None
    return latest


def next_window_open(policy: Policy, segment: Segment, at: datetime) -> datetime:
    """``at`` itself when it is inside a calling window of ``segment``, else the next opening."""
    tz = policy.tz
    local = at.astimezone(tz)
    calendar = policy.calendar
    if _in_window(segment, local, calendar):
        return at
    minute = local.hour * 60 + local.minute
    day = local.date()
    # Long enough for the longest run of days off (Spring Festival with its weekends).
    for offset in range(40):
        d = day + timedelta(days=offset)
        if calendar.day_off(d) is not None or calendar.calling_weekday(d) not in segment.days:
            continue
        for w in segment.windows:
            if offset == 0 and w.start <= minute:
                continue
            opening = datetime.combine(d, time(w.start // 60, w.start % 60), tz)
            return opening.astimezone(at.tzinfo)
    raise AssertionError("a segment has at least one day and one window")  # policy validates


# --- helpers for callers -------------------------------------------------------


def history_horizon(policy: Policy, at: datetime) -> datetime:
    """Earliest time of an ATTEMPT that can matter to ``evaluate`` at ``at``.

    Older attempts can be left out of ``history``; REFUSAL entries matter forever.
    """
    tz = policy.tz
    local = at.astimezone(tz)
    month = local.year * 12 + local.month - 1
    first = min(month - policy.caps.quiet_months, (month // 12) * 12)
    start = _month_dt(tz, first)
    by_product = at - timedelta(days=policy.caps.product_interval_days)
    return min(start, by_product).astimezone(UTC)


def explain(decision: Decision) -> list[str]:
    """One line per fact of the decision, for people (numbers are already masked)."""
    if decision.allowed:
        return [f"allowed (policy {decision.policy_version})"]
    lines = [f"refused (policy {decision.policy_version}):"]
    for r in decision.reasons:
        when = f" [retry from {r.retry_at.isoformat()}]" if r.retry_at is not None else ""
        lines.append(f"  {r.code.value} ({r.rule}): {r.message}{when}")
    if decision.retry_at is not None:
        lines.append(f"earliest retry: {decision.retry_at.isoformat()}")
    else:
        lines.append("no retry: the same request will not be allowed")
    return lines
