"""Chinese phone numbers: parse, classify, canonical storage key, masking.

Pure: no I/O, no clock. ``phonenumbers`` supplies the number-range data
(which mobile ranges exist, which landline lengths each area code uses, and
the geocoding tables behind :func:`mobile_area`); the rules of the company
policy (home area, premium-rate prefixes, emergency numbers, extension
lengths) come in as parameters, normally from the policy file.

Canonical key (``PhoneNumber.key``), the one string every store uses:

===========================  =====================================
kind                         key
===========================  =====================================
MOBILE                       11 digits, ``13812345678``
LOCAL / DOMESTIC_LONG_DIST.  trunk 0 + area code + subscriber,
                             ``01088886666``, ``075512345678``
PREMIUM_RATE                 the digits; with trunk 0 + area code
                             when the number carried one
SERVICE (400/800)            10 digits, ``4001234567``
INTERNATIONAL                ``00`` + country code + number
EMERGENCY / SHORT / INTERNAL the digits, ``110``, ``10086``, ``8001``
===========================  =====================================

``PhoneNumber.dial_string`` is what a phone in the home area dials:
a LOCAL landline without its area code (``88886666``), a DOMESTIC_LONG_DISTANCE
landline with trunk 0 and area code (``075512345678``, *without* the 17909
carrier prefix: the desk-phone rules add it), a MOBILE as its 11 digits (no
trunk 0 for remote mobiles: not needed on today's networks), an INTERNATIONAL
number as its key, everything else as its key.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

import phonenumbers

__all__ = [
    "DEFAULT_EMERGENCY",
    "DEFAULT_HOME_AREA",
    "DEFAULT_INTERNAL_LENGTHS",
    "DEFAULT_PREMIUM_PREFIXES",
    "InvalidNumber",
    "NumberKind",
    "NumberPlan",
    "PhoneNumber",
    "classify",
    "is_area_code",
    "keys_of",
    "mask",
    "mobile_area",
    "parse",
]

DEFAULT_HOME_AREA = "10"
DEFAULT_INTERNAL_LENGTHS: tuple[int, ...] = (3, 4)
DEFAULT_PREMIUM_PREFIXES: tuple[str, ...] = ("160", "168")
DEFAULT_EMERGENCY: tuple[str, ...] = ("110", "119", "120", "122")


class NumberKind(StrEnum):
    """What kind of number a dialled string is, as the policies care."""

    MOBILE = "mobile"
    LOCAL = "local"
    DOMESTIC_LONG_DISTANCE = "domestic_long_distance"
    INTERNATIONAL = "international"
    PREMIUM_RATE = "premium_rate"
    SERVICE = "service"  # 400 / 800 service numbers
    EMERGENCY = "emergency"
    SHORT = "short"  # carrier and public service short numbers: 10086, 12345, 95588
    INTERNAL = "internal"  # a desk extension
    INVALID = "invalid"


class InvalidNumber(ValueError):
    """A string that is not a usable phone number. The message shows it masked."""


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A parsed number. See the module docstring for ``key`` and ``dial_string``."""

    raw: str
    key: str
    kind: NumberKind
    area_code: str | None
    dial_string: str

    @property
    def masked(self) -> str:
        return mask(self.key)

    def __repr__(self) -> str:  # never print the full number by accident
        return f"PhoneNumber(key={self.masked!r}, kind={self.kind.value}, area={self.area_code})"


# --- ranges from phonenumbers' metadata (compiled once) -----------------------

_CN = phonenumbers.PhoneMetadata.metadata_for_region("CN")
assert _CN is not None and _CN.mobile is not None and _CN.fixed_line is not None
_MOBILE_RE = re.compile(str(_CN.mobile.national_number_pattern))
_FIXED_RE = re.compile(str(_CN.fixed_line.national_number_pattern))

_SEPARATORS = str.maketrans(
    {c: None for c in " \t-.()/\u00a0\u3000（）－"}
    | {chr(0xFF10 + i): str(i) for i in range(10)}  # full-width digits
    | {"\uff0b": "+"}
)
_AREA_RE = re.compile(r"10|2\d|[3-9]\d\d")


def is_area_code(code: str) -> bool:
    """True for a structurally valid Chinese area code without trunk 0 (10, 20-29, 3xx-9xx)."""
    return _AREA_RE.fullmatch(code) is not None


def _area_len(national: str) -> int:
    """Length of the area code that starts ``national`` (no trunk 0), 0 when none can."""
    first = national[:1]
    if national.startswith("10") or first == "2":
        return 2
    if first and first in "3456789":
        return 3
    return 0


