"""desk_check and desk_rate end to end: fake Asterisk -> TCP -> server -> DeskService -> SQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from agi_scripts import variables as v
from agi_scripts.desk import DeskService
from agi_scripts.desk_check import DeskScripts
from agi_scripts.desk_config import parse_desk_config
from agi_scripts.desk_store import DeskStore, GrantError
from agi_scripts.server import AgiServer
from agi_scripts.testing import FakeAsterisk, call_env

DATA = Path(__file__).parent / "data"
DESK_TOML = """
[numbering]
home_area = "10"

[policy]
quota = "block"

[extensions]
"201" = "executive"
"209" = "fax"
"230" = "local"
"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def _desk(url: str, clock: Clock, schema: str | None = None) -> DeskService:
    store = await DeskStore.open(url, schema=schema)
    # no cache: every check reads the store, so the tests see each change at once
    return DeskService(parse_desk_config(DESK_TOML), store, clock=clock, cache_ttl_s=0, stale_s=0)


@pytest.fixture
async def desk(sqlite_url: str, clock: Clock) -> AsyncIterator[DeskService]:
    service = await _desk(sqlite_url, clock)
    yield service
    await service.aclose()
    await service.store.close()


@pytest.fixture
async def server(make_server, desk: DeskService) -> AgiServer:
    return await make_server(DeskScripts(desk).routes())


_ids = iter(range(10**6))


async def desk_call(
    server: AgiServer, desk_env: bytes, number: str, extension: str = "201", **peer: object
) -> dict[str, str]:
    env = call_env(
        desk_env,
        args=[number],
        callerid=extension,
        extension=number,
        uniqueid=f"1795726087.{next(_ids)}",
    )
    result = await FakeAsterisk("127.0.0.1", server.port, **peer).run(env)  # type: ignore[arg-type]
    assert result.unknown == [] and result.pipelined == [] and result.closed_by_server
    return result.set_vars


async def rate(
    server: AgiServer, desk_env: bytes, number: str, billsec: int, extension: str, uniqueid: str
) -> dict[str, str]:
    env = call_env(
        desk_env,
        script="desk-rate",
        args=[number, str(billsec), extension],
        callerid=extension,
        extension="h",
        uniqueid=uniqueid,
    )
    result = await FakeAsterisk("127.0.0.1", server.port).run(env)
    return result.set_vars


async def test_reference_block_unchanged_is_refused_as_invalid(server, desk_env) -> None:
    # 5550001 is a 7-digit number: not a Beijing subscriber number (8 digits)
    result = await FakeAsterisk("127.0.0.1", server.port).run(desk_env)
    assert result.commands == [
        'SET VARIABLE DESK_DECISION "BLOCK"',
        'SET VARIABLE DESK_REASON "invalid_number"',
    ]
    assert result.set_vars == {v.DESK_DECISION: "BLOCK", v.DESK_REASON: "invalid_number"}


@pytest.mark.parametrize(
    ("extension", "number", "expected"),
    [
        (
            "201",
            "88886666",
            {"DESK_DECISION": "ALLOW", "DESK_DIAL": "88886666"},
        ),
        (
            "201",
            "02088886666",
            {"DESK_DECISION": "ALLOW", "DESK_DIAL": "1790902088886666"},
        ),
        (
            "209",
            "02088886666",
            {"DESK_DECISION": "ALLOW", "DESK_DIAL": "1790902088886666"},
        ),
        (
            "230",
            "13812345678",
            {"DESK_DECISION": "ALLOW", "DESK_DIAL": "13812345678"},
        ),
        (
            "999",
            "88886666",
            {"DESK_DECISION": "ALLOW", "DESK_DIAL": "88886666"},
        ),  # unlisted extension: class local
        (
            "230",
            "02088886666",
            {"DESK_DECISION": "BLOCK", "DESK_REASON": "long_distance_not_permitted"},
        ),
        ("209", "13812345678", {"DESK_DECISION": "BLOCK", "DESK_REASON": "mobile_not_permitted"}),
        ("201", "16812345678", {"DESK_DECISION": "BLOCK", "DESK_REASON": "premium_rate"}),
        (
            "201",
            "+14155552671",
            {"DESK_DECISION": "BLOCK", "DESK_REASON": "international_not_permitted"},
        ),
    ],
)
async def test_desk_check_allow_and_refuse(server, desk_env, extension, number, expected) -> None:
    assert await desk_call(server, desk_env, number, extension) == expected


