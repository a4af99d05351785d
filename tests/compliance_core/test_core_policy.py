"""compliance.policy: the packaged defaults, overrides, and every validation error."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from compliance.numbers import NumberKind
from compliance.policy import (
    CallCounting,
    PolicyError,
    Window,
    default_policy,
    default_policy_text,
    load_policy,
    parse_policy,
    policy_to_dict,
)


def test_default_policy_holds_the_rules_md_defaults() -> None:
    p = default_policy()
    assert p.version == "default-2026.11"
    assert p.timezone == "Asia/Shanghai"
    assert p.tz == ZoneInfo("Asia/Shanghai")
    assert p.counting is CallCounting.EVERY_ATTEMPT
    caps = p.caps
    assert (caps.monthly_calls, caps.quiet_months, caps.yearly_calls) == (2, 3, 30)
    assert (caps.product_interval_days, caps.product_refusals) == (30, 3)
    assert p.recall_months == 10
    assert p.caller_id_pool == frozenset()
    assert p.numbers.home_area == "10"
    assert p.numbers.premium_prefixes == ("160", "168")
    assert p.numbers.emergency == ("110", "119", "120", "122")
    assert p.numbers.internal_lengths == (3, 4)
    assert p.customer_kinds == {
        NumberKind.MOBILE,
        NumberKind.LOCAL,
        NumberKind.DOMESTIC_LONG_DISTANCE,
    }
    assert p.special_categories == ("public_phone", "protected_person")
    seg = p.segments["default"]
    assert seg.days == frozenset(range(6))  # Monday to Saturday
    assert seg.windows == (Window(9 * 60, 12 * 60), Window(14 * 60, 20 * 60))
    assert seg.monthly_calls is None and seg.yearly_calls is None


def test_overrides_keep_the_rest() -> None:
    p = parse_policy(
        """
