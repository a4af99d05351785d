"""Desk-phone rules (rules.md section E): who may dial what, the 17909 prefix, quotas, rating.

PURE: no I/O, no clock, no asyncio/sqlalchemy. Callers pass the extension's
class, the parsed number, the extension's grants, what it spent this month,
its quota and the tariff; ``decide`` returns a ``DeskDecision`` value.
Money is integer fen (0.01 yuan) everywhere, so sums are exact.

Decision order (first match wins):

1. unparseable number -> refused ``invalid_number``;
2. emergency (110, 119, 120, 122) -> allowed, free, whatever the class and quota;
3. internal extension -> allowed, free;
4. premium-rate / information prefixes (160, 168) -> refused for every class;
5. international -> refused (no class may dial abroad);
6. the class table: ``executive`` internal/local/long distance/mobile;
   ``fax`` internal/local/long distance; ``local`` internal/local/mobile (every
   mobile, or home-area mobiles only, per policy) and long distance only under
   an active grant; 400/800 service and carrier short numbers for every class;
7. the monthly quota: a chargeable call is refused (or allowed with a warning,
   per policy) once the month's spend has reached the quota. Calls are rated
   when they end, so the call that crosses the quota is itself allowed.

Domestic long distance is dialled as ``17909`` + trunk 0 + area code + number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum

from compliance.numbers import NumberKind, PhoneNumber, mobile_area


class ExtensionClass(StrEnum):
    """A desk extension's permission class (rules.md E)."""

    EXECUTIVE = "executive"  # general manager's office, department heads
    FAX = "fax"  # office fax lines
    LOCAL = "local"  # everyone else (the default)


class MobilePolicy(StrEnum):
    """Which mobiles a ``local`` extension may call."""

    ALL = "all"
    HOME_AREA = "home_area"  # only ranges that belong to the home area


class QuotaPolicy(StrEnum):
    """What reaching the monthly quota does to further chargeable calls."""

    BLOCK = "block"
    WARN = "warn"


class DeskReason(StrEnum):
    """``DESK_REASON``: why a desk call was allowed or refused. Stable codes."""

    OK = "ok"
    EMERGENCY = "emergency"
    INTERNAL = "internal"
    QUOTA_WARNING = "quota_warning"  # allowed, over quota, policy says warn
    INVALID_NUMBER = "invalid_number"
    PREMIUM_RATE = "premium_rate"
    INTERNATIONAL = "international_not_permitted"
    LONG_DISTANCE = "long_distance_not_permitted"
    MOBILE = "mobile_not_permitted"
    MOBILE_OUTSIDE_HOME_AREA = "mobile_outside_home_area"
    QUOTA_EXHAUSTED = "quota_exhausted"
    CHECK_FAILED = "check_failed"  # set by the server's failure policy, never by decide()


@dataclass(frozen=True, slots=True)
class Grant:
    """A temporary long-distance permission for one extension (approved request)."""

    id: int
    extension: str
    requester: str
    approvers: tuple[str, ...]
    starts_at: datetime
    expires_at: datetime
    reason: str = ""
    revoked_at: datetime | None = None
    revoked_by: str = ""

    def active_at(self, at: datetime) -> bool:
        if self.revoked_at is not None and self.revoked_at <= at:
            return False
        return self.starts_at <= at < self.expires_at


@dataclass(frozen=True, slots=True)
class Quota:
    """Monthly quotas in fen: which one applies depends on long distance being enabled."""

    long_distance_fen: int = 15000  # 150 yuan (part 3 §7)
    local_fen: int = 8000  # 80 yuan

    def for_extension(self, long_distance_enabled: bool) -> int:
        return self.long_distance_fen if long_distance_enabled else self.local_fen


DEFAULT_RATES: Mapping[NumberKind, Decimal] = {
    # yuan per minute; defaults for the administrator to replace with the carrier's
    NumberKind.LOCAL: Decimal("0.10"),
    NumberKind.MOBILE: Decimal("0.15"),
    NumberKind.DOMESTIC_LONG_DISTANCE: Decimal("0.30"),
    NumberKind.SERVICE: Decimal("0.10"),
    NumberKind.SHORT: Decimal("0.10"),
}


