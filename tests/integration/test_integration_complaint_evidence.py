"""A complaint through the HTTP API ``dialer serve`` mounts: blacklist at once, and an
evidence bundle carrying each call's timeline and the compliance gate's decisions.

The real stack (simpbx over sockets, SQLite, the real gate, ledger and attempt
log) runs a small campaign with simulated agents; then the compliance officer
registers a complaint for one called number and exports the case.
"""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from compliance.numbers import mask
from compliance.policy import parse_policy
from dialer.app import DialerStack, http_app, running
from dialer.config import HttpSettings
from dialer.ports import ShiftedClock
from dialer.runner import RunnerConfig
from dialer.timeline import AttemptCallTimeline
from identity.model import Role
from recordings.service import DIALER
from simulation.agents import SimulatedAgents
from simulation.demo import business_hours_start, demo_stack, seed_campaign
from simulation.demo_data import DEMO_POLICY, campaign_spec, numbers_ending
from simulation.simpbx.server import running_simpbx

pytestmark = pytest.mark.timeout(120)
CAMPAIGN = "itg"
DIALER_TOKEN = "dialer-shared-token"


@pytest.fixture(params=["sqlite", "postgres", "postgres+redis"])
def storage(request: pytest.FixtureRequest) -> dict[str, str]:
    """SQLite, PostgreSQL, or PostgreSQL with the Redis ledger (``demo_stack`` keywords)."""
    db: dict[str, str] = {}
    if request.param.startswith("postgres"):
        pg = request.getfixturevalue("pg_target")
        db = {"db_url": pg.url, "db_schema": pg.schema}
    if request.param.endswith("redis"):
        rt = request.getfixturevalue("redis_target")
        db |= {"redis_url": rt.url, "redis_prefix": rt.prefix}
    return db


@pytest.fixture
async def stack(
    storage: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[DialerStack]:
    monkeypatch.setenv("DIALER_NUMBER_KEY", "integration-secret-key-0123456789abcdef")
    policy = parse_policy(DEMO_POLICY, "demo policy")
    clock = ShiftedClock(business_hours_start(policy))
    config = RunnerConfig(
        wrapup_limit=5.0,
        drain_timeout=20.0,
        tick=0.02,
        max_claim=50,
    )
    async with (
        running_simpbx(time_scale=10.0, recordings_dir=tmp_path / "rec") as sim,
        demo_stack(
            tmp_path,
            sim.base_url,
            policy=policy,
            clock=clock,
            config=config,
            with_recordings=True,
            **storage,
        ) as st,
    ):
        st.settings = replace(st.settings, http=HttpSettings(token=DIALER_TOKEN))
        yield st


async def run_campaign(st: DialerStack, numbers: list[str], blacklist: list[str]) -> None:
    await seed_campaign(
        st,
        numbers,
        spec=campaign_spec(CAMPAIGN),
        blacklist=blacklist,
        at=st.runner.clock.wall() - timedelta(hours=1),
    )
    agents = SimulatedAgents(
        st.runner, CAMPAIGN, ["201", "202", "203"], seed=5, max_talk=0.5, wrap_seconds=0.05
    )
    async with running(st, burst=True) as task:
        await agents.login_all()
        agents_task = asyncio.create_task(agents.run())
        try:
            async with asyncio.timeout(90):
                await asyncio.shield(task)
        finally:
            agents.stop()
            await agents_task


async def call(client: TestClient[Any, Any], method: str, path: str, token: str, **kw: Any) -> Any:
    resp = await client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)
    body = await resp.read()
    return resp.status, body


async def test_complaint_via_serve_api_blacklists_and_bundles_timeline_and_decisions(
    stack: DialerStack, tmp_path: Path
) -> None:
    numbers = numbers_ending("19", 6, seed=31)
    refused_number = numbers_ending("1", 1, seed=77)[0]
    await run_campaign(stack, [*numbers, refused_number], [refused_number])
    assert stack.recordings is not None
    attempts = await stack.attempts.all()
    connected = [a for a in attempts if a.connected and a.recording]
    assert connected, "no call reached an agent"
    target = connected[0]
    number = target.number
    assert not (await stack.stores.lists.status(number)).blacklisted

    await stack.identity.add_user(DIALER, "carol", Role.COMPLIANCE)
    carol = (await stack.identity.issue_token(DIALER, "carol"))[1]
    client = TestClient(TestServer(http_app(stack)))
    await client.start_server()
    try:
        # The dialer API keeps its own token; the recordings API its users' tokens.
        assert (await call(client, "GET", "/api/campaigns", "wrong"))[0] == 401
        assert (await call(client, "GET", "/api/campaigns", DIALER_TOKEN))[0] == 200
        status, body = await call(
            client,
            "POST",
            "/api/recordings/complaints",
            carol,
            json={"number": number, "channel": "call", "text": "called me during dinner"},
        )
        assert status == 201, body[:300]
        case = json.loads(body)
        assert (await stack.stores.lists.status(number)).blacklisted, mask(number)
        status, body = await call(
            client,
            "GET",
            f"/api/recordings/complaints/{case['id']}/export?reason=regulator%20request",
            carol,
        )
        assert status == 200, body[:300]
    finally:
        await client.close()

    bundle = tmp_path / "case.zip"
    bundle.write_bytes(body)
    assert await stack.recordings.verify_bundle(bundle) == []
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        names = set(zf.namelist())
        assert f"recordings/{target.recording}.wav" in names
        timeline = json.loads(zf.read(f"calls/{target.attempt_id}/timeline.json"))
        decisions = json.loads(zf.read(f"calls/{target.attempt_id}/decisions.json"))
        raw_timeline = zf.read(f"calls/{target.attempt_id}/timeline.json").decode()
    events = [line["event"] for line in timeline]
    for expected in ("attempt_created", "ledger_attempt", "connected_to_agent", "call_ended"):
        assert expected in events, events
    # The ledger's reservation carries the time the call was asked for, which may be a
    # moment before the attempt row: both open the story, whatever their order.
    assert set(events[:2]) == {"attempt_created", "ledger_attempt"}, events
    assert events.index("connected_to_agent") < events.index("call_ended")
    assert [line["at"] for line in timeline] == sorted(line["at"] for line in timeline)
    ended = next(line for line in timeline if line["event"] == "call_ended")
    assert ended["detail"]["connected"] is True
    assert ended["detail"]["outcome"] == target.outcome
    assert number not in raw_timeline and mask(number) in raw_timeline
    assert len(decisions) == 1
    (decision,) = decisions
    assert decision["allowed"] is True and decision["reserved"] is True
    assert decision["attempt_id"] == target.attempt_id
    assert decision["policy_version"] == stack.policy.version
    assert {"allowed", "reasons", "policy_version", "at"} <= decision.keys()

    # A refused attempt: its story ends at the gate, and the decision says why.
    refused = [a for a in attempts if a.number == refused_number]
    assert refused and all(a.stage == "refused" for a in refused)
    source = AttemptCallTimeline(stack.attempts, stack.stores.ledger)
    refused_decisions = await source.decisions(refused[0].attempt_id)
    assert [d["allowed"] for d in refused_decisions] == [False]
    codes = [r["code"] for r in refused_decisions[0]["reasons"]]
    assert "blacklisted" in codes, codes
    refused_events = [line["event"] for line in await source.timeline(refused[0].attempt_id)]
    assert refused_events == ["attempt_created", "refused_by_gate"]
    assert await source.timeline("no-such-attempt") == ()
    assert await source.decisions("no-such-attempt") == ()
