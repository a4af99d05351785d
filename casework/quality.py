"""Quality checks by listening (part 5 of the policy): scorecard maths and sampling, pure.

A site's scorecard lists deductions per finding, as part 5 does ("每发现一次扣1分",
"每宗扣1分,每多一宗加扣1分"): an item has ``points`` per finding and ``extra``
points for each further finding of the same item in the same month. An agent's
month starts at ``base`` and loses the deductions of every review that stands
(a review overturned on dispute no longer counts) and of every complaint penalty
on that agent. A team's month is the mean of its reviewed agents' scores.

Sampling is reproducible: the N calls drawn for an agent in a month depend only on
the site seed, the month, the agent and the candidate recordings.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from enum import StrEnum


class ReviewSource(StrEnum):
    SAMPLED = "sampled"
    FLAGGED = "flagged"
    COMPLAINT = "complaint"


class DisputeStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    RESOLVED = "resolved"


class Resolution(StrEnum):
    UPHELD = "upheld"  # the review stands
    OVERTURNED = "overturned"  # the review no longer counts


@dataclass(frozen=True, slots=True)
class Item:
    """One deduction of the scorecard."""

    code: str
    title: str
    points: Decimal
    extra: Decimal = Decimal(0)
    section: str = ""
    opens_case: bool = False  # a finding links to a complaint case (data leaked, complaint)


@dataclass(frozen=True, slots=True)
class Scorecard:
    base: Decimal
    items: Mapping[str, Item]
    sample_per_agent: int
    sample_seed: str
    teams: Mapping[str, tuple[str, ...]]

    def team_of(self, agent: str) -> str:
        for team, members in self.teams.items():
            if agent in members:
                return team
        return ""

    def points(self) -> dict[str, Decimal]:
        return {code: item.points for code, item in self.items.items()}


@dataclass(frozen=True, slots=True)
class ItemTotal:
    code: str
    findings: int
    deduction: Decimal


@dataclass(frozen=True, slots=True)
class MonthScore:
    agent: str
    month: str
    reviews: int
    items: tuple[ItemTotal, ...]
    penalties: Decimal
    score: Decimal


def item_deduction(item: Item, findings: int) -> Decimal:
    """``findings`` of one item in a month: each costs ``points``, each after the first
    ``extra`` more (part 5 §4.1: "每宗扣一分,每多一宗加扣一分")."""
    if findings <= 0:
        return Decimal(0)
    return item.points * findings + item.extra * (findings - 1)


def month_score(
    card: Scorecard,
    agent: str,
    month: str,
    findings: Iterable[tuple[str, int]],
    *,
    reviews: int,
    penalties: Iterable[Decimal] = (),
) -> MonthScore:
    """An agent's score for a month from the findings of its standing reviews."""
    counts: dict[str, int] = {}
    for code, count in findings:
        counts[code] = counts.get(code, 0) + count
    totals: list[ItemTotal] = []
    for code in sorted(counts):
        item = card.items.get(code)
        # An item removed from the scorecard after the review keeps no weight.
        deduction = Decimal(0) if item is None else item_deduction(item, counts[code])
        totals.append(ItemTotal(code, counts[code], deduction))
    penalty_total = sum(penalties, Decimal(0))
    score = card.base - sum((t.deduction for t in totals), Decimal(0)) - penalty_total
    return MonthScore(agent, month, reviews, tuple(totals), penalty_total, score)


def team_score(scores: Sequence[MonthScore]) -> Decimal | None:
    """The mean of the agents' scores (None for a month with no reviewed agent)."""
    if not scores:
        return None
    return (sum((s.score for s in scores), Decimal(0)) / len(scores)).quantize(Decimal("0.01"))


def trend(values: Sequence[Decimal | None]) -> list[Decimal | None]:
    """Month-on-month change (None where either month has no score)."""
    out: list[Decimal | None] = [None]
    for prev, cur in itertools.pairwise(values):
        out.append(None if prev is None or cur is None else cur - prev)
    return out[: len(values)]


def sample(candidates: Iterable[int], n: int, *, seed: str, month: str, agent: str) -> list[int]:
    """Reproducibly draw up to ``n`` recording ids of an agent's month."""
    pool = sorted(set(candidates))
    if n <= 0 or not pool:
        return []
    digest = hashlib.sha256(f"{seed}\x1f{month}\x1f{agent}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    return sorted(rng.sample(pool, min(n, len(pool))))


# -- months in the policy's time zone ----------------------------------------------------------


def check_month(text: str) -> str | None:
    """Why ``text`` is not a month like ``2026-03`` (None: it is)."""
    if len(text) != 7 or text[4] != "-" or not (text[:4] + text[5:]).isdigit():
        return f"{text[:20]!r} is not a month (YYYY-MM)"
    if not 1 <= int(text[5:]) <= 12 or int(text[:4]) < 1970:
        return f"{text!r} is not a month (YYYY-MM)"
    return None


def month_of(when: datetime, tz: tzinfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m")


def month_bounds(month: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar month, in UTC."""
    year, mon = int(month[:4]), int(month[5:])
    start = datetime(year, mon, 1, tzinfo=tz)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def months_back(month: str, count: int) -> list[str]:
    """``count`` months ending with ``month``, oldest first."""
    year, mon = int(month[:4]), int(month[5:])
    out: list[str] = []
    for _ in range(count):
        out.append(f"{year:04d}-{mon:02d}")
        mon -= 1
        if mon == 0:
            year, mon = year - 1, 12
    return out[::-1]