async def test_grant_enables_long_distance_until_it_expires(server, desk, desk_env, clock) -> None:
    assert (await desk_call(server, desk_env, "02088886666", "230"))[v.DESK_DECISION] == "BLOCK"
    grant = await desk.add_grant(
        "230",
        "alice",
        ["bob", "carol"],
        clock.now,
        clock.now + timedelta(days=7),
        "project in Guangzhou",
    )
    got = await desk_call(server, desk_env, "02088886666", "230")
    assert got == {"DESK_DECISION": "ALLOW", "DESK_DIAL": "1790902088886666"}
    clock.now = grant.expires_at
    got = await desk_call(server, desk_env, "02088886666", "230")
    assert got[v.DESK_REASON] == "long_distance_not_permitted"


async def test_revoked_grant_stops_long_distance(server, desk, desk_env, clock) -> None:
    grant = await desk.add_grant(
        "230", "alice", ["bob", "carol"], clock.now, clock.now + timedelta(days=7)
    )
    assert (await desk_call(server, desk_env, "02088886666", "230"))[v.DESK_DECISION] == "ALLOW"
    await desk.revoke_grant(grant.id, "hr-wang")
    assert (await desk_call(server, desk_env, "02088886666", "230"))[v.DESK_DECISION] == "BLOCK"


async def quota_scenario(server: AgiServer, desk: DeskService, desk_env: bytes) -> None:
    # local extension 230: quota 80 yuan. 26 minutes of mobile at 0.15 = 3.90 each.
    for i in range(20):  # 20 x 3.90 = 78.00: under the quota
        assert (await rate(server, desk_env, "13812345678", 26 * 60, "230", f"q.{i}"))[
            v.DESK_COST
        ] == "390"
    assert await desk.store.month_spend("230", "2026-11") == 7800
    assert (await desk_call(server, desk_env, "13812345678", "230"))[v.DESK_DECISION] == "ALLOW"
    # the call that crosses the quota: allowed above, rated now
    await rate(server, desk_env, "13812345678", 26 * 60, "230", "q.cross")
    assert await desk.store.month_spend("230", "2026-11") == 8190
    got = await desk_call(server, desk_env, "88886666", "230")
    assert got == {"DESK_DECISION": "BLOCK", "DESK_REASON": "quota_exhausted"}
    # emergency numbers with an exhausted quota
    for number in ("110", "119", "120", "122"):
        got = await desk_call(server, desk_env, number, "230")
        assert got == {"DESK_DECISION": "ALLOW", "DESK_DIAL": number}
    # internal calls are free: not blocked either
    assert (await desk_call(server, desk_env, "8001", "230"))[v.DESK_DECISION] == "ALLOW"
    # another extension is not affected
    assert (await desk_call(server, desk_env, "88886666", "201"))[v.DESK_DECISION] == "ALLOW"


async def test_quota_blocks_after_the_crossing_call_sqlite(server, desk, desk_env) -> None:
    await quota_scenario(server, desk, desk_env)


async def test_quota_blocks_after_the_crossing_call_postgres(
    make_server, pg_target, clock, desk_env
) -> None:
    desk = await _desk(pg_target.url, clock, schema=pg_target.schema)
    try:
        server = await make_server(DeskScripts(desk).routes())
        await quota_scenario(server, desk, desk_env)
    finally:
        await desk.store.close()


async def test_rating_is_idempotent_per_uniqueid(server, desk, desk_env) -> None:
    assert (await rate(server, desk_env, "02088886666", 125, "201", "r.1"))[v.DESK_COST] == "90"
    assert (await rate(server, desk_env, "02088886666", 125, "201", "r.1"))[v.DESK_COST] == "90"
    calls = await desk.store.calls("2026-11")
    assert [(c.call_id, c.cost_fen, c.dial) for c in calls] == [("r.1", 90, "1790902088886666")]


async def test_month_follows_the_policy_time_zone(server, desk, desk_env, clock) -> None:
    clock.now = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)  # 00:30 on 1 December in Shanghai
    await rate(server, desk_env, "88886666", 60, "201", "tz.1")
    assert [c.month for c in await desk.store.calls("2026-12")] == ["2026-12"]


async def test_database_failure_fails_closed(server, desk, desk_env) -> None:
    async with desk.store.engine.begin() as conn:
        await conn.execute(text("DROP TABLE desk_grants"))
    got = await desk_call(server, desk_env, "88886666", "201")
    assert got == {
        v.AGI_STATUS: "FAILED",
        v.AGI_ERROR: "handler_error",
        v.DESK_DECISION: "BLOCK",
        v.DESK_REASON: "check_failed",
    }
    # emergency calls do not touch the database
    assert (await desk_call(server, desk_env, "110", "201"))[v.DESK_DECISION] == "ALLOW"


