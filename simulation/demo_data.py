"""Sample data for ``dialer demo``, the scenario tests and the load bench.

Numbers are valid Chinese mobile numbers (so the compliance gate accepts them)
whose LAST DIGIT selects the simulated callee's behaviour in simpbx (see
``asterisk-reference/dialplan/extensions.conf``): 1, 2, 7, 9 people; 3 busy;
4 congestion; 5 no answer; 6 answering machine; 8 reject; 0 unallocated.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from compliance.numbers import parse

PREFIXES = ("135", "136", "138", "139", "150", "151", "158", "186", "187", "188")

# Weight of each last digit in a lively sample list.
DEFAULT_DIGIT_MIX: Mapping[str, float] = {
    "1": 0.20,
    "2": 0.04,
    "7": 0.16,
    "9": 0.16,
    "3": 0.08,
    "4": 0.04,
    "5": 0.10,
    "6": 0.08,
    "8": 0.08,
    "0": 0.06,
}

DEMO_POLICY = """
version = "demo-2026.11"

[caller_id]
pool = ["010-58001234"]
"""

DEMO_CALLER_ID = "010-58001234"


@dataclass(frozen=True, slots=True)
class SampleLead:
    number: str
    name: str
    product: str


def sample_numbers(
    count: int, *, seed: int = 2026, mix: Mapping[str, float] = DEFAULT_DIGIT_MIX
) -> list[str]:
    """``count`` distinct valid mobile numbers with last digits drawn from ``mix``."""
    rng = random.Random(seed)
    digits = list(mix)
    weights = [mix[d] for d in digits]
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        last = rng.choices(digits, weights)[0]
        number = rng.choice(PREFIXES) + f"{rng.randrange(10**7):07d}" + last
        if number in seen:
            continue
        parse(number)  # raises InvalidNumber: never ship a number the gate would refuse as invalid
        seen.add(number)
        out.append(number)
    return out


def numbers_ending(digits: str, count: int, *, seed: int = 1) -> list[str]:
    """``count`` distinct numbers ending with one of ``digits`` (even spread)."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    i = 0
    while len(out) < count:
        last = digits[i % len(digits)]
        number = rng.choice(PREFIXES) + f"{rng.randrange(10**7):07d}" + last
        if number in seen:
            continue
        seen.add(number)
        out.append(number)
        i += 1
    return out


def leads_csv(numbers: Sequence[str], product: str) -> str:
    lines = ["number,name,segment,product,assigned_at,dialled_number"]
    for i, n in enumerate(numbers):
        lines.append(f"{n},Customer {i + 1},default,{product},,")
    return "\n".join(lines) + "\n"


def campaign_spec(
    name: str = "demo",
    *,
    pacing: str = "predictive",
    target_abandon: float = 0.03,
    ring_timeout: int = 20,
    products: Sequence[str] = ("broadband",),
) -> dict[str, object]:
    """A campaign definition as ``compliance.campaigns.parse_campaign_spec`` reads it."""
    pacing_table: dict[str, object] = {"method": pacing}
    if pacing == "predictive":
        pacing_table["target_abandon"] = target_abandon
    return {
        "name": name,
        "script": "Hello, this is the demo line. State product, price and payment method; "
        "take an order only after a clear yes.",
        "products": list(products),
        "caller_id": DEMO_CALLER_ID,
        "ring_timeout": ring_timeout,
        "hours": {
            "days": ["mon", "tue", "wed", "thu", "fri", "sat"],
            "windows": ["09:00-12:00", "14:00-20:00"],
        },
        "pacing": pacing_table,
    }
