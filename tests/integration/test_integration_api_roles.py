"""Who may use which route of the dialer API ``dialer serve`` mounts: the shared token,
and the users' own tokens (the identity store) acting with their roles.

The real stack (simpbx over sockets, SQLite, the recordings index and its users);
no campaign needs to run: the guard answers before any handler does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from compliance.policy import parse_policy
from dialer.app import DialerStack, http_app, running
from dialer.config import HttpSettings
from dialer.http_api import Access, allowed
from dialer.ports import ShiftedClock
from dialer.runner import RunnerConfig
from identity.model import Principal, Role
from recordings.service import DIALER
from simulation.demo import business_hours_start, demo_stack, seed_campaign
from simulation.demo_data import DEMO_POLICY, campaign_spec, numbers_ending
from simulation.simpbx.server import running_simpbx

pytestmark = pytest.mark.timeout(60)
SHARED = "dialer-shared-token"


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[DialerStack]:
    monkeypatch.setenv("DIALER_NUMBER_KEY", "integration-secret-key-0123456789abcdef")
    policy = parse_policy(DEMO_POLICY, "demo policy")
    clock = ShiftedClock(business_hours_start(policy))
    async with (
        running_simpbx(time_scale=10.0, recordings_dir=tmp_path / "rec") as sim,
        demo_stack(
            tmp_path,
            sim.base_url,
            policy=policy,
            clock=clock,
            config=RunnerConfig(),
            with_recordings=True,
        ) as st,
    ):
        st.settings = replace(st.settings, http=HttpSettings(token=SHARED))
        await seed_campaign(
            st,
            numbers_ending("3", 2, seed=5),
            spec=campaign_spec("roles"),
            blacklist=[],
            at=clock.wall(),
        )
        yield st


@pytest.mark.parametrize(
    ("user", "access", "agent", "expected"),
    [
        (Principal("ann", Role.AGENT, agent_id="701"), Access.AGENT, "701", True),
        (Principal("ann", Role.AGENT, agent_id="701"), Access.AGENT, "702", False),
        (Principal("bob", Role.AGENT), Access.AGENT, "", False),  # an agent user with no id
        (Principal("ann", Role.AGENT, agent_id="701"), Access.READ, "", False),
        (Principal("ann", Role.AGENT, agent_id="701"), Access.CONTROL, "", False),
        (Principal("sam", Role.SUPERVISOR), Access.AGENT, "701", True),
        (Principal("sam", Role.SUPERVISOR), Access.CONTROL, "", True),
        (Principal("carol", Role.COMPLIANCE), Access.READ, "", True),
        (Principal("carol", Role.COMPLIANCE), Access.CONTROL, "", False),
        (Principal("carol", Role.COMPLIANCE), Access.AGENT, "701", False),
        (Principal("root", Role.ADMIN), Access.CONTROL, "", True),
        (Principal("anyone", Role.AGENT), Access.OPEN, "", True),
    ],
)
def test_the_role_table(user: Principal, access: Access, agent: str, expected: bool) -> None:
    assert allowed(user, access, agent) is expected


async def test_users_act_with_their_roles(stack: DialerStack) -> None:
    service = stack.identity
    await service.add_user(DIALER, "ann", Role.AGENT, agent_id="701")
    await service.add_user(DIALER, "sam", Role.SUPERVISOR)
    await service.add_user(DIALER, "carol", Role.COMPLIANCE)
    ann = (await service.issue_token(DIALER, "ann"))[1]
    sam = (await service.issue_token(DIALER, "sam"))[1]
    carol = (await service.issue_token(DIALER, "carol"))[1]
    gone_id, gone = await service.issue_token(DIALER, "sam")
    await service.revoke_token(DIALER, gone_id)

    client = TestClient(TestServer(http_app(stack)))
    await client.start_server()

    async def status(method: str, path: str, token: str | None, **kw: Any) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        async with client.request(method, path, headers=headers, **kw) as resp:
            return resp.status

    try:
        # agent actions go through the runner's loop: it must be running to answer
        async with running(stack):
            # open to anyone, whatever its state
            assert await status("GET", "/api/health", None) in (200, 503)
            assert await status("GET", "/api/campaigns", None) == 401
            assert await status("GET", "/api/campaigns", "not-a-token") == 401
            assert await status("GET", "/api/campaigns", gone) == 401  # revoked
            assert await status("GET", "/api/campaigns", SHARED) == 200
            # an agent: only its own agent routes (404: not logged in, but past the guard)
            assert await status("GET", "/api/agents/701", ann) == 404
            assert await status("POST", "/api/agents/701/pause", ann) == 409
            assert await status("GET", "/api/agents/702", ann) == 403
            assert await status("POST", "/api/agents/702/logout", ann) == 403
            assert await status("GET", "/api/campaigns", ann) == 403
            assert await status("POST", "/api/campaigns/roles/pause", ann) == 403
            assert await status("POST", "/api/inbound", ann, json={"waiting": 3}) == 403
            # compliance reads, never steers
            assert await status("GET", "/api/campaigns", carol) == 200
            assert await status("GET", "/api/campaigns/roles/figures", carol) in (200, 404)
            assert await status("POST", "/api/campaigns/roles/pause", carol) == 403
            assert await status("GET", "/api/agents/701", carol) == 403
            # a supervisor steers campaigns and any agent
            assert await status("POST", "/api/campaigns/roles/pause", sam) == 200
            assert await status("GET", "/api/agents/701", sam) == 404
            assert await status("POST", "/api/inbound", sam, json={"waiting": 0}) == 200
            # the recordings API keeps its own guard under the same server
            assert await status("GET", "/api/recordings/audit", ann) == 403
    finally:
        await client.close()
