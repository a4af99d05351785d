"""What becomes of a lead after a dial attempt: retry later, wait for a disposition, close it.

Pure: no I/O. Retry rules are the campaign's (``compliance.campaigns.RetryRule``:
``max_tries`` and ``delay_s`` per outcome key ``no_answer``, ``busy``,
``congestion``; optional ``machine`` and ``abandoned``, which fall back to
``no_answer``). ``max_tries`` counts every dial of the lead, the first one too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from dialer.outcomes import DialOutcome


class RuleLike(Protocol):
    @property
    def max_tries(self) -> int: ...

    @property
    def delay_s(self) -> int: ...


class NextKind(StrEnum):
    RETRY = "retry"  # due again at ``at``
    AWAIT_DISPOSITION = "await_disposition"  # an agent talked to the customer
    DONE = "done"  # closed (retries exhausted)
    REFUSE = "refuse"  # never dial again (the number does not exist)


@dataclass(frozen=True, slots=True)
class LeadNext:
    kind: NextKind
    at: datetime | None
    counted: bool  # the attempt counts toward the lead's tries
    reason: str


_RULE_KEY: dict[DialOutcome, tuple[str, ...]] = {
    DialOutcome.NO_ANSWER: ("no_answer",),
    DialOutcome.REJECTED: ("rejected", "no_answer"),
    DialOutcome.BUSY: ("busy",),
    DialOutcome.CONGESTION: ("congestion",),
    DialOutcome.FAILED: ("failed", "congestion"),
    DialOutcome.MACHINE: ("machine", "no_answer"),
    DialOutcome.ANSWERED: ("abandoned", "no_answer"),
}

FALLBACK_DELAY_S = 3600
FALLBACK_TRIES = 3


def after_dial(
    outcome: DialOutcome,
    *,
    connected: bool,
    tries_before: int,
    rules: Mapping[str, RuleLike],
    now: datetime,
) -> LeadNext:
    """The lead's next step after one attempt that ended with ``outcome``.

    ``tries_before`` is the number of counted dials of the lead before this one.
    """
    if outcome is DialOutcome.CANCELLED:
        return LeadNext(NextKind.RETRY, now, False, "attempt cancelled before dialling")
    if outcome is DialOutcome.UNALLOCATED:
        return LeadNext(NextKind.REFUSE, None, True, "unallocated number")
    if outcome is DialOutcome.ANSWERED and connected:
        return LeadNext(NextKind.AWAIT_DISPOSITION, None, True, "talked to an agent")
    counted = outcome is not DialOutcome.FAILED
    keys = _RULE_KEY[outcome]
    rule = next((rules[k] for k in keys if k in rules), None)
    max_tries = rule.max_tries if rule is not None else FALLBACK_TRIES
    delay = rule.delay_s if rule is not None else FALLBACK_DELAY_S
    tries = tries_before + (1 if counted else 0)
    label = "abandoned" if outcome is DialOutcome.ANSWERED else outcome.value
    if tries >= max_tries:
        return LeadNext(NextKind.DONE, None, counted, f"{label}: retries exhausted ({tries})")
    return LeadNext(NextKind.RETRY, now + timedelta(seconds=delay), counted, label)