@dataclass(frozen=True, slots=True)
class Tariff:
    """Yuan per minute by number kind, billed per started ``increment_s`` seconds."""

    rates: Mapping[NumberKind, Decimal] = field(default_factory=lambda: dict(DEFAULT_RATES))
    increment_s: int = 60

    def rate(self, kind: NumberKind) -> Decimal:
        return self.rates.get(kind, Decimal(0))

    def chargeable(self, kind: NumberKind) -> bool:
        return self.rate(kind) > 0

    def cost_fen(self, kind: NumberKind, billsec: int) -> int:
        """Cost of a call of ``billsec`` answered seconds, rounded up to the fen."""
        if billsec <= 0 or not self.chargeable(kind):
            return 0
        units = -(-billsec // self.increment_s)
        minutes = Decimal(units * self.increment_s) / Decimal(60)
        fen = (minutes * self.rate(kind) * 100).to_integral_value(rounding=ROUND_CEILING)
        return int(fen)


@dataclass(frozen=True, slots=True)
class DeskPolicy:
    """The desk-phone policy knobs (all from the administrator's file)."""

    long_distance_prefix: str = "17909"
    mobile: MobilePolicy = MobilePolicy.ALL
    quota: QuotaPolicy = QuotaPolicy.BLOCK
    home_area: str = "10"


@dataclass(frozen=True, slots=True)
class DeskDecision:
    """What ``desk_check`` tells the dialplan. ``dial`` is empty when refused."""

    allowed: bool
    reason: DeskReason
    dial: str = ""
    kind: NumberKind = NumberKind.INVALID
    chargeable: bool = False
    long_distance_enabled: bool = False
    quota_fen: int = 0
    spend_fen: int = 0
    quota_warning: bool = False


def long_distance_enabled(
    extension_class: ExtensionClass, grants: Sequence[Grant], at: datetime
) -> bool:
    """Executive and fax lines always; a ``local`` line while one of its grants is active."""
    if extension_class is not ExtensionClass.LOCAL:
        return True
    return any(g.active_at(at) for g in grants)


def _class_refusal(
    extension_class: ExtensionClass,
    number: PhoneNumber,
    ld_enabled: bool,
    policy: DeskPolicy,
    home_area_of: Callable[[str], str | None],
) -> DeskReason | None:
    kind = number.kind
    if kind is NumberKind.PREMIUM_RATE:
        return DeskReason.PREMIUM_RATE
    if kind is NumberKind.INTERNATIONAL:
        return DeskReason.INTERNATIONAL
    if kind is NumberKind.DOMESTIC_LONG_DISTANCE:
        return None if ld_enabled else DeskReason.LONG_DISTANCE
    if kind is NumberKind.MOBILE:
        if extension_class is ExtensionClass.FAX:
            return DeskReason.MOBILE
        if extension_class is ExtensionClass.LOCAL and policy.mobile is MobilePolicy.HOME_AREA:
            # unknown range -> not home area (fail closed, as numbers.mobile_area asks)
            if home_area_of(number.key) != policy.home_area:
                return DeskReason.MOBILE_OUTSIDE_HOME_AREA
        return None
    if kind in (NumberKind.LOCAL, NumberKind.SERVICE, NumberKind.SHORT):
        return None
    return DeskReason.INVALID_NUMBER


def decide(
    extension_class: ExtensionClass,
    number: PhoneNumber | None,
    grants: Sequence[Grant],
    month_spend_fen: int,
    quota: Quota,
    tariff: Tariff,
    *,
    at: datetime,
    policy: DeskPolicy | None = None,
    home_area_of: Callable[[str], str | None] = mobile_area,
) -> DeskDecision:
    """Decide one desk-phone call. ``number`` is None when the dialled string did not parse."""
    policy = policy or DeskPolicy()
    if number is None or number.kind is NumberKind.INVALID:
        return DeskDecision(False, DeskReason.INVALID_NUMBER)
    kind = number.kind
    # Emergency first: no class, grant, quota or tariff may stand in the way.
    if kind is NumberKind.EMERGENCY:
        return DeskDecision(True, DeskReason.EMERGENCY, dial=number.dial_string, kind=kind)
    if kind is NumberKind.INTERNAL:
        return DeskDecision(True, DeskReason.INTERNAL, dial=number.dial_string, kind=kind)
    ld = long_distance_enabled(extension_class, grants, at)
    quota_fen = quota.for_extension(ld)
    base = DeskDecision(
        False,
        DeskReason.OK,
        kind=kind,
        long_distance_enabled=ld,
        quota_fen=quota_fen,
        spend_fen=month_spend_fen,
        chargeable=tariff.chargeable(kind),
    )
    refusal = _class_refusal(extension_class, number, ld, policy, home_area_of)
    if refusal is not None:
        return replace(base, reason=refusal)
    warning = False
    if base.chargeable and month_spend_fen >= quota_fen:
        if policy.quota is QuotaPolicy.BLOCK:
            return replace(base, reason=DeskReason.QUOTA_EXHAUSTED)
        warning = True
    dial = number.dial_string
    if kind is NumberKind.DOMESTIC_LONG_DISTANCE:
        dial = policy.long_distance_prefix + dial
    return replace(
        base,
        allowed=True,
        reason=DeskReason.QUOTA_WARNING if warning else DeskReason.OK,
        dial=dial,
        quota_warning=warning,
    )
