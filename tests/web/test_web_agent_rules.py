"""The agent console's rules without a browser: the script, lawful callbacks, the desk records.

Callbacks are checked by the real compliance gate on SQLite and PostgreSQL;
the desk records (pause codes, pauses, answers, callbacks) on both databases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from compliance.campaigns import CampaignError, parse_campaign_spec
from compliance.gate import ComplianceStores, open_compliance
from compliance.model import AttemptOutcome, ReasonCode
from compliance.policy import parse_policy
from compliance.tables import open_engine
from dialer.callbacks import CallbackCustomer, check, earliest
from dialer.desk_records import Answer, Callback, DeskInputError, DeskRecords
from simulation.demo_data import DEMO_POLICY, campaign_spec
from web.agent.script import SAMPLE_SCRIPT, ScriptError, fill, filled_parts, parse_script

SHANGHAI = ZoneInfo("Asia/Shanghai")
NUMBER = "13812345671"


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI)


# ---------------------------------------------------------------- the script


def test_sample_script_has_six_parts_terms_and_questionnaire() -> None:
    script = parse_script(SAMPLE_SCRIPT.read_text(encoding="utf-8"))
    assert list(script.parts) == ["opening", "needs", "response", "proposal", "closing", "ending"]
    assert script.warnings == ()
    terms = script.terms("宽带")
    assert (terms.price, terms.payment) == ("每月 99 元", "话费账户代扣")
    assert [q.id for q in script.questionnaire] == ["q1", "q2", "q3"]
    assert script.questionnaire[0].choices[0] == "价格偏高"
    assert script.questionnaire[2].choices == ()
    values = {
        "customer.name": "张三",
        "customer.segment": "家庭",
        "product.name": "宽带",
        "product.price": terms.price,
        "product.payment": terms.payment,
        "agent.name": "701",
        "campaign.name": "春季宽带",
    }
    parts = dict(filled_parts(script, values))
    assert parts["opening"].startswith("张三您好！我是示例通信的客服代表701")
    assert "「宽带」，资费每月 99 元，话费账户代扣" in parts["closing"]
    assert "{" not in "".join(parts.values())


def test_script_errors_name_the_line() -> None:
    with pytest.raises(ScriptError, match="line 3: unknown heading \\[开头\\]"):
        parse_script("[开场]\n你好\n[开头]\n")
    with pytest.raises(ScriptError, match=r"unknown field \{customer\.phone\}"):
        parse_script("[opening]\n{customer.phone}\n")
    with pytest.raises(ScriptError, match="line 2: unknown product term"):
        parse_script("[产品 宽带]\n折扣 = 1\n")
    with pytest.raises(ScriptError, match="given twice"):
        parse_script("[开场]\na\n[opening]\nb\n")


def test_a_script_without_headings_is_shown_whole_with_a_warning() -> None:
    script = parse_script("Hello {customer.name}.\nState the price.")
    assert list(script.parts) == ["opening"] and script.warnings
    assert fill(script.parts["opening"], {}) == "Hello —.\nState the price."
    partial = parse_script("[开场]\n你好\n[结束]\n再见")
    assert partial.warnings == ("the script lacks the parts 判断、响应、导入、促成",)


def test_campaign_names_may_be_chinese() -> None:
    spec = parse_campaign_spec(campaign_spec("春季贷款"))
    assert spec.name == "春季贷款"
    with pytest.raises(CampaignError, match="name"):
        parse_campaign_spec(campaign_spec("_bad name"))


# ---------------------------------------------------------------- lawful callbacks


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(url, schema): the test's SQLite file, or a fresh schema on the real PostgreSQL."""
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
        return url, None
    target = request.getfixturevalue("pg_target")
    return target.url, target.schema


@pytest.fixture
async def stores(db: tuple[str, str | None]) -> AsyncIterator[ComplianceStores]:
    policy = parse_policy(DEMO_POLICY, "demo policy")
    url, schema = db
    s = await open_compliance(url, policy, schema=schema)
    try:
        await s.campaigns.create(parse_campaign_spec(campaign_spec("春季宽带", products=("宽带",))))
        await s.leads.import_text(
            f"number,name,segment,product,assigned_at,dialled_number\n{NUMBER},张三,default,宽带,,\n",
            "t.csv",
            "春季宽带",
            tz=policy.tz,
            now=local(2026, 11, 30, 9),
        )
        yield s
    finally:
        await s.close()


WHO = CallbackCustomer(NUMBER, "春季宽带", "宽带", "010-58001234", "default")


async def test_callback_outside_hours_is_refused_with_the_reason_and_a_proposal(
    stores: ComplianceStores,
) -> None:
    now = local(2026, 12, 1, 10, 7)  # a Tuesday, no call yet
    verdict = await check(stores.gate, WHO, local(2026, 12, 1, 22, 0), now)
    assert not verdict.allowed
    assert [r.code for r in verdict.reasons] == [ReasonCode.OUTSIDE_CALLING_HOURS]
    assert verdict.proposal == local(2026, 12, 1, 10, 12)  # now + 5 minutes, inside the window
    lunch = await check(stores.gate, WHO, local(2026, 12, 1, 12, 30), now)
    assert not lunch.allowed and lunch.proposal == local(2026, 12, 1, 10, 12)
    ok = await check(stores.gate, WHO, local(2026, 12, 1, 15, 0), now)
    assert ok.allowed and ok.reasons == ()


