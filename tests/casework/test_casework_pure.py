"""Complaint steps, deadlines, scorecard maths, sampling and the site settings (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from casework.cases import (
    CaseState,
    FieldProblem,
    PenaltyTarget,
    Step,
    StepInput,
    advance,
    check_step,
    due_at,
    is_overdue,
    next_steps,
    transition_problem,
)
from casework.quality import (
    Item,
    item_deduction,
    month_bounds,
    month_of,
    month_score,
    months_back,
    sample,
    team_score,
    trend,
)
from casework.settings import SettingsError, default_settings, load_settings, parse_settings
from compliance.policy import parse_policy

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
RULES = default_settings().cases
CARD = default_settings().scorecard


def _take(state: CaseState, step: Step, raw: dict[str, object], **kw: object) -> CaseState:
    assert transition_problem(state, step) is None
    done = check_step(step, raw, RULES, **kw)  # type: ignore[arg-type]
    assert isinstance(done, StepInput), done
    return advance(state, done)


def test_telemarketing_case_at_fault_walks_every_step_of_appendix_3() -> None:
    s = CaseState(Step.REGISTERED, T0)
    s = _take(s, Step.CLASSIFIED, {"category": "attitude", "dispatched_to": "tm-desk"})
    assert next_steps(s) == (Step.EVIDENCE,)
    s = _take(s, Step.EVIDENCE, {"recordings": "3, 4"}, linked_recordings=(3, 4, 5))
    s = _take(
        s, Step.JUDGED, {"company_at_fault": "yes", "standard": "四.1", "note": "rude at 0:42"}
    )
    assert next_steps(s) == (Step.PENALISED,)
    s = _take(
        s,
        Step.PENALISED,
        {
            "penalties": [
                {"target_kind": "agent", "target": "a1", "item": "attitude"},
                {"target_kind": "partner", "target": "acme-call", "points": "3"},
            ]
        },
        item_points=CARD.points(),
    )
    s = _take(s, Step.REMEDIED, {"order_cancelled": True, "refund": "120.50", "note": "refund"})
    s = _take(s, Step.REPORTED, {"summary": "agent warned, order cancelled"})
    s = _take(s, Step.REPLIED, {"channel": "call", "reply": "we apologise"})
    s = _take(s, Step.CLOSED, {})
    assert next_steps(s) == () and transition_problem(s, Step.REPLIED) == "the case is closed"


def test_other_complaint_and_not_at_fault_skip_to_the_report() -> None:
    s = _take(
        CaseState(Step.REGISTERED, T0),
        Step.CLASSIFIED,
        {"category": "other", "dispatched_to": "billing"},
    )
    assert s.telemarketing is False and next_steps(s) == (Step.REPORTED,)
    assert "next step is reported, not evidence" in str(transition_problem(s, Step.EVIDENCE))
    s2 = CaseState(Step.EVIDENCE, T0, True)
    s2 = _take(s2, Step.JUDGED, {"company_at_fault": "no", "standard": "四.1", "note": "polite"})
    assert next_steps(s2) == (Step.REPORTED,)


def test_step_fields_are_checked_and_every_problem_named() -> None:
    problems = check_step(Step.CLASSIFIED, {"category": "weird"}, RULES)
    assert isinstance(problems, list)
    fields = {p.field for p in problems}
    assert fields == {"category", "dispatched_to"}
    assert "unknown category 'weird'" in str(problems[0])
    bad = check_step(Step.EVIDENCE, {"recordings": [1, 9, "x"]}, RULES, linked_recordings=(1,))
    assert isinstance(bad, list)
    assert {p.field for p in bad} == {"recordings[2]", "recordings"}
    bad = check_step(Step.JUDGED, {"company_at_fault": "maybe", "standard": ""}, RULES)
    assert isinstance(bad, list) and {p.field for p in bad} == {
        "company_at_fault",
        "standard",
        "note",
    }
    bad = check_step(
        Step.PENALISED,
        {"penalties": [{"target_kind": "boss", "target": "a 1", "item": "nope"}]},
        RULES,
        item_points=CARD.points(),
    )
    assert isinstance(bad, list)
    assert {p.field for p in bad} == {
        "penalties[0].target_kind",
        "penalties[0].target",
        "penalties[0].item",
        "penalties[0].points",
    }
    bad = check_step(Step.PENALISED, {"penalties": []}, RULES)
    assert bad == [
        FieldProblem(
            "penalties", "at least one penalty (an agent, a unit or a partner) is required"
        )
    ]
    bad = check_step(Step.REMEDIED, {"order_cancelled": "no", "refund": "-3", "note": "x"}, RULES)
    assert isinstance(bad, list) and bad[0].field == "refund"
    bad = check_step(Step.REPLIED, {"channel": "fax", "reply": " "}, RULES)
    assert isinstance(bad, list) and {p.field for p in bad} == {"channel", "reply"}
    ok = check_step(
        Step.PENALISED,
        {"penalties": [{"target_kind": "unit", "target": "team-north", "item": "data_leak"}]},
        RULES,
        item_points=CARD.points(),
    )
    assert isinstance(ok, StepInput)
    assert ok.penalties[0].target_kind is PenaltyTarget.UNIT
    assert ok.penalties[0].points == Decimal(2)


def test_deadlines_count_from_receipt_and_overdue_follows_the_next_step() -> None:
    s = CaseState(Step.REGISTERED, T0)
    assert due_at(s, RULES) == T0 + timedelta(hours=24)
    assert not is_overdue(s, RULES, T0 + timedelta(hours=23))
    assert is_overdue(s, RULES, T0 + timedelta(hours=25))
    s = CaseState(Step.JUDGED, T0, True, False)  # next: reported (120 h)
    assert due_at(s, RULES) == T0 + timedelta(hours=120)
    assert due_at(CaseState(Step.CLOSED, T0), RULES) is None


def test_part_5_deductions_escalate_within_a_month() -> None:
    attitude = CARD.items["attitude"]  # 1 point, 1 more for each further finding
    assert [item_deduction(attitude, n) for n in (0, 1, 2, 3)] == [0, 1, 3, 5]
    leak = CARD.items["data_leak"]
    assert item_deduction(leak, 2) == Decimal(6)
    score = month_score(
        CARD,
        "a1",
        "2026-03",
        [("attitude", 1), ("attitude", 1), ("rude_language", 1)],
        reviews=2,
        penalties=[Decimal("0.5")],
    )
    assert score.score == Decimal(100) - 3 - 1 - Decimal("0.5")
    assert team_score([score, month_score(CARD, "a2", "2026-03", [], reviews=1)]) == Decimal(
        "97.75"
    )
    assert team_score([]) is None
    assert trend([Decimal(90), None, Decimal(95), Decimal(97)]) == [None, None, None, 2]
    gone = month_score(CARD, "a1", "2026-03", [("retired_item", 2)], reviews=1)
    assert gone.score == CARD.base


def test_sampling_is_reproducible_and_bounded() -> None:
    ids = list(range(1, 200))
    first = sample(ids, 5, seed="s", month="2026-03", agent="a1")
    assert first == sample(reversed(ids), 5, seed="s", month="2026-03", agent="a1")
    assert len(first) == 5 and first == sorted(first)
    assert first != sample(ids, 5, seed="s", month="2026-04", agent="a1")
    assert sample([3, 1], 5, seed="s", month="2026-03", agent="a1") == [1, 3]
    assert sample(ids, 0, seed="s", month="2026-03", agent="a1") == []


def test_months_in_the_policy_time_zone() -> None:
    sh = ZoneInfo("Asia/Shanghai")
    assert month_of(datetime(2026, 2, 28, 17, 0, tzinfo=UTC), sh) == "2026-03"
    start, end = month_bounds("2026-12", sh)
    assert start == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    assert months_back("2026-02", 3) == ["2025-12", "2026-01", "2026-02"]


SITE = """\
version = "site-1"

