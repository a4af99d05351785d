"""The complaint case as a state machine (appendix 3 of the telemarketing policy), pure.

Appendix 3 ("电话营销投诉处理流程") in steps:

1. **registered**: a channel (call, letter, visit) takes the complaint; the number
   goes on the do-not-call list at once (part 1 §1.3, rules A.1).
2. **classified**: the complaint centre classifies it and dispatches it. A complaint
   that is not about telemarketing ("其它投诉") leaves this flow: it goes straight to
   *reported* (where it was forwarded), then *replied* and *closed*.
3. **evidence**: the telemarketing complaint handler pulls the recordings: the
   calls found from the number, each one reviewed (or a note that none exists).
4. **judged**: judged against the service standard, which is named; the company is
   at fault or not. Not at fault: straight to *reported*.
5. **penalised**: penalties on the responsible agent or unit, partners included
   ("对相关责任单位(包括合作方)或个人进行处罚").
6. **remedied**: the order cancelled or refunded ("取消业务或产品订制 ... 赔付").
7. **reported**: the result reported back to the complaint centre.
8. **replied**: the centre replies to the customer.
9. **closed**.

Which step may follow which (:func:`next_steps`), what each step requires
(:func:`check_step`: problems as values, naming the field) and when each step is
due (:func:`due_at`, :func:`is_overdue`) live here without I/O. Deadlines count from
the complaint's receipt; the policy asks for "timely" feedback (part 5 §3: a
complaint not fed back in time costs 0.5 points) and 24 hours for a report asked
for (part 5 §9.2); the figures are site settings (``[complaints.deadlines]``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any


class Step(StrEnum):
    REGISTERED = "registered"
    CLASSIFIED = "classified"
    EVIDENCE = "evidence"
    JUDGED = "judged"
    PENALISED = "penalised"
    REMEDIED = "remedied"
    REPORTED = "reported"
    REPLIED = "replied"
    CLOSED = "closed"


STEP_ORDER: tuple[Step, ...] = tuple(Step)


class PenaltyTarget(StrEnum):
    """Who carries a penalty: an agent, an own unit, or a partner (合作方)."""

    AGENT = "agent"
    UNIT = "unit"
    PARTNER = "partner"


class ReplyChannel(StrEnum):
    CALL = "call"
    LETTER = "letter"
    VISIT = "visit"
    SMS = "sms"


@dataclass(frozen=True, slots=True)
class Category:
    """A complaint category of the site (``[[complaints.categories]]``)."""

    code: str
    title: str
    telemarketing: bool = True


@dataclass(frozen=True, slots=True)
class CaseRules:
    """The site's complaint settings: categories and per-step deadlines from receipt."""

    categories: Mapping[str, Category]
    deadlines: Mapping[Step, timedelta]


@dataclass(frozen=True, slots=True)
class CaseState:
    """Where a case stands: what the steps so far decided."""

    step: Step
    received_at: datetime
    telemarketing: bool | None = None
    at_fault: bool | None = None


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class Penalty:
    target_kind: PenaltyTarget
    target: str
    points: Decimal
    item: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class StepInput:
    """A step as validated: its fields in canonical form (stored as the step's record)."""

    step: Step
    data: Mapping[str, Any] = field(default_factory=dict)
    penalties: tuple[Penalty, ...] = ()


def next_steps(state: CaseState) -> tuple[Step, ...]:
    """The steps that may follow ``state`` (empty once closed)."""
    match state.step:
        case Step.REGISTERED:
            return (Step.CLASSIFIED,)
        case Step.CLASSIFIED:
            return (Step.EVIDENCE,) if state.telemarketing else (Step.REPORTED,)
        case Step.EVIDENCE:
            return (Step.JUDGED,)
        case Step.JUDGED:
            return (Step.PENALISED,) if state.at_fault else (Step.REPORTED,)
        case Step.PENALISED:
            return (Step.REMEDIED,)
        case Step.REMEDIED:
            return (Step.REPORTED,)
        case Step.REPORTED:
            return (Step.REPLIED,)
        case Step.REPLIED:
            return (Step.CLOSED,)
        case Step.CLOSED:
            return ()