async def test_same_product_within_30_days_is_refused_and_the_proposal_respects_it(
    stores: ComplianceStores,
) -> None:
    now = local(2026, 12, 1, 10, 30)
    d = await stores.gate.check_and_reserve(
        NUMBER, "春季宽带", "宽带", now - timedelta(minutes=5), attempt_id="a1"
    )
    assert d.allowed
    await stores.ledger.resolve("a1", AttemptOutcome.ANSWERED)
    tomorrow = await check(stores.gate, WHO, local(2026, 12, 2, 15, 0), now)
    assert not tomorrow.allowed
    assert ReasonCode.PRODUCT_INTERVAL in {r.code for r in tomorrow.reasons}
    assert tomorrow.proposal is not None and tomorrow.proposal >= now + timedelta(days=30) - (
        timedelta(minutes=5)
    )
    proposal = tomorrow.proposal
    assert (await check(stores.gate, WHO, proposal, now)).allowed
    # Nothing inside the first month: asking for a follow-up within 3 weeks finds none.
    assert await earliest(stores.gate, WHO, now, within=now + timedelta(days=21)) is None


# ---------------------------------------------------------------- desk records


@pytest.fixture
async def desk(db: tuple[str, str | None]) -> AsyncIterator[DeskRecords]:
    engine = await open_engine(db[0], schema=db[1])
    records = DeskRecords(engine)
    await records.create_schema(local(2026, 12, 1, 9))
    try:
        yield records
    finally:
        await engine.dispose()


async def test_pause_codes_are_defined_retired_and_recorded(desk: DeskRecords) -> None:
    t = local(2026, 12, 1, 10)
    assert [c.label for c in await desk.pause_codes()][:2] == ["休息", "用餐"]
    await desk.define_pause_code("质检", "质检反馈", "王主管", t)
    code = await desk.pause_code("质检")
    assert code is not None and code.label == "质检反馈"
    with pytest.raises(DeskInputError, match="code"):
        await desk.define_pause_code("a b", "x", "王主管", t)
    assert await desk.retire_pause_code("lunch")
    assert "lunch" not in {c.code for c in await desk.pause_codes()}
    assert "lunch" in {c.code for c in await desk.pause_codes(active_only=False)}
    await desk.pause_started("701", "春季宽带", code, t)
    await desk.pause_ended("701", t + timedelta(minutes=7))
    [p] = await desk.pauses("701")
    assert (p.code, p.label, p.ended_at) == ("质检", "质检反馈", t + timedelta(minutes=7))


async def test_answers_and_callbacks_are_kept_with_the_call(desk: DeskRecords) -> None:
    t = local(2026, 12, 1, 10)
    await desk.record_answers(
        "a1", "701", [Answer("questionnaire", "q1", "您暂不办理的主要原因是？", "价格偏高")], t
    )
    assert (await desk.answers("a1"))[0].answer == "价格偏高"
    cb = await desk.add_callback(
        Callback(
            0,
            "7",
            "春季宽带",
            "a1",
            "701",
            "宽带",
            t + timedelta(days=31),
            t + timedelta(days=31, minutes=30),
        ),
        t,
    )
    assert (await desk.callbacks_for("701"))[0].id == cb.id
    assert (await desk.open_callback_for_lead("7")) == cb
    await desk.callback_done(cb.id, "a2", t + timedelta(days=31))
    assert await desk.callbacks_for("701") == []


# ---------------------------------------------------------------- public holidays


def test_public_holidays_and_adjusted_working_days_shape_the_windows() -> None:
    from compliance.engine import evaluate, next_window_open
    from compliance.model import CallRequest, ListStatus

    policy = parse_policy(DEMO_POLICY, "demo policy")
    segment = policy.segments["default"]
    national_day = local(2026, 10, 1, 10)  # a Thursday, 国庆节
    assert policy.calendar.day_off(national_day.date()) == "国庆节"
    d = evaluate(
        policy, CallRequest(NUMBER, "c", "p", national_day, "010-58001234"), [], ListStatus()
    )
    assert [r.code for r in d.reasons] == [ReasonCode.OUTSIDE_CALLING_HOURS]
    assert "public holiday (国庆节)" in d.reasons[0].message
    # The 2026 National Day holiday is 10-01..10-07: the next opening is Thursday 10-08.
    assert next_window_open(policy, segment, national_day) == local(2026, 10, 8, 9)
    # A Sunday worked in exchange (调休) is called like a Monday.
    sunday_worked = next(
        day for day in sorted(policy.calendar.workdays) if day.weekday() == 6 and day.year == 2026
    )
    at = local(sunday_worked.year, sunday_worked.month, sunday_worked.day, 10)
    assert evaluate(
        policy, CallRequest(NUMBER, "c", "p", at, "010-58001234"), [], ListStatus()
    ).allowed
    off = parse_policy(
        DEMO_POLICY + '\n[calendar]\nchina_public_holidays = false\ndays_off = ["2026-12-02"]\n',
        "site",
    )
    assert evaluate(
        off, CallRequest(NUMBER, "c", "p", national_day, "010-58001234"), [], ListStatus()
    ).allowed
    assert not evaluate(
        off, CallRequest(NUMBER, "c", "p", local(2026, 12, 2, 10), "010-58001234"), [], ListStatus()
    ).allowed


def test_cli_prints_times_in_the_policy_zone_to_the_minute() -> None:
    from datetime import UTC

    from compliance.cli import format_decision
    from compliance.model import Decision, Reason

    retry = datetime(2026, 12, 1, 1, 0, 0, 123456, tzinfo=UTC)  # 09:00 in Shanghai
    decision = Decision(
        False,
        (Reason(ReasonCode.OUTSIDE_CALLING_HOURS, "A.4", "outside hours", retry),),
        retry,
        "v1",
    )
    text = format_decision(NUMBER, "春季宽带", "宽带", decision, SHANGHAI)
    assert "retry at 2026-12-01T09:00+08:00" in text
    assert "earliest retry: 2026-12-01T09:00+08:00" in text
    assert "春季宽带" in text and NUMBER not in text
