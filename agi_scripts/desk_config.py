"""The administrator's desk-phone file (TOML): extension classes, numbering, policy, quotas, tariff.

Parsed and validated in one go; every error names the file, the line and the
key (``desk.toml:14: [extensions] "2O1": ...``). Unknown sections or keys are
errors too, so a typo never silently falls back to a default. Example::

    [numbering]
    home_area = "10"                  # area code without trunk 0 (Beijing)
    premium_prefixes = ["160", "168"]
    emergency = ["110", "119", "120", "122"]
    internal_lengths = [3, 4]

    [policy]
    long_distance_prefix = "17909"
    mobile = "all"                    # or "home_area"
    quota = "block"                   # or "warn"
    timezone = "Asia/Shanghai"        # months for quotas and bills
    default_class = "local"
    grant_min_approvers = 2           # department head + division leader

    [quota]                           # yuan per month
    long_distance = 150
    local = 80

    [tariff]                          # yuan per minute, billed per started increment
    increment_s = 60
    local = "0.10"
    mobile = "0.15"
    domestic_long_distance = "0.30"

    [extensions]
    "201" = "executive"
    "209" = "fax"
    "230" = { class = "local", quota = 100 }   # quota override, yuan
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agi_scripts.desk_rules import (
    DeskPolicy,
    ExtensionClass,
    MobilePolicy,
    Quota,
    QuotaPolicy,
    Tariff,
)
from compliance.numbers import NumberKind, NumberPlan


class DeskConfigError(ValueError):
    """The desk file is invalid; the message names file, line and key."""


@dataclass(frozen=True, slots=True)
class ExtensionEntry:
    cls: ExtensionClass
    quota_fen: int | None = None  # overrides the class quota when set


@dataclass(frozen=True, slots=True)
class DeskConfig:
    plan: NumberPlan = field(default_factory=NumberPlan)
    policy: DeskPolicy = field(default_factory=DeskPolicy)
    quota: Quota = field(default_factory=Quota)
    tariff: Tariff = field(default_factory=Tariff)
    timezone: str = "Asia/Shanghai"
    default_class: ExtensionClass = ExtensionClass.LOCAL
    grant_min_approvers: int = 2
    extensions: Mapping[str, ExtensionEntry] = field(default_factory=dict)
    source: str = "<defaults>"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def class_of(self, extension: str) -> ExtensionClass:
        entry = self.extensions.get(extension)
        return entry.cls if entry is not None else self.default_class

    def quota_of(self, extension: str) -> Quota:
        entry = self.extensions.get(extension)
        if entry is None or entry.quota_fen is None:
            return self.quota
        return Quota(long_distance_fen=entry.quota_fen, local_fen=entry.quota_fen)


_SECTIONS = {
    "numbering": {"home_area", "premium_prefixes", "emergency", "internal_lengths"},
    "policy": {
        "long_distance_prefix",
        "mobile",
        "quota",
        "timezone",
        "default_class",
        "grant_min_approvers",
    },
    "quota": {"long_distance", "local"},
    # only kinds a desk phone may be charged for (emergency and internal are always free)
    "tariff": {"increment_s", "local", "mobile", "domestic_long_distance", "service", "short"},
    "extensions": None,  # any extension number
}
_EXTENSION = re.compile(r"[0-9]{2,6}\Z")


class _Reader:
    def __init__(self, text: str, source: str) -> None:
        self.lines = text.splitlines()
        self.source = source

    def line_of(self, section: str, key: str | None = None) -> int:
        """Best-effort line of ``[section]`` or of ``key`` inside it (tomllib keeps none)."""
        current = ""
        header_line = 0
        key_re = None
        if key is not None:
            k = re.escape(key)
            key_re = re.compile(rf"""\s*(?:"{k}"|'{k}'|{k})\s*=""")
        for number, line in enumerate(self.lines, start=1):
            stripped = line.strip()
            m = re.match(r"\[\s*([A-Za-z0-9_.\-\"']+)\s*\]", stripped)
            if m:
                current = m.group(1).strip("\"'")
                if current == section:
                    header_line = number
                continue
            if current == section and key_re is not None and key_re.match(line):
                return number
        return header_line

    def error(self, section: str, key: str | None, message: str) -> DeskConfigError:
        where = f"[{section}]" + (f" {key!r}" if key is not None else "")
        return DeskConfigError(f"{self.source}:{self.line_of(section, key)}: {where}: {message}")


def _yuan_to_fen(r: _Reader, section: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise r.error(section, key, f"expected an amount in yuan, got {type(value).__name__}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise r.error(section, key, f"{value!r} is not an amount in yuan") from None
    if amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise r.error(section, key, f"{value!r}: amounts are >= 0 with at most 2 decimals")
    return int(amount * 100)


def _rate(r: _Reader, key: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise r.error("tariff", key, f"expected yuan per minute, got {type(value).__name__}")
    try:
        rate = Decimal(str(value))
    except InvalidOperation:
        raise r.error("tariff", key, f"{value!r} is not a rate in yuan per minute") from None
    if rate < 0 or rate.is_nan():
        raise r.error("tariff", key, f"{value!r}: a rate must be >= 0")
    return rate


def _choice(r: _Reader, section: str, key: str, value: Any, enum: type[Any]) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise r.error(section, key, f"{value!r} is not one of: {allowed}") from None


def _digit_list(r: _Reader, section: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
        isinstance(x, str) and x.isdigit() and x.isascii() for x in value
    ):
        raise r.error(section, key, 'expected a list of digit strings, e.g. ["160", "168"]')
    return tuple(value)


def _check_sections(r: _Reader, data: dict[str, Any]) -> None:
    for section, value in data.items():
        if section not in _SECTIONS:
            raise r.error(section, None, f"unknown section (known: {', '.join(_SECTIONS)})")
        if not isinstance(value, dict):
            raise r.error(section, None, "must be a table")
        known = _SECTIONS[section]
        if known is not None:
            for key in value:
                if key not in known:
                    raise r.error(section, key, f"unknown key (known: {', '.join(sorted(known))})")


def _numbering(r: _Reader, num: dict[str, Any]) -> NumberPlan:
    plan_kwargs: dict[str, Any] = {}
    if "home_area" in num:
        if not isinstance(num["home_area"], str):
            raise r.error("numbering", "home_area", 'expected a string, e.g. "10"')
        plan_kwargs["home_area"] = num["home_area"]
    for key in ("premium_prefixes", "emergency"):
        if key in num:
            plan_kwargs[key] = _digit_list(r, "numbering", key, num[key])
    if "internal_lengths" in num:
        lengths = num["internal_lengths"]
        if not isinstance(lengths, list) or not all(type(x) is int for x in lengths):
            raise r.error("numbering", "internal_lengths", "expected a list of integers")
        plan_kwargs["internal_lengths"] = tuple(lengths)
    try:
        return NumberPlan(**plan_kwargs)
    except ValueError as exc:
        raise r.error("numbering", None, str(exc)) from None


@dataclass(frozen=True, slots=True)
class _PolicySection:
    prefix: str
    mobile: MobilePolicy
    quota: QuotaPolicy
    default_class: ExtensionClass
    timezone: str
    min_approvers: int


def _policy(r: _Reader, pol: dict[str, Any]) -> _PolicySection:
    prefix = pol.get("long_distance_prefix", "17909")
    if not isinstance(prefix, str) or not (prefix.isdigit() and prefix.isascii()):
        raise r.error("policy", "long_distance_prefix", "expected a digit string")
    mobile = _choice(r, "policy", "mobile", pol.get("mobile", "all"), MobilePolicy)
    quota_policy = _choice(r, "policy", "quota", pol.get("quota", "block"), QuotaPolicy)
    default_class = _choice(
        r, "policy", "default_class", pol.get("default_class", "local"), ExtensionClass
    )
    timezone = pol.get("timezone", "Asia/Shanghai")
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        raise r.error("policy", "timezone", f"unknown time zone {timezone!r}") from None
    min_approvers = pol.get("grant_min_approvers", 2)
    if type(min_approvers) is not int or not 0 <= min_approvers <= 10:
        raise r.error("policy", "grant_min_approvers", "expected an integer 0..10")
    return _PolicySection(
        prefix, mobile, quota_policy, default_class, str(timezone), min_approvers
    )


def _tariff(r: _Reader, t: dict[str, Any]) -> Tariff:
    increment = t.get("increment_s", 60)
    if type(increment) is not int or not 1 <= increment <= 3600:
        raise r.error("tariff", "increment_s", "expected whole seconds 1..3600")
    rates = dict(Tariff().rates)
    for key, value in t.items():
        if key != "increment_s":
            rates[NumberKind(key)] = _rate(r, key, value)
    return Tariff(rates=rates, increment_s=increment)


def _extension(r: _Reader, ext: str, value: Any) -> ExtensionEntry:
    if not _EXTENSION.match(ext):
        raise r.error("extensions", ext, "an extension is 2 to 6 digits")
    if isinstance(value, str):
        return ExtensionEntry(_choice(r, "extensions", ext, value, ExtensionClass))
    if isinstance(value, dict):
        extra = set(value) - {"class", "quota"}
        if extra or "class" not in value:
            raise r.error("extensions", ext, 'expected { class = "...", quota = <yuan> }')
        cls = _choice(r, "extensions", ext, value["class"], ExtensionClass)
        fen = _yuan_to_fen(r, "extensions", ext, value["quota"]) if "quota" in value else None
        return ExtensionEntry(cls, fen)
    raise r.error("extensions", ext, "expected a class name or a table")


def parse_desk_config(text: str, source: str = "<desk.toml>") -> DeskConfig:
    """Parse and validate the desk file's text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DeskConfigError(f"{source}: TOML syntax error: {exc}") from None
    r = _Reader(text, source)
    _check_sections(r, data)
    plan = _numbering(r, data.get("numbering", {}))
    pol = _policy(r, data.get("policy", {}))
    q = data.get("quota", {})
    quota = Quota(
        long_distance_fen=_yuan_to_fen(r, "quota", "long_distance", q.get("long_distance", 150)),
        local_fen=_yuan_to_fen(r, "quota", "local", q.get("local", 80)),
    )
    tariff = _tariff(r, data.get("tariff", {}))
    extensions = {
        ext: _extension(r, ext, value) for ext, value in data.get("extensions", {}).items()
    }
    return DeskConfig(
        plan=plan,
        policy=DeskPolicy(
            long_distance_prefix=pol.prefix,
            mobile=pol.mobile,
            quota=pol.quota,
            home_area=plan.home_area,
        ),
        quota=quota,
        tariff=tariff,
        timezone=pol.timezone,
        default_class=pol.default_class,
        grant_min_approvers=pol.min_approvers,
        extensions=extensions,
        source=source,
    )


def load_desk_config(path: str | Path | None) -> DeskConfig:
    """Read the desk file; ``None`` gives the built-in defaults (every extension ``local``)."""
    if path is None:
        return DeskConfig()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DeskConfigError(f"{p}: cannot read desk file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise DeskConfigError(f"{p}: desk file is not UTF-8") from None
    return parse_desk_config(text, str(p))
