"""Quality checks (part 5) on SQLite and PostgreSQL: samples, reviews, scores, disputes."""

from __future__ import annotations

from datetime import UTC, timedelta
from decimal import Decimal

import pytest
from rec_helpers import COMPLIANCE, NUMBER, OTHER, T0, Env

from casework.cases import Step
from casework.qa import Finding, QualityService, Refused, Review
from casework.quality import Resolution
from casework.service import CaseService, CaseView
from casework.settings import parse_settings
from identity.model import Principal, Role
from recordings import audit
from recordings.model import ComplaintChannel

pytestmark = pytest.mark.timeout(60)

SITE = """\
version = "site-1"
[quality]
sample_per_agent = 2
[quality.teams]
north = ["a1", "a2"]
"""
SUPERVISOR = Principal("sam", Role.SUPERVISOR, "s1")
AGENT_A1 = Principal("alice", Role.AGENT, "a1")
AGENT_A2 = Principal("bob", Role.AGENT, "a2")
MONTH = "2026-03"


async def _services(env: Env) -> tuple[QualityService, CaseService]:
    settings = parse_settings(SITE, "site.toml")
    cases = CaseService(env.service, settings, tz=UTC)
    await cases.ensure()
    return QualityService(env.service, settings.scorecard, tz=UTC), cases


async def _fill(env: Env) -> None:
    for i in range(5):
        await env.add(f"rec-a1-{i}", agent="a1", started=T0 + timedelta(hours=i), freq=300 + i)
    for i in range(3):
        await env.add(
            f"rec-a2-{i}", agent="a2", number=OTHER, started=T0 + timedelta(hours=i), freq=500 + i
        )
    await env.add("rec-a1-april", agent="a1", started=T0 + timedelta(days=40), freq=900)


def _ok(result: Review | Refused) -> Review:
    assert isinstance(result, Review), result
    return result


async def test_samples_reviews_and_monthly_scores(env: Env) -> None:
    qa, _ = await _services(env)
    await _fill(env)
    drawn = await qa.draw_samples(SUPERVISOR, MONTH)
    assert isinstance(drawn, dict) and {a: len(v) for a, v in drawn.items()} == {"a1": 2, "a2": 2}
    assert await qa.draw_samples(SUPERVISOR, MONTH) == drawn  # reproducible, nothing doubled
    assert isinstance(await qa.draw_samples(SUPERVISOR, "2026-13"), Refused)
    await qa.flag(SUPERVISOR, "rec-a1-4", note="customer sounded upset")
    queue = await qa.queue(MONTH, agent="a1")
    flagged_id = (await env.service.get("rec-a1-4")).id
    assert {q.recording_id for q in queue} == set(drawn["a1"]) | {flagged_id}
    expected = "sampled" if flagged_id in drawn["a1"] else "flagged"
    assert {q.recording_id: q.source for q in queue}[flagged_id] == expected

    first = queue[0].recording
    review = _ok(await qa.score(SUPERVISOR, first, [Finding("attitude", 1, "sighs at 0:30")]))
    assert review.deduction == Decimal(1) and review.team == "north" and review.month == MONTH
    second = _ok(
        await qa.score(SUPERVISOR, "rec-a1-4", [Finding("attitude"), Finding("rude_language")])
    )
    assert second.source.value == expected
    assert (await qa.queue(MONTH, agent="a1"))[0].reviewed
    clean = _ok(await qa.score(SUPERVISOR, "rec-a2-0", []))
    assert clean.deduction == 0

    # Escalation over the month: attitude twice = 1 + (1 + 1 extra); rude language 1.
    scores = {s.agent: s for s in await qa.month_scores(MONTH)}
    assert scores["a1"].score == Decimal(100) - 3 - 1 and scores["a1"].reviews == 2
    assert scores["a2"].score == Decimal(100)
    team = await qa.team_trend("north", MONTH, months=2)
    assert team == [("2026-02", None, 0), (MONTH, Decimal("98.00"), 2)]
    trend = await qa.agent_trend("a1", "2026-04", months=2)
    assert trend[0][1] is not None and trend[0][1].score == 96 and trend[1][1] is None

    # Refusals are values: unknown item, twice the same call, own calls.
    bad = await qa.score(SUPERVISOR, "rec-a1-1", [Finding("nope")])
    assert isinstance(bad, Refused) and "unknown item 'nope'" in bad.message
    assert isinstance(await qa.score(SUPERVISOR, first, []), Refused)
    own = await qa.score(Principal("alice", Role.SUPERVISOR, "a1"), "rec-a1-2", [])
    assert isinstance(own, Refused) and "own calls" in own.message
    assert "qa.score" in [e.action async for e in audit.entries(env.engine)]