@dataclass(frozen=True, slots=True)
class NumberPlan:
    """The policy's numbering parameters, bundled so callers pass one value."""

    home_area: str = DEFAULT_HOME_AREA
    internal_lengths: tuple[int, ...] = DEFAULT_INTERNAL_LENGTHS
    premium_prefixes: tuple[str, ...] = DEFAULT_PREMIUM_PREFIXES
    emergency: tuple[str, ...] = DEFAULT_EMERGENCY
    # Parsed numbers, by raw text (values are immutable). Not part of the value.
    _cache: dict[str, PhoneNumber] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if not is_area_code(self.home_area):
            raise ValueError(f"home area {self.home_area!r} is not an area code (10, 2x, 3xx-9xx)")
        for n in self.internal_lengths:
            if not 2 <= n <= 6:
                raise ValueError(f"internal extension length {n} outside 2..6")
        for p in (*self.premium_prefixes, *self.emergency):
            if not p.isdigit() or not p.isascii():
                raise ValueError(f"{p!r} is not a digit string")

    def parse(self, raw: str) -> PhoneNumber:
        """:func:`parse` with this plan (results remembered: up to 200,000 numbers)."""
        number = self._cache.get(raw)
        if number is None:
            number = _parse(raw, self)
            if len(self._cache) >= 200_000:
                self._cache.clear()
            self._cache[raw] = number
        return number

    def classify(self, raw: str) -> NumberKind:
        try:
            return self.parse(raw).kind
        except InvalidNumber:
            return NumberKind.INVALID

    def cache_clear(self) -> None:
        """Forget the parsed numbers (for benchmarks of the cold path)."""
        self._cache.clear()


_DEFAULT_PLAN = NumberPlan()


def parse(
    raw: str,
    *,
    home_area: str = DEFAULT_HOME_AREA,
    internal_lengths: tuple[int, ...] = DEFAULT_INTERNAL_LENGTHS,
    premium_prefixes: tuple[str, ...] = DEFAULT_PREMIUM_PREFIXES,
    emergency: tuple[str, ...] = DEFAULT_EMERGENCY,
) -> PhoneNumber:
    """Parse a number as a person or a lead list wrote it. Raises :class:`InvalidNumber`.

    Accepts spaces, dashes, dots, parentheses, full-width digits; ``+86``/``0086``
    in front of any national number and a bare ``86`` in front of an 11-digit
    mobile; landlines with or without trunk 0, with or without area code (none
    means the home area). Order of recognition: international, emergency,
    premium-rate prefix, mobile, 400/800 service, landline with trunk 0,
    short numbers (1xx..1xxxxx, 95xxx, 96xxx), extensions (configured lengths,
    first digit 2-9), landline without trunk 0, local subscriber number.
    """
    if (home_area, internal_lengths, premium_prefixes, emergency) == (
        DEFAULT_HOME_AREA,
        DEFAULT_INTERNAL_LENGTHS,
        DEFAULT_PREMIUM_PREFIXES,
        DEFAULT_EMERGENCY,
    ):
        plan = _DEFAULT_PLAN
    else:
        plan = NumberPlan(home_area, tuple(internal_lengths), tuple(premium_prefixes), emergency)
        return _parse_cached(raw, plan)
    return plan.parse(raw)


def classify(
    raw: str,
    *,
    home_area: str = DEFAULT_HOME_AREA,
    internal_lengths: tuple[int, ...] = DEFAULT_INTERNAL_LENGTHS,
    premium_prefixes: tuple[str, ...] = DEFAULT_PREMIUM_PREFIXES,
    emergency: tuple[str, ...] = DEFAULT_EMERGENCY,
) -> NumberKind:
    """Like :func:`parse` but returns ``NumberKind.INVALID`` instead of raising."""
    try:
        return parse(
            raw,
            home_area=home_area,
            internal_lengths=internal_lengths,
            premium_prefixes=premium_prefixes,
            emergency=emergency,
        ).kind
    except InvalidNumber:
        return NumberKind.INVALID


@lru_cache(maxsize=200_000)
def _parse_cached(raw: str, plan: NumberPlan) -> PhoneNumber:
    return _parse(raw, plan)