version = "site-1"
timezone = "Asia/Urumqi"
[counting]
calls = "answered_only"
[caps]
monthly_calls = 1
[caller_id]
pool = ["010-58001234", "400 123 4567"]
[numbers]
home_area = "755"
[special_numbers.numbers]
"0755-23456789" = "public_phone"
[segments.default]
windows = ["10:00-11:00"]
[segments.owner]
description = "company owners"
days = ["mon", "fri"]
windows = ["15:00-17:00", "10:00-11:30"]
monthly_calls = 1
yearly_calls = 12
""",
        "site.toml",
    )
    assert p.version == "site-1" and p.source == "site.toml"
    assert p.counting is CallCounting.ANSWERED_ONLY
    assert p.caps.monthly_calls == 1 and p.caps.yearly_calls == 30
    assert p.caller_id_pool == {"01058001234", "4001234567"}
    assert p.numbers.home_area == "755"
    assert p.special_numbers == {"075523456789": "public_phone"}
    assert p.segments["default"].windows == (Window(600, 660),)
    assert p.segments["default"].days == frozenset(range(6))  # kept from the defaults
    owner = p.segments["owner"]
    assert owner.windows == (Window(600, 690), Window(900, 1020))  # sorted
    assert owner.days == {0, 4}
    assert (owner.monthly_calls, owner.yearly_calls) == (1, 12)


def test_policies_compare_and_hash_by_value() -> None:
    a = parse_policy('version = "v"\n[caps]\nmonthly_calls = 1\n')
    b = parse_policy('version = "v"\n[caps]\nmonthly_calls = 1\n')
    c = parse_policy('version = "v"\n[caps]\nmonthly_calls = 2\n')
    assert a == b and hash(a) == hash(b)
    assert a != c
    assert default_policy() is default_policy()


def test_load_policy_file(tmp_path: Path) -> None:
    f = tmp_path / "policy.toml"
    f.write_text('version = "v7"\n[recall]\nmonths = 6\n', "utf-8")
    p = load_policy(f)
    assert p.version == "v7" and p.recall_months == 6 and p.source == str(f)


def test_load_policy_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the policy file") as info:
        load_policy(tmp_path / "nope.toml")
    assert info.value.key == ""
    assert str(info.value).startswith(str(tmp_path / "nope.toml"))


def test_policy_to_dict_round_trips() -> None:
    p = parse_policy(
        'version = "x"\n[caller_id]\npool = ["010-58001234"]\n'
        '[special_numbers.numbers]\n"13812345678" = "protected_person"\n'
    )
    d = policy_to_dict(p)
    assert d["caller_id"]["pool"] == ["01058001234"]
    assert d["special_numbers"]["numbers"] == {"138****5678": "protected_person"}
    assert "13812345678" not in repr(d)
    assert d["segments"]["default"]["windows"] == ["09:00-12:00", "14:00-20:00"]
    # what `policy show` prints is itself a valid policy (special numbers aside, masked)
    d["special_numbers"]["numbers"] = {}
    del d["source"]
    again = parse_policy(_to_toml(d))
    assert policy_to_dict(again) | {"source": ""} == d | {"source": ""}


def _to_toml(d: dict[str, object], prefix: str = "") -> str:
    """A tiny TOML writer for the test (tomllib only reads)."""
    scalars, tables = [], []
    for k, v in d.items():
        if isinstance(v, dict):
            tables.append(f"[{prefix}{k}]\n" + _to_toml(v, f"{prefix}{k}."))
        else:
            scalars.append(f"{k} = {_toml_value(v)}")
    return "\n".join(scalars) + "\n" + "\n".join(tables)


def _toml_value(v: object) -> str:
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return str(v)


def test_default_file_is_valid_toml_with_version() -> None:
    assert "version" in tomllib.loads(default_policy_text())


V = 'version = "t"\n'

ERRORS = [
    # (policy text, key, problem fragment)
    ("x =", "", "not valid TOML"),
    ("[caps]\nmonthly_calls = 1\n", "version", "missing"),
    ('version = ""\n', "version", "must be a non-empty string, got ''"),
    ("version = 3\n", "version", "must be a non-empty string, got 3"),
    (V + "colour = 1\n", "colour", "unknown key"),
    (V + "[caps]\nmontly_calls = 1\n", "caps.montly_calls", "unknown key (known here: monthly"),
    (V + "caps = 3\n", "caps", "must be a table, got 3"),
    (V + "[segments]\ndefault = 1\n", "segments.default", "must be a table"),
    (V + "[segments.a]\nfoo = 1\n", "segments.a.foo", "unknown key"),
    (V + 'timezone = "Mars/Olympus"\n', "timezone", "unknown time zone 'Mars/Olympus'"),
    (V + 'timezone = "../etc"\n', "timezone", "unknown time zone"),
    (V + '[counting]\ncalls = "some"\n', "counting.calls", "must be one of every_attempt"),
    (V + "[caps]\nmonthly_calls = -1\n", "caps.monthly_calls", "must be a positive integer"),
    (V + "[caps]\nmonthly_calls = 0\n", "caps.monthly_calls", "got 0"),
    (V + "[caps]\nmonthly_calls = 1.5\n", "caps.monthly_calls", "got 1.5"),
    (V + "[caps]\nmonthly_calls = true\n", "caps.monthly_calls", "got true"),
    (V + '[caps]\nmonthly_calls = "2"\n', "caps.monthly_calls", "got '2'"),
    (V + "[caps]\nquiet_months = -1\n", "caps.quiet_months", "must be an integer >= 0"),
    (V + "[caps]\nyearly_calls = 0\n", "caps.yearly_calls", "positive integer"),
    (V + "[caps]\nproduct_interval_days = -3\n", "caps.product_interval_days", ">= 0"),
    (V + "[caps]\nproduct_refusals = 0\n", "caps.product_refusals", "positive integer"),
    (V + "[recall]\nmonths = 0\n", "recall.months", "positive integer"),
    (V + "[recall]\nmonths = 121\n", "recall.months", "at most 120"),
    (V + '[caller_id]\npool = "010-58001234"\n', "caller_id.pool", "must be a list of strings"),
    (V + "[caller_id]\npool = [1]\n", "caller_id.pool", "must be a list of strings"),
    (V + '[caller_id]\npool = ["88886666", "x1"]\n', "caller_id.pool[1]", "contains 'x'"),
    (V + '[caller_id]\npool = ["110"]\n', "caller_id.pool[0]", "emergency number"),
    (V + '[caller_id]\npool = ["16812345"]\n', "caller_id.pool[0]", "premium_rate number"),
    (V + '[caller_id]\npool = ["8001"]\n', "caller_id.pool[0]", "internal number"),
    (V + '[numbers]\nhome_area = "010"\n', "numbers.home_area", "without trunk 0"),
    (V + '[numbers]\nhome_area = ""\n', "numbers.home_area", "non-empty string"),
    (V + '[numbers]\npremium_prefixes = ["16a"]\n', "numbers.premium_prefixes[0]", "digits only"),
    (V + "[numbers]\npremium_prefixes = []\n", "numbers.premium_prefixes", "must not be empty"),
    (V + "[numbers]\nemergency = [110]\n", "numbers.emergency", "list of strings"),
    (V + "[numbers]\ninternal_lengths = [3, 8]\n", "numbers.internal_lengths", "from 2 to 6"),
    (V + "[numbers]\ninternal_lengths = []\n", "numbers.internal_lengths", "non-empty list"),
    (V + '[numbers]\ninternal_lengths = ["3"]\n', "numbers.internal_lengths", "integers"),
    (V + '[numbers]\ncustomer_kinds = ["fax"]\n', "numbers.customer_kinds[0]", "unknown kind"),
    (V + '[numbers]\ncustomer_kinds = ["invalid"]\n', "numbers.customer_kinds[0]", "unknown"),
    (V + "[numbers]\ncustomer_kinds = []\n", "numbers.customer_kinds", "must not be empty"),
    (V + "[special_numbers]\ncategories = 1\n", "special_numbers.categories", "list of strings"),
    (
        V + '[special_numbers.numbers]\n"88886666" = "vip"\n',
        "special_numbers.numbers.88****66",
        "category 'vip' is not in special_numbers.categories",
    ),
    (
        V + '[special_numbers.numbers]\n"88x86666" = "public_phone"\n',
        "special_numbers.numbers.*****66",
        "contains 'x'",
    ),
    (V + '[segments.a]\nwindows = ["09:00-10:00"]\n', "segments.a.days", "missing"),
    (V + '[segments.a]\ndays = ["mon"]\n', "segments.a.windows", "missing"),
    (V + '[segments.a]\ndays = ["monday"]\nwindows = []\n', "segments.a.days[0]", "one of mon"),
    (V + '[segments.a]\ndays = []\nwindows = ["09:00-10:00"]\n', "segments.a.days", "empty"),
    (V + '[segments.a]\ndays = ["mon", "mon"]\nwindows = []\n', "segments.a.days", "twice"),
    (V + '[segments.a]\ndays = ["mon"]\nwindows = []\n', "segments.a.windows", "must not be empty"),
    (
        V + '[segments.a]\ndays = ["mon"]\nwindows = ["9-12"]\n',
        "segments.a.windows[0]",
        "look like",
    ),
    (
        V + '[segments.a]\ndays = ["mon"]\nwindows = ["09:00-25:00"]\n',
        "segments.a.windows[0]",
        "not a time of day",
    ),
    (
        V + '[segments.a]\ndays = ["mon"]\nwindows = ["09:60-10:00"]\n',
        "segments.a.windows[0]",
        "not a time of day",
    ),
    (
        V + '[segments.a]\ndays = ["mon"]\nwindows = ["12:00-09:00"]\n',
        "segments.a.windows[0]",
        "ends before it starts",
    ),
    (
        V + '[segments.a]\ndays = ["mon"]\nwindows = ["09:00-12:00", "11:00-13:00"]\n',
        "segments.a.windows",
        "windows 09:00-12:00 and 11:00-13:00 overlap",
    ),
    (V + "[segments.default]\nmonthly_calls = 3\n", "segments.default.monthly_calls", "at most 2"),
    (V + "[segments.default]\nyearly_calls = 31\n", "segments.default.yearly_calls", "at most 30"),
    (V + "[segments.default]\ndescription = 1\n", "segments.default.description", "string"),
]


@pytest.mark.parametrize(("text", "key", "problem"), ERRORS)
def test_validation_errors(text: str, key: str, problem: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(problem)) as info:
        parse_policy(text, "policy.toml")
    err = info.value
    assert err.key == key
    prefix = f"policy.toml: {key}: " if key else "policy.toml: "
    assert str(err).startswith(prefix), str(err)


def test_error_message_format() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(V + "[caps]\nmonthly_calls = -1\n", "policy.toml")
    assert str(info.value) == (
        "policy.toml: caps.monthly_calls: must be a positive integer (at most 10000), got -1"
    )


def test_window_end_of_day_allowed() -> None:
    p = parse_policy(V + '[segments.night]\ndays = ["sun"]\nwindows = ["20:00-24:00"]\n')
    assert p.segments["night"].windows == (Window(1200, 1440),)
    assert str(p.segments["night"].windows[0]) == "20:00-24:00"
