"""The one masking policy for free text: every phone number a person could read is hidden.

``mask_text`` finds phone-number-like digit runs anywhere in a text: inside
Chinese text (``客户号码13812345678投诉``), next to letters (``tel13812345678``),
in URL paths and query strings, in SQL parameter lists, with full-width digits,
written with spaces or dashes (``138 1234 5678``, ``010-8888-6666``, ``+86 138…``),
and replaces each with ``compliance.numbers.mask`` of it (``138****5678``).
A run counts as a number when it has at least 7 digits; groups of 1-2 digits
after the first break a run, so dates and times (``2026-03-02 10:30``) stay as
they are, and so do decimals (``120.50``, an Asterisk unique id). Digits inside a
long hexadecimal token (a SHA-256) are left alone; inside a shorter one (an attempt
id, a digest prefix) only a run that looks like a real number (a mobile, a
landline with its trunk 0) is masked.

Pure: no I/O, used by the API responses, the CLI, the audit log, the access logs
and the logging filter alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from compliance.numbers import mask

__all__ = ["MIN_DIGITS", "mask_data", "mask_text"]

MIN_DIGITS = 7
#: A digit run with single spaces or dashes between its groups, an optional ``+`` in front.
_RUN = re.compile(r"\+?\d+(?:[ \-‐－]\d+)*")
_GROUP = re.compile(r"\d+")
_ALNUM = re.compile(r"[0-9A-Za-z]")
_DIGEST_MIN = 32
_HEX = frozenset("0123456789abcdefABCDEF")


def mask_text(text: str) -> str:
    """``text`` with every phone-number-like digit run masked (see the module docstring)."""
    if not any(c.isdigit() for c in text):
        return text
    out: list[str] = []
    last = 0
    for run in _RUN.finditer(text):
        if _is_decimal(text, run.start(), run.end()):
            continue
        hex_token = _hex_token_length(text, run.start(), run.end())
        if hex_token >= _DIGEST_MIN:
            continue
        for start, end in _segments(run):
            if hex_token and not _plausible(text[start:end]):
                continue
            out.append(text[last:start])
            out.append(mask(text[start:end]))
            last = end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def mask_data(value: Any) -> Any:
    """A copy of JSON-like data with every string passed through ``mask_text``."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: mask_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_data(v) for v in value]
    return value


def _segments(run: re.Match[str]) -> list[tuple[int, int]]:
    """The spans of a run that are numbers: consecutive groups of 3 digits or more (a country
    code in front may be shorter: ``+86``), kept when they hold ``MIN_DIGITS`` digits or more."""
    spans: list[tuple[int, int]] = []
    groups = list(_GROUP.finditer(run.group(0)))
    base = run.start()
    plus = 1 if run.group(0).startswith("+") else 0
    seg_start = seg_end = -1
    digits = 0

    def close() -> None:
        if seg_start >= 0 and digits >= MIN_DIGITS:
            spans.append((seg_start, seg_end))

    for index, group in enumerate(groups):
        length = group.end() - group.start()
        country_code = index == 0 and (plus or group.group(0) == "86")
        if length < 3 and not country_code:
            # A short group inside a run (a date's month) ends the number before it.
            close()
            seg_start = -1
            continue
        if seg_start < 0:
            seg_start = base + group.start() - (plus if index == 0 else 0)
            digits = 0
        seg_end = base + group.end()
        digits += length
    close()
    return spans


def _is_decimal(text: str, start: int, end: int) -> bool:
    """``120.50``, an Asterisk unique id ``1795725788.5``, a version ``3.11.7``: not numbers
    anyone dials (a number written with dots, ``138.1234.5678``, is the price of this)."""
    after = text[end : end + 2]
    before = text[max(0, start - 2) : start]
    return (len(after) == 2 and after[0] == "." and after[1].isdigit()) or (
        len(before) == 2 and before[1] == "." and before[0].isdigit()
    )


def _hex_token_length(text: str, start: int, end: int) -> int:
    """The length of the hexadecimal token (with letters in it) around ``text[start:end]``,
    0 when the run is not inside one."""
    left = start
    while left > 0 and _ALNUM.match(text[left - 1]):
        left -= 1
    right = end
    while right < len(text) and _ALNUM.match(text[right]):
        right += 1
    token = text[left:right]
    if len(token) == end - start or not all(c in _HEX for c in token):
        return 0
    return len(token) if any(c.isalpha() for c in token) else 0


def _plausible(found: str) -> bool:
    """Inside a short hex token (``abc13812345678``, ``1234567abcdef``) only what looks like a
    real number is masked: a mobile, or a landline with its trunk 0."""
    digits = "".join(c for c in found if c.isdigit())
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return (len(digits) == 11 and digits[0] == "1") or (
        digits[0] == "0" and 10 <= len(digits) <= 12
    )