def _clean(raw: str) -> tuple[str, bool]:
    """Digits of ``raw`` and whether it was written with a leading '+'."""
    if not isinstance(raw, str):
        raise InvalidNumber(f"phone number must be text, got {type(raw).__name__}")
    s = raw.strip().translate(_SEPARATORS)
    plus = s.startswith("+")
    if plus:
        s = s[1:]
    if not s:
        raise InvalidNumber("empty phone number")
    if not (s.isdigit() and s.isascii()):
        bad = next(c for c in s if not ("0" <= c <= "9"))
        shown = mask(raw)
        where = f" {shown!r}" if shown else ""
        raise InvalidNumber(f"phone number{where} contains {bad!r}, not a digit")
    return s, plus


def _parse(raw: str, plan: NumberPlan) -> PhoneNumber:
    digits, plus = _clean(raw)
    if plus or digits.startswith("00"):
        body = digits if plus else digits[2:]
        if not body.startswith("86"):
            return _international(raw, body)
        digits = body[2:]
        if digits.startswith("0") and not digits.startswith("00"):
            digits = digits[1:]  # "+86 010 ..." is a common way to write it
        if not digits:
            raise InvalidNumber(f"phone number {mask(raw)!r} has a country code and nothing else")
    elif len(digits) == 13 and digits.startswith("86") and _MOBILE_RE.fullmatch(digits[2:]):
        digits = digits[2:]
    return _national(raw, digits, plan)