def transition_problem(state: CaseState, step: Step) -> str | None:
    """Why ``step`` may not follow ``state`` now (None: it may)."""
    allowed = next_steps(state)
    if step in allowed:
        return None
    if not allowed:
        return "the case is closed"
    return (
        f"the case is at step {state.step.value}; the next step is "
        + " or ".join(s.value for s in allowed)
        + f", not {step.value}"
    )


def advance(state: CaseState, done: StepInput) -> CaseState:
    """The state after a valid step."""
    telemarketing = state.telemarketing
    at_fault = state.at_fault
    if done.step is Step.CLASSIFIED:
        telemarketing = bool(done.data["telemarketing"])
    if done.step is Step.JUDGED:
        at_fault = bool(done.data["company_at_fault"])
    return CaseState(done.step, state.received_at, telemarketing, at_fault)


def due_at(state: CaseState, rules: CaseRules) -> datetime | None:
    """When the next step is due (None once closed or when no deadline is set)."""
    upcoming = next_steps(state)
    if not upcoming:
        return None
    limits = [rules.deadlines[s] for s in upcoming if s in rules.deadlines]
    return state.received_at + min(limits) if limits else None


def is_overdue(state: CaseState, rules: CaseRules, now: datetime) -> bool:
    due = due_at(state, rules)
    return due is not None and now > due


# -- required fields per step -------------------------------------------------------------------

MAX_TEXT = 10_000
_IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}")


class _Fields:
    """Reads one step's raw fields (a form, a JSON body, CLI options), collecting problems."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[FieldProblem] = []

    def fail(self, name: str, message: str) -> None:
        self.problems.append(FieldProblem(name, message))

    def text(self, name: str, *, required: bool = True, limit: int = MAX_TEXT) -> str:
        value = self.raw.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            self.fail(name, f"must be text, got {type(value).__name__}")
            return ""
        if "\x00" in value:
            self.fail(name, "contains a NUL character")
        elif len(value) > limit:
            self.fail(name, f"is too long ({len(value)} characters, at most {limit})")
        elif required and not value.strip():
            self.fail(name, "is required")
        return value.strip()

    def flag(self, name: str, *, required: bool = True) -> bool | None:
        value = self.raw.get(name)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if value is None or value == "":
            if required:
                self.fail(name, "is required (yes or no)")
            return None
        self.fail(name, f"must be yes or no, got {str(value)[:20]!r}")
        return None

    def amount(self, name: str) -> Decimal | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        text = str(value).strip()
        if not re.fullmatch(r"\d{1,10}(\.\d{1,2})?", text):
            self.fail(name, f"must be an amount like 120.50, got {text[:20]!r}")
            return None
        try:
            return Decimal(text)
        except InvalidOperation:  # the pattern admits only valid decimals; kept for safety
            self.fail(name, f"must be an amount, got {text[:20]!r}")
            return None

    def ids(self, name: str) -> tuple[int, ...]:
        value = self.raw.get(name, ())
        if isinstance(value, str):
            value = [v for v in re.split(r"[,\s]+", value) if v]
        if not isinstance(value, list | tuple):
            self.fail(name, "must be a list of recording ids")
            return ()
        out: list[int] = []
        for i, v in enumerate(value):
            if isinstance(v, bool) or not (
                isinstance(v, int) or (isinstance(v, str) and v.isascii() and v.isdigit())
            ):
                self.fail(f"{name}[{i}]", f"must be a recording id, got {str(v)[:20]!r}")
                continue
            n = int(v)
            if not 1 <= n < 2**62:
                self.fail(f"{name}[{i}]", f"{n} is out of range")
                continue
            out.append(n)
        return tuple(dict.fromkeys(out))


_TRUE = frozenset({"yes", "true", "1", "on", "y"})
_FALSE = frozenset({"no", "false", "0", "off", "n"})


def check_step(
    step: Step,
    raw: Mapping[str, Any],
    rules: CaseRules,
    *,
    linked_recordings: Sequence[int] = (),
    item_points: Mapping[str, Decimal] | None = None,
) -> StepInput | list[FieldProblem]:
    """Validate one step's fields: the canonical record, or every problem found."""
    f = _Fields(raw)
    data: dict[str, Any] = {}
    note = f.text("note", required=False)
    penalties: tuple[Penalty, ...] = ()
    if step is Step.REGISTERED:
        f.fail("step", "registration is done by registering the complaint")
    elif step is Step.CLASSIFIED:
        _classified(f, data, rules)
    elif step is Step.EVIDENCE:
        reviewed = f.ids("recordings")
        stray = [r for r in reviewed if r not in set(linked_recordings)]
        if stray:
            f.fail("recordings", f"not calls of this complaint's number: {stray}")
        if not reviewed and not note:
            f.fail("note", "is required when no recording was reviewed (say why)")
        data["recordings"] = list(reviewed)
    elif step is Step.JUDGED:
        data["company_at_fault"] = f.flag("company_at_fault")
        data["standard"] = f.text("standard", limit=200)
        if not note:
            f.fail("note", "is required: what the recordings show against the standard")
    elif step is Step.PENALISED:
        penalties = _penalties(f, raw.get("penalties"), item_points or {})
        data["penalties"] = [_penalty_doc(p) for p in penalties]
    elif step is Step.REMEDIED:
        data["order_cancelled"] = f.flag("order_cancelled")
        refund = f.amount("refund")
        data["refund"] = None if refund is None else str(refund)
        if not note:
            f.fail("note", "is required: how the customer's order was put right")
    elif step is Step.REPORTED:
        data["summary"] = f.text("summary")
    elif step is Step.REPLIED:
        _replied(f, data)
    data["note"] = note
    if f.problems:
        return f.problems
    return StepInput(step, data, penalties)


