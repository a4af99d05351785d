"""dialer_check end to end with the real compliance gate (SQLite, and PostgreSQL once)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from agi_scripts import variables as v
from agi_scripts.dialer_check import DialerCheck
from agi_scripts.optout import OptOut
from agi_scripts.server import AgiServer
from agi_scripts.testing import FakeAsterisk, call_env
from compliance.campaigns import parse_campaign_spec
from compliance.gate import ComplianceStores, open_compliance
from compliance.lists import ListReason
from compliance.policy import parse_policy

POLICY = 'version = "agi-test-1"\n[caller_id]\npool = ["010-58001234"]\n'
CALLER_ID = "01058001234"
THURSDAY_10AM = datetime(2026, 11, 26, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


async def _stores(url: str, schema: str | None = None) -> ComplianceStores:
    stores = await open_compliance(url, parse_policy(POLICY), schema=schema)
    await stores.campaigns.create(
        parse_campaign_spec(
            {
                "name": "demo",
                "products": ["loan", "card"],
                "caller_id": "010-58001234",
                "script": "Good morning, this is Example Bank.",
            }
        )
    )
    return stores


@pytest.fixture
async def stores(sqlite_url: str) -> AsyncIterator[ComplianceStores]:
    s = await _stores(sqlite_url)
    yield s
    await s.close()


@pytest.fixture
async def server(make_server, stores: ComplianceStores) -> AgiServer:
    return await make_server(DialerCheck(stores.gate, clock=lambda: THURSDAY_10AM).routes())


_ids = iter(range(10**6))


def new_uniqueid() -> str:
    return f"1795726108.{next(_ids)}"


async def check(
    server: AgiServer,
    dialer_env: bytes,
    args: list[str],
    channel_vars: dict[str, str] | None = None,
    uniqueid: str | None = None,
) -> tuple[dict[str, str], list[str]]:
    env = call_env(dialer_env, args=args, uniqueid=uniqueid or new_uniqueid())
    result = await FakeAsterisk("127.0.0.1", server.port, channel_vars=channel_vars).run(env)
    assert result.unknown == [] and result.pipelined == [] and result.closed_by_server
    return result.set_vars, result.commands


def dialplan_attempt_id(uniqueid: str) -> str:
    """What [agent-manual] sets after an ALLOW: manual-${UNIQUEID}."""
    return f"manual-{uniqueid}"


async def test_allow_reserves_an_attempt(server, stores, dialer_env) -> None:
    uniqueid = new_uniqueid()
    args = ["13812345678", "demo", "loan", CALLER_ID]
    got, commands = await check(server, dialer_env, args, uniqueid=uniqueid)
    # one command: the decision; the dialplan derives the attempt id from ${UNIQUEID}
    assert got == {v.DIALER_DECISION: "ALLOW"}
    assert commands == ['SET VARIABLE DIALER_DECISION "ALLOW"']
    history = await stores.ledger.history("13812345678")
    assert [e.attempt_id for e in history] == [dialplan_attempt_id(uniqueid)]


async def test_empty_arguments_count_as_given(server, stores, dialer_env) -> None:
    """``dialer-check,${EXTEN},demo,,`` (product and caller id expanded to nothing):
    no GET VARIABLE; the gate picks the campaign's product and caller id."""
    got, commands = await check(
        server,
        dialer_env,
        ["13812345678", "demo", "", ""],
        channel_vars={v.DIALER_PRODUCT: "card", v.DIALER_CALLER_ID: "5551000"},
    )
    assert got == {v.DIALER_DECISION: "ALLOW"}
    assert commands == ['SET VARIABLE DIALER_DECISION "ALLOW"']
    [event] = await stores.ledger.history("13812345678")
    assert event.product == "loan"  # the campaign's first product, not the channel's "card"


async def test_second_call_same_product_is_refused(server, dialer_env) -> None:
    args = ["13812345678", "demo", "loan", CALLER_ID]
    assert (await check(server, dialer_env, args))[0][v.DIALER_DECISION] == "ALLOW"
    got, _ = await check(server, dialer_env, args)
    assert got[v.DIALER_DECISION] == "BLOCK"
    assert got[v.DIALER_REASON] == "product_interval"


async def test_blacklisted_number_is_refused(server, stores, dialer_env) -> None:
    await stores.lists.add("13812345678", ListReason.COMPLAINT, source="test", actor="qa")
    got, _ = await check(server, dialer_env, ["13812345678", "demo", "loan", CALLER_ID])
    assert got == {v.DIALER_DECISION: "BLOCK", v.DIALER_REASON: "blacklisted"}


async def test_caller_id_outside_the_pool_is_refused(server, dialer_env) -> None:
    got, _ = await check(server, dialer_env, ["13812345678", "demo", "loan", "5551000"])
    assert got[v.DIALER_DECISION] == "BLOCK"
    assert got[v.DIALER_REASON] == "caller_id_not_in_pool"