async def test_case_findings_link_to_the_complaint_and_penalties_count(env: Env) -> None:
    qa, cases = await _services(env)
    await _fill(env)
    leak = await qa.score(SUPERVISOR, "rec-a1-0", [Finding("data_leak")])
    assert isinstance(leak, Refused) and "complaint register" in leak.message

    view = await cases.register(COMPLIANCE, NUMBER, ComplaintChannel.CALL, "data leaked")
    linked = _ok(await qa.score(SUPERVISOR, "rec-a1-0", [Finding("data_leak")]))
    assert linked.complaint_id == view.complaint.id and linked.source.value == "complaint"
    wrong = await qa.score(
        COMPLIANCE, "rec-a2-0", [Finding("complaint")], complaint_id=view.complaint.id
    )
    assert isinstance(wrong, Refused) and "does not cover" in wrong.message

    # A complaint penalty on the agent counts in the agent's month.
    cid = view.complaint.id
    for step, fields in (
        (Step.CLASSIFIED, {"category": "data_leak", "dispatched_to": "tm"}),
        (Step.EVIDENCE, {"recordings": [linked.recording_id]}),
        (Step.JUDGED, {"company_at_fault": True, "standard": "五.1", "note": "leak heard"}),
        (
            Step.PENALISED,
            {"penalties": [{"target_kind": "agent", "target": "a1", "item": "data_leak"}]},
        ),
    ):
        assert isinstance(await cases.take_step(COMPLIANCE, cid, step, fields), CaseView)
    month = view.complaint.received_at.astimezone(UTC).strftime("%Y-%m")
    [a1] = await qa.month_scores(month, agent="a1")
    assert a1.penalties == Decimal(2) and a1.reviews == 0 and a1.score == Decimal(98)


async def test_dispute_open_answer_resolve(env: Env) -> None:
    qa, _ = await _services(env)
    await _fill(env)
    review = _ok(await qa.score(SUPERVISOR, "rec-a1-0", [Finding("rude_language")]))
    not_mine = await qa.open_dispute(AGENT_A2, review.id, "not me")
    assert isinstance(not_mine, Refused)
    assert isinstance(await qa.open_dispute(AGENT_A1, review.id, " "), Refused)
    opened = _ok(await qa.open_dispute(AGENT_A1, review.id, "the customer swore, not me"))
    assert opened.dispute is not None and opened.dispute["status"] == "open"
    assert isinstance(await qa.open_dispute(AGENT_A1, review.id, "again"), Refused)
    assert isinstance(
        await qa.resolve_dispute(COMPLIANCE, review.id, Resolution.OVERTURNED, "x"), Refused
    )
    answered = _ok(await qa.answer_dispute(SUPERVISOR, review.id, "listened again: agreed"))
    assert answered.dispute is not None and answered.dispute["status"] == "answered"
    [before] = await qa.month_scores(MONTH, agent="a1")
    assert before.score == 99
    done = _ok(
        await qa.resolve_dispute(COMPLIANCE, review.id, Resolution.OVERTURNED, "customer's words")
    )
    assert done.voided and done.dispute is not None and done.dispute["resolution"] == "overturned"
    assert await qa.month_scores(MONTH, agent="a1") == []
    assert [d["status"] for d in await qa.disputes()] == ["resolved"]