def _classified(f: _Fields, data: dict[str, Any], rules: CaseRules) -> None:
    code = f.text("category", limit=64)
    category = rules.categories.get(code)
    if code and category is None:
        known = ", ".join(sorted(rules.categories))
        f.fail("category", f"unknown category {code!r} (known: {known})")
    data["category"] = code
    data["telemarketing"] = bool(category and category.telemarketing)
    data["dispatched_to"] = f.text("dispatched_to", limit=64)


def _replied(f: _Fields, data: dict[str, Any]) -> None:
    channel = f.text("channel", limit=16)
    if channel and channel not in tuple(ReplyChannel):
        known = ", ".join(c.value for c in ReplyChannel)
        f.fail("channel", f"must be one of {known}, got {channel[:16]!r}")
    data["channel"] = channel
    data["reply"] = f.text("reply")


def _penalties(f: _Fields, value: Any, item_points: Mapping[str, Decimal]) -> tuple[Penalty, ...]:
    if not isinstance(value, list | tuple) or not value:
        f.fail("penalties", "at least one penalty (an agent, a unit or a partner) is required")
        return ()
    out: list[Penalty] = []
    for i, entry in enumerate(value):
        where = f"penalties[{i}]"
        if not isinstance(entry, Mapping):
            f.fail(where, "must be a table of target_kind, target, item, points, note")
            continue
        sub = _Fields(entry)
        kind = sub.text("target_kind", limit=16)
        target = sub.text("target", limit=64)
        item = sub.text("item", required=False, limit=64)
        pnote = sub.text("note", required=False)
        points = sub.amount("points")
        if kind and kind not in tuple(PenaltyTarget):
            sub.fail("target_kind", f"must be agent, unit or partner, got {kind[:16]!r}")
        if target and not _IDENT.fullmatch(target):
            sub.fail("target", f"{target[:20]!r} is not a name (letters, digits, _.@:-)")
        if item and item not in item_points:
            sub.fail("item", f"unknown scorecard item {item!r}")
        if points is None:
            if item in item_points:
                points = item_points[item]
            else:
                sub.fail("points", "is required when no scorecard item gives them")
        for p in sub.problems:
            f.fail(f"{where}.{p.field}", p.message)
        if not sub.problems and points is not None:
            out.append(Penalty(PenaltyTarget(kind), target, points, item, pnote))
    return tuple(out)


def _penalty_doc(p: Penalty) -> dict[str, str]:
    return {
        "target_kind": p.target_kind.value,
        "target": p.target,
        "item": p.item,
        "points": str(p.points),
        "note": p.note,
    }