async def test_caller_hung_up_before_the_answer(server, desk_env) -> None:
    """Replays fastagi_desk-check_5550005: the caller is gone before the first command."""
    env = (DATA / "fastagi_desk-check_5550005_env.raw").read_bytes()
    env = call_env(env, args=["88886666"])
    peer = FakeAsterisk("127.0.0.1", server.port, hangup_after=0)
    result = await peer.run(env)
    # every SET still goes out (the h extension may read them), then AgiHangup
    assert [c.split(" ")[2] for c in result.commands] == ["DESK_DIAL", "DESK_DECISION"]
    assert server.stats.get("hangup") == 1


async def test_desk_rate_refuses_bad_arguments(server, desk, desk_env) -> None:
    got = await rate(server, desk_env, "88886666", -5, "201", "bad.1")  # "-5": not whole seconds
    assert got == {v.AGI_STATUS: "FAILED", v.AGI_ERROR: "protocol_error", v.DESK_COST: ""}
    got = await rate(server, desk_env, "12", 60, "201", "bad.2")  # not a number we can rate
    assert got[v.AGI_STATUS] == "FAILED" and got[v.DESK_COST] == ""
    assert await desk.store.calls("2026-11") == []


async def test_cache_serves_stale_state_while_one_refresh_runs(sqlite_url, clock) -> None:
    """A grant added by another process (the CLI) shows up after the TTL, without a stall."""
    store = await DeskStore.open(sqlite_url)
    server_side = DeskService(
        parse_desk_config(DESK_TOML), store, clock=clock, cache_ttl_s=0.05, stale_s=10
    )
    cli_side = await _desk(sqlite_url, clock)
    try:
        assert not (await server_side.check("230", "02088886666")).allowed  # loads the cache
        await cli_side.add_grant(
            "230", "alice", ["bob", "carol"], clock.now, clock.now + timedelta(days=1)
        )
        assert not (await server_side.check("230", "02088886666")).allowed  # fresh cache
        await asyncio.sleep(0.06)
        # stale: answered from the cache at once, one refresh started beside
        assert not (await server_side.check("230", "02088886666")).allowed
        assert len(server_side._loads) == 1
        await asyncio.wait(list(server_side._loads.values()))
        assert (await server_side.check("230", "02088886666")).allowed
        # grant expiry needs no refresh: decide() checks it against the clock every time
        clock.now += timedelta(days=1)
        assert not (await server_side.check("230", "02088886666")).allowed
    finally:
        await server_side.aclose()
        await cli_side.aclose()
        await store.close()
        await cli_side.store.close()


async def grant_round_trip(store: DeskStore, clock: Clock) -> None:
    try:
        now = clock.now
        g = await store.add_grant(
            "230",
            "alice",
            ["bob", "carol"],
            now,
            now + timedelta(days=3),
            reason="trip",
            created_at=now,
        )
        with pytest.raises(GrantError, match="requester cannot approve"):
            await store.add_grant(
                "230", "bob", ["bob", "carol"], now, now + timedelta(days=1), created_at=now
            )
        with pytest.raises(GrantError, match="expire after it starts"):
            await store.add_grant("230", "alice", ["bob", "carol"], now, now, created_at=now)
        [active] = await store.grants("230", active_at=now)
        assert active == g and active.approvers == ("bob", "carol")
        assert active.starts_at == now  # aware UTC in, aware UTC out
        assert await store.grants("230", active_at=now + timedelta(days=3)) == []
        revoked = await store.revoke_grant(g.id, by="hr-wang", at=now + timedelta(hours=1))
        assert revoked.revoked_by == "hr-wang"
        assert await store.grants("230", active_at=now + timedelta(hours=2)) == []
        assert [x.id for x in await store.grants()] == [g.id]
        with pytest.raises(GrantError, match="no grant with id 999"):
            await store.revoke_grant(999, by="x", at=now)
    finally:
        await store.close()


async def test_grant_store_round_trip_sqlite(sqlite_url, clock) -> None:
    await grant_round_trip(await DeskStore.open(sqlite_url), clock)


async def test_grant_store_round_trip_postgres(pg_target, clock) -> None:
    await grant_round_trip(await DeskStore.open(pg_target.url, schema=pg_target.schema), clock)