[complaints.deadlines]
classified = 12

[quality]
base = 50

[quality.teams]
north = ["a1", "a2"]

[[quality.items]]
code = "attitude"
title = "态度差"
points = 2

[[quality.items]]
code = "leak"
title = "泄露客户资料"
points = 1.5
extra = 0.5
case = true
"""


def test_site_settings_override_the_packaged_scorecard(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(SITE, "utf-8")
    s = load_settings(path)
    assert s.cases.deadlines[Step.CLASSIFIED] == timedelta(hours=12)
    assert s.cases.deadlines[Step.CLOSED] == timedelta(hours=168)
    assert s.scorecard.base == 50 and set(s.scorecard.items) == {"attitude", "leak"}
    assert s.scorecard.items["leak"] == Item(
        "leak", "泄露客户资料", Decimal("1.5"), Decimal("0.5"), "", True
    )
    assert s.scorecard.team_of("a2") == "north" and s.scorecard.team_of("zz") == ""
    # The compliance policy reads the same file and leaves these tables to casework.
    assert parse_policy(SITE, str(path)).version == "site-1"


@pytest.mark.parametrize(
    ("change", "line", "key", "problem"),
    [
        (("points = 1.5", "points = -1"), 20, "quality.items[1].points", "0 to 100"),
        (("points = 1.5", "points = 0.001"), 20, "quality.items[1].points", "steps of 0.01"),
        (("extra = 0.5", 'extra = "x"'), 21, "quality.items[1].extra", "number of points"),
        (('code = "leak"', 'code = "Leak!"'), 18, "quality.items[1].code", "a code like"),
        (('code = "leak"', 'code = "attitude"'), 18, "quality.items[1].code", "duplicate"),
        (("case = true", "case = 1"), 22, "quality.items[1].case", "true or false"),
        (("case = true", "cases = true"), 22, "quality.items[1].cases", "unknown key"),
        (("classified = 12", "classify = 12"), 4, "complaints.deadlines.classify", "unknown step"),
        (("classified = 12", "classified = 0"), 4, "complaints.deadlines.classified", "above 0"),
        (('north = ["a1", "a2"]', 'north = ["a1", 2]'), 10, "quality.teams.north", "agent ids"),
        (("base = 50", "base = true"), 7, "quality.base", "number of points"),
    ],
)
def test_bad_settings_name_file_line_and_field(
    tmp_path: Path, change: tuple[str, str], line: int, key: str, problem: str
) -> None:
    path = tmp_path / "site.toml"
    assert change[0] in SITE
    path.write_text(SITE.replace(change[0], change[1], 1), "utf-8")
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    assert (err.value.source, err.value.line, err.value.key) == (str(path), line, key)
    assert problem in err.value.problem
    assert str(err.value).startswith(f"{path} line {line}: {key}: ")


def test_unreadable_and_malformed_settings_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(tmp_path / "missing.toml")
    with pytest.raises(SettingsError, match="not valid TOML"):
        parse_settings("[quality\n", "x.toml")
    with pytest.raises(SettingsError, match=r"quality\.items: must be a non-empty list"):
        parse_settings("[quality]\nitems = []\n", "x.toml")
