"""compliance.numbers: every accepted form, every kind, keys, dial strings, masking."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compliance.numbers import (
    InvalidNumber,
    NumberKind,
    NumberPlan,
    classify,
    is_area_code,
    keys_of,
    mask,
    mobile_area,
    parse,
)

K = NumberKind

# raw, key, kind, area_code, dial_string (home area 010)
VALID = [
    ("13812345678", "13812345678", K.MOBILE, None, "13812345678"),
    ("138 1234 5678", "13812345678", K.MOBILE, None, "13812345678"),
    ("138-1234-5678", "13812345678", K.MOBILE, None, "13812345678"),
    ("+8613812345678", "13812345678", K.MOBILE, None, "13812345678"),
    ("+86 138 1234 5678", "13812345678", K.MOBILE, None, "13812345678"),
    ("008613812345678", "13812345678", K.MOBILE, None, "13812345678"),
    ("8613812345678", "13812345678", K.MOBILE, None, "13812345678"),
    ("(+86) 199-0000-1111", "19900001111", K.MOBILE, None, "19900001111"),
    ("１３８１２３４５６７８", "13812345678", K.MOBILE, None, "13812345678"),
    ("010-88886666", "01088886666", K.LOCAL, "10", "88886666"),
    ("(010) 8888 6666", "01088886666", K.LOCAL, "10", "88886666"),
    ("88886666", "01088886666", K.LOCAL, "10", "88886666"),
    ("1088886666", "01088886666", K.LOCAL, "10", "88886666"),
    ("+86 10 8888 6666", "01088886666", K.LOCAL, "10", "88886666"),
    ("+86 010 8888 6666", "01088886666", K.LOCAL, "10", "88886666"),
    ("0755-12345678", "075512345678", K.DOMESTIC_LONG_DISTANCE, "755", "075512345678"),
    ("75512345678", "075512345678", K.DOMESTIC_LONG_DISTANCE, "755", "075512345678"),
    ("020 8765 4321", "02087654321", K.DOMESTIC_LONG_DISTANCE, "20", "02087654321"),
    ("0571-87654321", "057187654321", K.DOMESTIC_LONG_DISTANCE, "571", "057187654321"),
    ("400-123-4567", "4001234567", K.SERVICE, None, "4001234567"),
    ("800 123 4567", "8001234567", K.SERVICE, None, "8001234567"),
    ("110", "110", K.EMERGENCY, None, "110"),
    ("119", "119", K.EMERGENCY, None, "119"),
    ("120", "120", K.EMERGENCY, None, "120"),
    ("122", "122", K.EMERGENCY, None, "122"),
    ("+86 110", "110", K.EMERGENCY, None, "110"),
    ("10086", "10086", K.SHORT, None, "10086"),
    ("12345", "12345", K.SHORT, None, "12345"),
    ("95588", "95588", K.SHORT, None, "95588"),
    ("114", "114", K.SHORT, None, "114"),
    ("801", "801", K.INTERNAL, None, "801"),
    ("8001", "8001", K.INTERNAL, None, "8001"),
    ("16812345", "16812345", K.PREMIUM_RATE, None, "16812345"),
    ("1601234", "1601234", K.PREMIUM_RATE, None, "1601234"),
    ("010-16812345", "01016812345", K.PREMIUM_RATE, "10", "16812345"),
    ("0755-1681234", "07551681234", K.PREMIUM_RATE, "755", "07551681234"),
    ("+44 20 7946 0958", "00442079460958", K.INTERNATIONAL, None, "00442079460958"),
    ("0044 20 7946 0958", "00442079460958", K.INTERNATIONAL, None, "00442079460958"),
]


@pytest.mark.parametrize(("raw", "key", "kind", "area", "dial"), VALID)
def test_parse_valid(raw: str, key: str, kind: NumberKind, area: str | None, dial: str) -> None:
    p = parse(raw)
    assert (p.key, p.kind, p.area_code, p.dial_string) == (key, kind, area, dial), mask(raw)
    assert p.raw == raw
    assert classify(raw) is kind
    # the key is a fixed point: parsing it again gives the same key and kind
    again = parse(p.key)
    assert (again.key, again.kind) == (key, kind), mask(raw)


INVALID = [
    ("", "empty"),
    ("   ", "empty"),
    ("+", "empty"),
    ("abc", "contains 'a'"),
    ("138123456x8", "contains 'x'"),
    ("14012345678", "not in an allocated mobile number range"),
    ("0755-1234567", "7-digit subscriber number is not valid in area 0755"),
    ("01112345678", "011 is not a Chinese area code"),
    ("2345678", "is not valid in the home area 010"),
    ("1234567", "not a recognised"),  # Beijing numbers have 8 digits
    ("0", "0 is not a Chinese area code"),
    ("00", "international number"),
    ("99", "not a recognised"),
    ("138123456789", "not a recognised"),
    ("+86", "country code and nothing else"),
    ("+999 1234", "international number"),
    ("+44 1", "international number"),
]


@pytest.mark.parametrize(("raw", "problem"), INVALID)
def test_parse_invalid(raw: str, problem: str) -> None:
    with pytest.raises(InvalidNumber, match=re.escape(problem)):
        parse(raw)
    assert classify(raw) is NumberKind.INVALID


def test_invalid_message_is_masked() -> None:
    with pytest.raises(InvalidNumber) as info:
        parse("14012345678")
    assert "14012345678" not in str(info.value)
    assert "140****5678" in str(info.value)
    with pytest.raises(InvalidNumber) as info:
        parse("0755-1234567x")
    assert "1234567" not in str(info.value)


def test_non_text_is_invalid() -> None:
    with pytest.raises(InvalidNumber, match="must be text"):
        parse(13812345678)  # type: ignore[arg-type]


def test_home_area_changes_local_and_long_distance() -> None:
    assert parse("0755-12345678", home_area="755").kind is K.LOCAL
    assert parse("0755-12345678", home_area="755").dial_string == "12345678"
    assert parse("82345678", home_area="755").key == "075582345678"
    assert parse("010-88886666", home_area="755").kind is K.DOMESTIC_LONG_DISTANCE
    assert parse("010-88886666", home_area="755").dial_string == "01088886666"


def test_parameters_premium_emergency_internal() -> None:
    assert classify("16812345", premium_prefixes=("160",)) is K.INVALID
    assert classify("1601234", premium_prefixes=("160",)) is K.PREMIUM_RATE
    assert classify("122", emergency=("110",)) is K.SHORT
    assert classify("801", internal_lengths=(4,)) is K.INVALID
    assert classify("80123", internal_lengths=(5,)) is K.INTERNAL
    assert classify("95588", internal_lengths=(5,)) is K.SHORT  # short wins over extensions
    assert classify("110", internal_lengths=(3,)) is K.EMERGENCY
    plan = NumberPlan(home_area="21", premium_prefixes=("168",))
    assert plan.parse("87654321").key == "02187654321"
    assert plan.classify("nonsense") is K.INVALID


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"home_area": "11"}, "not an area code"),
        ({"home_area": "0755"}, "not an area code"),
        ({"internal_lengths": (8,)}, "outside 2..6"),
        ({"premium_prefixes": ("16a",)}, "not a digit string"),
    ],
)
def test_bad_plan(kwargs: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        NumberPlan(**kwargs)  # type: ignore[arg-type]


def test_area_codes() -> None:
    for code in ("10", "20", "29", "311", "755", "999"):
        assert is_area_code(code)
    for code in ("11", "19", "1", "0755", "2", "755a", "210"):
        assert not is_area_code(code)


def test_keys_of() -> None:
    assert keys_of(["010 88886666", "88886666", "+86 138 1234 5678"]) == {
        "01088886666",
        "13812345678",
    }
    with pytest.raises(InvalidNumber):
        keys_of(["88886666", "bad"])


def test_repr_is_masked() -> None:
    p = parse("13812345678")
    assert "13812345678" not in repr(p)
    assert p.masked == "138****5678"


def test_mobile_area() -> None:
    # ranges as the offline phonenumbers geocoding tables place them
    assert mobile_area("13911112222") == "10"  # Beijing
    assert mobile_area("13812345678") == "518"  # Lianyungang, Jiangsu
    assert mobile_area("01088886666") is None  # not a mobile
    assert mobile_area("14012345678") is None  # no such range


MASKS = [
    ("13812345678", "138****5678"),
    ("138 1234 5678", "138****5678"),
    ("+86 138-1234-5678", "138****5678"),
    ("008613812345678", "138****5678"),
    ("8613812345678", "138****5678"),
    ("01088886666", "010****6666"),
    ("010-8888-6666", "010****6666"),
    ("075512345678", "075*****5678"),
    ("88886666", "88****66"),
    ("1234567", "*****67"),
    ("16812", "***12"),
    ("4001234567", "400****567"),
    ("+44 20 7946 0958", "+442*****0958"),
    ("110", "110"),
    ("8001", "8001"),
    ("", ""),
    ("abc", ""),
    ("１３８１２３４５６７８", "138****5678"),
    ("138abc12345678", "138****5678"),
]


@pytest.mark.parametrize(("raw", "masked"), MASKS)
def test_mask(raw: str, masked: str) -> None:
    assert mask(raw) == masked


def test_mask_non_text() -> None:
    assert mask(13812345678) == "138****5678"  # type: ignore[arg-type]
    assert mask(None) == "****"  # type: ignore[arg-type]


@given(st.text(alphabet="0123456789 +-()", max_size=30))
def test_mask_never_shows_a_long_number(raw: str) -> None:
    out = mask(raw)
    digits = "".join(c for c in raw if c.isdigit())
    shown = "".join(c for c in out if c.isdigit())
    if len(digits) >= 8:
        assert "*" in out
        assert digits not in out
        assert len(shown) <= len(digits) - 4


@given(st.text(max_size=40))
def test_mask_and_classify_never_raise(raw: str) -> None:
    mask(raw)
    classify(raw)