def _international(raw: str, body: str) -> PhoneNumber:
    try:
        parsed = phonenumbers.parse("+" + body, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f"international number {mask(raw)!r}: {exc._msg}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber(f"international number {mask(raw)!r} is not a valid number")
    key = "00" + body
    return PhoneNumber(raw, key, NumberKind.INTERNATIONAL, None, key)


def _simple(raw: str, digits: str, kind: NumberKind) -> PhoneNumber:
    return PhoneNumber(raw, digits, kind, None, digits)


def _national(raw: str, d: str, plan: NumberPlan) -> PhoneNumber:
    if d in plan.emergency:
        return _simple(raw, d, NumberKind.EMERGENCY)
    if d.startswith(plan.premium_prefixes):
        return _simple(raw, d, NumberKind.PREMIUM_RATE)
    n = len(d)
    if n == 11 and d[0] == "1" and d[1] in "3456789":
        if _MOBILE_RE.fullmatch(d):
            return _simple(raw, d, NumberKind.MOBILE)
        raise InvalidNumber(f"{mask(raw)!r} is not in an allocated mobile number range")
    if n == 10 and d[:3] in ("400", "800"):
        return _simple(raw, d, NumberKind.SERVICE)
    if d[0] == "0":
        return _landline(raw, d[1:], plan, explicit=True)
    if 3 <= n <= 6 and (d[0] == "1" or (n >= 5 and d[:2] in ("95", "96"))):
        return _simple(raw, d, NumberKind.SHORT)
    if n in plan.internal_lengths and d[0] in "23456789":
        return _simple(raw, d, NumberKind.INTERNAL)
    if n in (7, 8) and d[0] in "23456789":
        return _landline(raw, plan.home_area + d, plan, explicit=False)
    if 9 <= n <= 11 and _area_len(d):
        return _landline(raw, d, plan, explicit=True)
    raise InvalidNumber(f"{mask(raw)!r} ({n} digits) is not a recognised phone number")


def _landline(raw: str, national: str, plan: NumberPlan, *, explicit: bool) -> PhoneNumber:
    """``national`` is area code + subscriber number, without trunk 0."""
    alen = _area_len(national)
    if not alen:
        raise InvalidNumber(f"{mask(raw)!r}: 0{national[:2]} is not a Chinese area code")
    area, subscriber = national[:alen], national[alen:]
    key = "0" + national
    if subscriber.startswith(plan.premium_prefixes):
        dial = subscriber if area == plan.home_area else key
        return PhoneNumber(raw, key, NumberKind.PREMIUM_RATE, area, dial)
    if not _FIXED_RE.fullmatch(national):
        where = f"area 0{area}" if explicit else f"the home area 0{area}"
        raise InvalidNumber(
            f"{mask(raw)!r}: {len(subscriber)}-digit subscriber number is not valid in {where}"
        )
    if area == plan.home_area:
        return PhoneNumber(raw, key, NumberKind.LOCAL, area, subscriber)
    return PhoneNumber(raw, key, NumberKind.DOMESTIC_LONG_DISTANCE, area, key)


# --- masking -----------------------------------------------------------------

_ASCII_DIGITS = frozenset("0123456789")


def mask(raw: str) -> str:
    """Hide the middle of a number for people to read. Never raises.

    Only the digits of ``raw`` are shown (full-width digits count; every other
    character is dropped). A ``+86``/``0086`` country code, and a bare ``86``
    in front of an 11-digit mobile, is removed first; any other leading ``+``
    is kept. Then, with *n* digits:

    * n <= 4 (emergency numbers, extensions, short codes): shown as is;
    * 5 <= n <= 7: all but the last 2 digits hidden (``***88``);
    * n >= 8: ``max(4, n - 7)`` middle digits hidden, at most 3 shown in
      front and the rest at the end: ``138****5678`` (11), ``010****6666``,
      ``88****66`` (8), ``400****567`` (10), ``075*****5678`` (12).

    So a number of 8 digits or more never shows more than n - 4 digits, and
    never its full digits. Text without digits gives ``""``; a value that is
    neither text nor an int gives ``****``.
    """
    if isinstance(raw, str):
        text = raw
    elif isinstance(raw, int):
        text = str(raw)
    else:  # not text at all: show nothing of it
        return "****"
    text = text.strip().translate(_SEPARATORS)
    plus = text.startswith("+")
    d = "".join(c for c in text if c in _ASCII_DIGITS)
    if plus and d.startswith("86"):
        d, plus = d[2:], False
    elif d.startswith("0086"):
        d = d[4:]
    elif len(d) == 13 and d.startswith("861") and d[3] in "3456789":
        d = d[2:]
    return ("+" if plus and d else "") + _mask_digits(d)


def _mask_digits(d: str) -> str:
    n = len(d)
    if n <= 4:
        return d
    if n <= 7:
        return "*" * (n - 2) + d[-2:]
    hidden = max(4, n - 7)
    head = min(3, (n - hidden) // 2)
    tail = n - hidden - head
    return d[:head] + "*" * hidden + d[n - tail :]


# --- mobile home area ----------------------------------------------------------

_PROVINCE_RE = re.compile(r"^(?:[^省]+省|[^区]+自治区|广西|内蒙古|新疆|西藏|宁夏)")
_geo_lock = threading.Lock()
_geo: tuple[dict[str, str], dict[str, frozenset[str]]] | None = None


def _cities(description: str) -> list[str]:
    m = _PROVINCE_RE.match(description)
    first, *rest = description.split("、")
    names = [first[m.end() if m else 0 :], *rest]
    return [c.removesuffix("市") for c in names if c]


def _load_geo() -> tuple[dict[str, str], dict[str, frozenset[str]]]:
    """(mobile prefix -> zh description, city -> area codes), from phonenumbers' tables.

    Importing ``phonenumbers.geodata`` costs about 0.5 s and 100 MB, so it is
    done on the first call only.
    """
    global _geo
    with _geo_lock:
        if _geo is None:
            from phonenumbers.geodata import GEOCODE_DATA

            mobile: dict[str, str] = {}
            cities: dict[str, set[str]] = {}
            for prefix, names in GEOCODE_DATA.items():
                if not prefix.startswith("86"):
                    continue
                rest, zh = prefix[2:], names.get("zh", "")
                if rest[:1] == "1" and not rest.startswith("10"):
                    mobile[rest] = zh
                elif _area_len(rest) == len(rest):
                    for city in _cities(zh):
                        cities.setdefault(city, set()).add(rest)
            _geo = (mobile, {c: frozenset(a) for c, a in cities.items()})
        return _geo


def mobile_area(key: str) -> str | None:
    """Area code (no trunk 0) of the city a mobile number range belongs to.

    Uses the offline geocoding tables of ``phonenumbers``: the range's city is
    looked up by the longest known prefix, then matched by name to the cities
    of the landline area codes. Returns None when the number is not an
    11-digit mobile, when the tables do not know the range, or when the city
    maps to no or to several area codes (about 7% of the ranges with
    phonenumbers 9.0: e.g. Qinhuangdao has no landline entry). Callers that
    allow "home-area mobiles only" must treat None as "not home area".
    """
    if len(key) != 11 or not _MOBILE_RE.fullmatch(key):
        return None
    mobile, cities = _load_geo()
    for length in range(9, 2, -1):
        zh = mobile.get(key[:length])
        if zh is not None:
            codes: set[str] = set()
            for city in _cities(zh):
                codes |= cities.get(city, frozenset())
            return next(iter(codes)) if len(codes) == 1 else None
    return None


def keys_of(numbers: Iterable[str], plan: NumberPlan = _DEFAULT_PLAN) -> frozenset[str]:
    """Canonical keys of ``numbers``; raises InvalidNumber naming the first bad one."""
    return frozenset(plan.parse(n).key for n in numbers)
