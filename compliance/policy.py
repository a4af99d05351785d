"""The compliance policy: one TOML file holding every figure the gate enforces.

Responsible for reading and validating the policy (``load_policy``,
``parse_policy``, ``default_policy``) into frozen values the pure engine uses,
and for showing it back (``policy_to_dict``). The packaged
``default_policy.toml`` holds every default of the company rules; a site file
only states what differs (plus its ``version``), the rest is taken from the
packaged file. Validation errors are :class:`PolicyError` naming the file, the
key and the problem. No I/O here except reading the file named to
``load_policy`` and the packaged default.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, tzinfo
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from compliance.calendar import NO_CALENDAR, WorkCalendar, china_calendar, site_calendar
from compliance.numbers import InvalidNumber, NumberKind, NumberPlan, is_area_code, mask

__all__ = [
    "DAY_NAMES",
    "CallCounting",
    "Caps",
    "Policy",
    "PolicyError",
    "Segment",
    "Window",
    "default_policy",
    "default_policy_text",
    "load_policy",
    "parse_policy",
    "policy_to_dict",
]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = datetime.weekday()


class PolicyError(ValueError):
    """A policy file that cannot be used. ``key`` is the dotted key at fault ("" for the file)."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")


class CallCounting(StrEnum):
    """What counts as "a call" for the caps (A.3)."""

    EVERY_ATTEMPT = "every_attempt"
    ANSWERED_ONLY = "answered_only"


@dataclass(frozen=True, slots=True)
class Window:
    """A calling window in local time, minutes since midnight, ``[start, end)``."""

    start: int
    end: int

    def __str__(self) -> str:
        return (
            f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"
        )


@dataclass(frozen=True, slots=True)
class Segment:
    """A customer segment: when its customers may be called, and optional stricter caps."""

    name: str
    description: str
    days: frozenset[int]  # datetime.weekday(): 0 = Monday
    windows: tuple[Window, ...]  # sorted, non-overlapping
    monthly_calls: int | None = None
    yearly_calls: int | None = None


@dataclass(frozen=True, slots=True)
class Caps:
    monthly_calls: int
    quiet_months: int
    yearly_calls: int
    product_interval_days: int
    product_refusals: int


@dataclass(frozen=True)
class Policy:
    """A validated policy. ``caller_id_pool`` and ``special_numbers`` hold canonical keys."""

    version: str
    source: str
    timezone: str
    counting: CallCounting
    caps: Caps
    recall_months: int
    caller_id_pool: frozenset[str]
    numbers: NumberPlan
    customer_kinds: frozenset[NumberKind]
    special_categories: tuple[str, ...]
    special_numbers: Mapping[str, str]  # key -> category
    segments: Mapping[str, Segment]
    tz: tzinfo = field(compare=False, repr=False)
    # The company's declared service numbers (hotlines customers call, e.g. 400-...):
    # with the pool, the only numbers a call may present (art. 35).
    service_numbers: frozenset[str] = frozenset()
    # Days off and adjusted working days the calling windows follow ([calendar]).
    calendar: WorkCalendar = field(default=NO_CALENDAR, compare=False, repr=False)

    @property
    def own_numbers(self) -> frozenset[str]:
        """Every number the company may present: the caller-ID pool and its service numbers."""
        return self.caller_id_pool | self.service_numbers

    def __hash__(self) -> int:  # the mappings are not hashable; equal policies hash equal
        return hash((self.version, self.source, self.caps, self.caller_id_pool, self.numbers))


# --- loading -------------------------------------------------------------------


@cache
def default_policy_text() -> str:
    """The packaged default policy file, as text."""
    return resources.files("compliance").joinpath("default_policy.toml").read_text("utf-8")


@cache
def _default_data() -> dict[str, Any]:
    return tomllib.loads(default_policy_text())


@cache
def default_policy() -> Policy:
    """The packaged default policy (every default of the company rules)."""
    return parse_policy(default_policy_text(), "default_policy.toml")


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file. Raises PolicyError (also when unreadable)."""
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(str(p), "", f"cannot read the policy file: {exc}") from exc
    return parse_policy(text, str(p))


def parse_policy(text: str, source: str = "<string>") -> Policy:
    """Validate policy TOML text; keys it leaves out keep the packaged defaults."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(source, "", f"not valid TOML: {exc}") from exc
    v = _Validator(source)
    if "version" not in data:
        raise PolicyError(source, "version", "missing: every policy file states its version")
    v.check_keys(data, "", _SCHEMA)
    merged = _merge(_default_data(), data)
    return v.build(merged)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, val in over.items():
        if isinstance(val, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], val)
        else:
            out[k] = val
    return out