async def test_missing_arguments_are_read_from_channel_variables(server, dialer_env) -> None:
    """The reference passes only number and campaign; the rest comes from the channel."""
    got, commands = await check(
        server,
        dialer_env,
        ["13812345678", "demo"],
        channel_vars={v.DIALER_PRODUCT: "card", v.DIALER_CALLER_ID: CALLER_ID},
    )
    assert commands[:2] == ["GET VARIABLE DIALER_PRODUCT", "GET VARIABLE DIALER_CALLER_ID"]
    assert got[v.DIALER_DECISION] == "ALLOW"


async def test_without_a_caller_id_the_campaign_number_is_checked(server, dialer_env) -> None:
    got, commands = await check(server, dialer_env, ["13812345678", "demo", "loan"])
    assert commands[0] == "GET VARIABLE DIALER_CALLER_ID"  # unset: the agent's 5551000 unused
    assert got[v.DIALER_DECISION] == "ALLOW"


async def test_reference_block_unchanged(server, dialer_env) -> None:
    """fastagi_dialer-check_5550001 as captured: 7-digit 5550001 is no customer number."""
    result = await FakeAsterisk("127.0.0.1", server.port).run(dialer_env)
    assert result.set_vars[v.DIALER_DECISION] == "BLOCK"
    assert result.set_vars[v.DIALER_REASON] == "invalid_number"


async def test_unknown_campaign_is_refused(server, dialer_env) -> None:
    got, _ = await check(server, dialer_env, ["13812345678", "nope", "loan", CALLER_ID])
    assert got == {v.DIALER_DECISION: "BLOCK", v.DIALER_REASON: "unknown_campaign"}


async def test_gate_failure_fails_closed(server, stores, dialer_env) -> None:
    async with stores.engine.begin() as conn:
        await conn.execute(text("DROP TABLE campaigns"))
    got, _ = await check(server, dialer_env, ["13812345678", "demo", "loan", CALLER_ID])
    assert got == {
        v.AGI_STATUS: "FAILED",
        v.AGI_ERROR: "handler_error",
        v.DIALER_DECISION: "BLOCK",
        v.DIALER_REASON: "check_failed",
    }


async def test_racing_checks_reserve_once(server, dialer_env) -> None:
    args = ["13812345678", "demo", "loan", CALLER_ID]
    results = await asyncio.gather(*(check(server, dialer_env, args) for _ in range(5)))
    decisions = sorted(got[v.DIALER_DECISION] for got, _ in results)
    assert decisions == ["ALLOW", "BLOCK", "BLOCK", "BLOCK", "BLOCK"]


async def test_allow_and_refuse_on_postgres(make_server, pg_target, dialer_env) -> None:
    stores = await _stores(pg_target.url, schema=pg_target.schema)
    try:
        server = await make_server(DialerCheck(stores.gate, clock=lambda: THURSDAY_10AM).routes())
        args = ["13812345678", "demo", "loan", CALLER_ID]
        assert (await check(server, dialer_env, args))[0][v.DIALER_DECISION] == "ALLOW"
        assert (await check(server, dialer_env, args))[0][v.DIALER_REASON] == "product_interval"
    finally:
        await stores.close()


async def result(server: AgiServer, dialer_env: bytes, attempt_id: str, status: str) -> dict:
    env = call_env(dialer_env, script="dialer-result", args=[attempt_id, status], extension="h")
    return (await FakeAsterisk("127.0.0.1", server.port).run(env)).set_vars


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("ANSWER", "answered"),
        ("BUSY", "busy"),
        ("NOANSWER", "no_answer"),
        ("CANCEL", "no_answer"),
        ("CONGESTION", "congestion"),
        ("CHANUNAVAIL", "congestion"),
        ("DONTCALL", "rejected"),
        ("INVALIDARGS", "failed"),
        ("", "cancelled"),
    ],
)
async def test_dialer_result_resolves_the_reservation(
    server, stores, dialer_env, status, outcome
) -> None:
    uniqueid = new_uniqueid()
    args = ["13812345678", "demo", "loan", CALLER_ID]
    got, _ = await check(server, dialer_env, args, uniqueid=uniqueid)
    assert got[v.DIALER_DECISION] == "ALLOW"
    attempt = dialplan_attempt_id(uniqueid)
    assert await result(server, dialer_env, attempt, status) == {v.DIALER_RESULT: outcome}
    [event] = await stores.ledger.history("13812345678")
    assert event.outcome.value == outcome


async def test_dialer_result_for_an_unknown_attempt_fails_visibly(server, dialer_env) -> None:
    got = await result(server, dialer_env, "manual-nope", "ANSWER")
    assert got == {v.AGI_STATUS: "FAILED", v.AGI_ERROR: "handler_error"}


async def test_optout_key_press_blacklists_the_number(make_server, stores, dialer_env) -> None:
    server = await make_server(OptOut(stores.lists).routes())
    env = call_env(dialer_env, script="optout", args=["13812345678", "dl-42", "demo"])
    got = (await FakeAsterisk("127.0.0.1", server.port).run(env)).set_vars
    assert got == {v.DIALER_OPTOUT: "1"}
    assert (await stores.lists.status("13812345678")).blacklisted
    bad = call_env(dialer_env, script="optout", args=["12"])
    got = (await FakeAsterisk("127.0.0.1", server.port).run(bad)).set_vars
    assert got[v.DIALER_OPTOUT] == "0" and got[v.AGI_STATUS] == "FAILED"
