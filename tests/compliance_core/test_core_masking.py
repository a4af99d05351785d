"""The masking policy for free text: numbers found wherever they hide, nothing else touched."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compliance.masking import mask_data, mask_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("客户号码13812345678投诉", "客户号码138****5678投诉"),
        ("tel13812345678x", "tel138****5678x"),
        ("call 138 1234 5678 now", "call 138****5678 now"),
        ("+86 138 1234 5678", "138****5678"),
        ("86-138-1234-5678", "138****5678"),
        ("0086 13812345678", "138****5678"),
        ("办公室010-8888-6666转", "办公室010****6666转"),
        ("0755-12345678", "075*****5678"),
        ("１３８１２３４５６７８号", "138****5678号"),
        (
            "/api/recordings/search?number=13812345678&reason=x",
            "/api/recordings/search?number=138****5678&reason=x",
        ),
        ("parameters: ('13812345678', 5)", "parameters: ('138****5678', 5)"),
        ("2026-03-02 13812345678", "2026-03-02 138****5678"),
        ("12 13812345678", "12 138****5678"),
    ],
)
def test_numbers_are_masked_wherever_they_are(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "on 2026-03-02 10:30:00",
        "2026-03-02T10:30:00+08:00",
        "sha256 3f9a13812345678bc0123456789abcdef0123456789abcdef0123456789ab",
        "attempt 3f9a0b1c2d4e5f607182",
        "emergency 110, extension 8001",
        "没有号码的投诉",
    ],
)
def test_dates_digests_ids_and_short_numbers_stay(text: str) -> None:
    assert mask_text(text) == text


def test_mask_data_masks_every_string_in_nested_data() -> None:
    data = {"note": "回拨13812345678", "items": [{"n": "13987654321"}, 5, None], "ok": True}
    assert mask_data(data) == {
        "note": "回拨138****5678",
        "items": [{"n": "139****4321"}, 5, None],
        "ok": True,
    }


_MOBILE = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
_TEXT = st.text(alphabet=st.sampled_from("客户号码投诉abcXYZ -:/?=&，。 "), max_size=12)


@given(prefix=_TEXT, number=_MOBILE, suffix=_TEXT)
def test_a_mobile_never_survives_in_any_surrounding_text(
    prefix: str, number: str, suffix: str
) -> None:
    masked = mask_text(prefix + number + suffix)
    assert number not in masked
    # The surrounding text has no digits: what is left of the number is 3 + 4 digits.
    assert number[:3] + "****" + number[7:] in masked
    assert sum(c.isdigit() for c in masked) == 7