# Known keys per table; "*" stands for any name (segment names, special numbers).
_SEGMENT_KEYS: dict[str, Any] = {
    "description": None,
    "days": None,
    "windows": None,
    "monthly_calls": None,
    "yearly_calls": None,
}
_SCHEMA: dict[str, Any] = {
    "version": None,
    "timezone": None,
    "counting": {"calls": None},
    "caps": {
        "monthly_calls": None,
        "quiet_months": None,
        "yearly_calls": None,
        "product_interval_days": None,
        "product_refusals": None,
    },
    "recall": {"months": None},
    "caller_id": {"pool": None, "service_numbers": None},
    "numbers": {
        "home_area": None,
        "premium_prefixes": None,
        "emergency": None,
        "internal_lengths": None,
        "customer_kinds": None,
    },
    "special_numbers": {"categories": None, "numbers": {"*": None}},
    "segments": {"*": _SEGMENT_KEYS},
    "calendar": {"china_public_holidays": None, "days_off": None, "workdays": None},
    # Complaint cases and the quality scorecard: validated by casework.settings.
    "complaints": None,
    "quality": None,
}

_WINDOW_RE = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")
_DIGITS_RE = re.compile(r"[0-9]+")


class _Validator:
    """Builds a Policy from the merged TOML data, raising PolicyError at the first fault."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> PolicyError:
        return PolicyError(self.source, key, problem)

    def check_keys(self, data: Mapping[str, Any], prefix: str, schema: Mapping[str, Any]) -> None:
        for k, val in data.items():
            key = f"{prefix}{k}"
            sub = schema.get(k, schema.get("*", ...))
            if sub is ...:
                known = ", ".join(sorted(schema))
                raise self.fail(key, f"unknown key (known here: {known})")
            if isinstance(sub, dict):
                if not isinstance(val, dict):
                    raise self.fail(key, f"must be a table, got {_show(val)}")
                self.check_keys(val, key + ".", sub)

    # -- typed getters --------------------------------------------------------

    def text(self, data: Mapping[str, Any], key: str, path: str) -> str:
        val = data[key]
        if not isinstance(val, str) or not val.strip():
            raise self.fail(path, f"must be a non-empty string, got {_show(val)}")
        return val

    def integer(self, data: Mapping[str, Any], key: str, path: str, low: int, high: int) -> int:
        val = data[key]
        if not isinstance(val, int) or isinstance(val, bool) or not low <= val <= high:
            what = "a positive integer" if low == 1 else f"an integer >= {low}"
            raise self.fail(path, f"must be {what} (at most {high}), got {_show(val)}")
        return val

    def str_list(self, data: Mapping[str, Any], key: str, path: str) -> list[str]:
        val = data[key]
        if not isinstance(val, list) or not all(isinstance(x, str) for x in val):
            raise self.fail(path, f"must be a list of strings, got {_show(val)}")
        return list(val)

    def digit_list(self, data: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
        items = self.str_list(data, key, path)
        for i, item in enumerate(items):
            if not _DIGITS_RE.fullmatch(item):
                raise self.fail(f"{path}[{i}]", f"must be digits only, got {item!r}")
        if not items:
            raise self.fail(path, "must not be empty")
        return tuple(items)

    # -- sections -------------------------------------------------------------

    def build(self, d: Mapping[str, Any]) -> Policy:
        version = self.text(d, "version", "version")
        tz_name = self.text(d, "timezone", "timezone")
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise self.fail("timezone", f"unknown time zone {tz_name!r}") from exc
        calls = d["counting"]["calls"]
        if calls not in tuple(CallCounting):
            choices = ", ".join(c.value for c in CallCounting)
            raise self.fail("counting.calls", f"must be one of {choices}, got {_show(calls)}")
        caps = self.caps(d["caps"])
        plan = self.plan(d["numbers"])
        return Policy(
            version=version,
            source=self.source,
            timezone=tz_name,
            counting=CallCounting(calls),
            caps=caps,
            recall_months=self.integer(d["recall"], "months", "recall.months", 1, 120),
            caller_id_pool=self.caller_ids(d["caller_id"], plan),
            service_numbers=self.caller_ids(d["caller_id"], plan, "service_numbers"),
            numbers=plan,
            customer_kinds=self.kinds(d["numbers"]),
            special_categories=tuple(self.str_list(d["special_numbers"], "categories", _SC)),
            special_numbers=self.specials(d["special_numbers"], plan),
            segments=self.segments(d["segments"], caps),
            tz=tz,
            calendar=self.calendar(d.get("calendar", {})),
        )

    def calendar(self, c: Mapping[str, Any]) -> WorkCalendar:
        national = c.get("china_public_holidays", True)
        if not isinstance(national, bool):
            raise self.fail(
                "calendar.china_public_holidays", f"must be true or false, got {_show(national)}"
            )
        off = self.dates(c, "days_off")
        work = self.dates(c, "workdays")
        both = sorted(set(off) & set(work))
        if both:
            raise self.fail("calendar", f"{both[0].isoformat()} is both a day off and a workday")
        return china_calendar(off, work) if national else site_calendar(off, work)

    def dates(self, c: Mapping[str, Any], key: str) -> list[date]:
        if key not in c:
            return []
        out = []
        for i, text in enumerate(self.str_list(c, key, f"calendar.{key}")):
            try:
                out.append(date.fromisoformat(text))
            except ValueError:
                raise self.fail(
                    f"calendar.{key}[{i}]", f"must be a date YYYY-MM-DD, got {text!r}"
                ) from None
        return out

    def caps(self, c: Mapping[str, Any]) -> Caps:
        return Caps(
            monthly_calls=self.integer(c, "monthly_calls", "caps.monthly_calls", 1, 10_000),
            quiet_months=self.integer(c, "quiet_months", "caps.quiet_months", 0, 120),
            yearly_calls=self.integer(c, "yearly_calls", "caps.yearly_calls", 1, 100_000),
            product_interval_days=self.integer(
                c, "product_interval_days", "caps.product_interval_days", 0, 3660
            ),
            product_refusals=self.integer(c, "product_refusals", "caps.product_refusals", 1, 1000),
        )

    def plan(self, n: Mapping[str, Any]) -> NumberPlan:
        home = self.text(n, "home_area", "numbers.home_area")
        if not is_area_code(home):
            raise self.fail(
                "numbers.home_area",
                f"must be an area code without trunk 0 (10, 2x, 3xx-9xx), got {home!r}",
            )
        lengths = n["internal_lengths"]
        if (
            not isinstance(lengths, list)
            or not lengths
            or not all(type(x) is int and 2 <= x <= 6 for x in lengths)
        ):
            raise self.fail(
                "numbers.internal_lengths",
                f"must be a non-empty list of integers from 2 to 6, got {_show(lengths)}",
            )
        premium = self.digit_list(n, "premium_prefixes", "numbers.premium_prefixes")
        emergency = self.digit_list(n, "emergency", "numbers.emergency")
        return NumberPlan(home, tuple(lengths), premium, emergency)

    def kinds(self, n: Mapping[str, Any]) -> frozenset[NumberKind]:
        names = self.str_list(n, "customer_kinds", "numbers.customer_kinds")
        valid = {k.value for k in NumberKind} - {NumberKind.INVALID.value}
        for i, name in enumerate(names):
            if name not in valid:
                raise self.fail(
                    f"numbers.customer_kinds[{i}]",
                    f"unknown kind {name!r} (one of {', '.join(sorted(valid))})",
                )
        if not names:
            raise self.fail("numbers.customer_kinds", "must not be empty")
        return frozenset(NumberKind(x) for x in names)

    def caller_ids(
        self, c: Mapping[str, Any], plan: NumberPlan, name: str = "pool"
    ) -> frozenset[str]:
        keys: set[str] = set()
        for i, raw in enumerate(self.str_list(c, name, f"caller_id.{name}")):
            try:
                num = plan.parse(raw)
            except InvalidNumber as exc:
                raise self.fail(f"caller_id.{name}[{i}]", str(exc)) from None
            if num.kind in (NumberKind.EMERGENCY, NumberKind.PREMIUM_RATE, NumberKind.INTERNAL):
                raise self.fail(
                    f"caller_id.{name}[{i}]",
                    f"{num.masked} is a {num.kind.value} number, not a caller ID",
                )
            keys.add(num.key)
        return frozenset(keys)

    def specials(self, s: Mapping[str, Any], plan: NumberPlan) -> Mapping[str, str]:
        categories = self.str_list(s, "categories", _SC)
        out: dict[str, str] = {}
        for raw, category in s.get("numbers", {}).items():
            path = f"special_numbers.numbers.{mask(raw)}"
            if category not in categories:
                raise self.fail(
                    path, f"category {_show(category)} is not in special_numbers.categories"
                )
            try:
                out[plan.parse(raw).key] = category
            except InvalidNumber as exc:
                raise self.fail(path, str(exc)) from None
        return MappingProxyType(out)

    def segments(self, s: Mapping[str, Any], caps: Caps) -> Mapping[str, Segment]:
        if "default" not in s:  # unreachable with the packaged defaults, kept as a guard
            raise self.fail("segments.default", "missing: the default segment is required")
        return MappingProxyType({name: self.segment(name, body, caps) for name, body in s.items()})

    def segment(self, name: str, body: Mapping[str, Any], caps: Caps) -> Segment:
        p = f"segments.{name}"
        for required in ("days", "windows"):
            if required not in body:
                raise self.fail(f"{p}.{required}", "missing")
        days = self.str_list(body, "days", f"{p}.days")
        for i, day in enumerate(days):
            if day not in DAY_NAMES:
                raise self.fail(
                    f"{p}.days[{i}]", f"must be one of {', '.join(DAY_NAMES)}, got {day!r}"
                )
        if not days:
            raise self.fail(f"{p}.days", "must not be empty")
        if len(set(days)) != len(days):
            raise self.fail(f"{p}.days", "lists a day twice")
        windows = self.windows(body, f"{p}.windows")
        monthly = yearly = None
        if "monthly_calls" in body:
            monthly = self.integer(
                body, "monthly_calls", f"{p}.monthly_calls", 1, caps.monthly_calls
            )
        if "yearly_calls" in body:
            yearly = self.integer(body, "yearly_calls", f"{p}.yearly_calls", 1, caps.yearly_calls)
        description = body.get("description", "")
        if not isinstance(description, str):
            raise self.fail(f"{p}.description", f"must be a string, got {_show(description)}")
        return Segment(
            name, description, frozenset(DAY_NAMES.index(x) for x in days), windows, monthly, yearly
        )

    def windows(self, body: Mapping[str, Any], path: str) -> tuple[Window, ...]:
        out: list[Window] = []
        for i, text in enumerate(self.str_list(body, "windows", path)):
            m = _WINDOW_RE.fullmatch(text.replace(" ", ""))
            if m is None:
                raise self.fail(f"{path}[{i}]", f"must look like 09:00-12:00, got {text!r}")
            h1, m1, h2, m2 = (int(g) for g in m.groups())
            if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
                raise self.fail(f"{path}[{i}]", f"not a time of day in {text!r}")
            start, end = h1 * 60 + m1, h2 * 60 + m2
            if start >= end:
                raise self.fail(f"{path}[{i}]", f"ends before it starts: {text!r}")
            out.append(Window(start, end))
        if not out:
            raise self.fail(path, "must not be empty (a segment nobody may call: remove it)")
        out.sort(key=lambda w: w.start)
        for a, b in itertools.pairwise(out):
            if b.start < a.end:
                raise self.fail(path, f"windows {a} and {b} overlap")
        return tuple(out)


_SC = "special_numbers.categories"


def _show(val: object) -> str:
    """A value as the error message shows it (with its TOML type for non-strings)."""
    if isinstance(val, str):
        return repr(val)
    if isinstance(val, bool):
        return str(val).lower()
    if isinstance(val, dict):
        return "a table"
    return repr(val)


# --- showing -------------------------------------------------------------------


def policy_to_dict(policy: Policy) -> dict[str, Any]:
    """The policy as plain data (TOML/JSON-able), for ``dialer policy show``.

    Caller IDs are company numbers and are shown in full (an administrator
    checks them); special numbers belong to people and are masked.
    """
    return {
        "version": policy.version,
        "source": policy.source,
        "timezone": policy.timezone,
        "counting": {"calls": policy.counting.value},
        "caps": {
            "monthly_calls": policy.caps.monthly_calls,
            "quiet_months": policy.caps.quiet_months,
            "yearly_calls": policy.caps.yearly_calls,
            "product_interval_days": policy.caps.product_interval_days,
            "product_refusals": policy.caps.product_refusals,
        },
        "recall": {"months": policy.recall_months},
        "caller_id": {
            "pool": sorted(policy.caller_id_pool),
            "service_numbers": sorted(policy.service_numbers),
        },
        "numbers": {
            "home_area": policy.numbers.home_area,
            "premium_prefixes": list(policy.numbers.premium_prefixes),
            "emergency": list(policy.numbers.emergency),
            "internal_lengths": list(policy.numbers.internal_lengths),
            "customer_kinds": sorted(k.value for k in policy.customer_kinds),
        },
        "special_numbers": {
            "categories": list(policy.special_categories),
            "numbers": {mask(k): v for k, v in sorted(policy.special_numbers.items())},
        },
        "segments": {name: _segment_dict(seg) for name, seg in policy.segments.items()},
    }


def _segment_dict(seg: Segment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": seg.description,
        "days": [DAY_NAMES[d] for d in sorted(seg.days)],
        "windows": [str(w) for w in seg.windows],
    }
    if seg.monthly_calls is not None:
        out["monthly_calls"] = seg.monthly_calls
    if seg.yearly_calls is not None:
        out["yearly_calls"] = seg.yearly_calls
    return out
