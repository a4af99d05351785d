"""Scenario harness: the real dialer stack (SQLite or PostgreSQL, optional Redis) against simpbx.

Nothing is faked on the dialer side: the runner talks ARI over real sockets to
the simulated Asterisk, the compliance gate and ledger are the real stores.
Checks read the simpbx request journal (what was really originated).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from compliance.leads import LeadStatus
from compliance.model import AttemptOutcome
from compliance.numbers import mask
from compliance.policy import Policy, parse_policy
from dialer.app import DialerStack, running
from dialer.ports import ShiftedClock
from dialer.runner import RunnerConfig
from simulation.agents import SimulatedAgents
from simulation.demo import business_hours_start, demo_stack, seed_campaign
from simulation.demo_data import DEMO_POLICY, campaign_spec
from simulation.simpbx.server import SimPbx, running_simpbx

CAMPAIGN = "scn"


@dataclass
class Scenario:
    sim: SimPbx
    stack: DialerStack
    clock: ShiftedClock
    policy: Policy
    numbers: list[str] = field(default_factory=list)

    @property
    def runner(self) -> Any:
        return self.stack.runner

    def originated_numbers(self) -> list[str]:
        """The number of every customer call sent to the PBX (POST /channels with a dl- id),
        accepted or not; a retry of the same channel id is the same call, listed once."""
        seen: dict[str, str] = {}
        for r in self.sim.requests:
            channel = r.query.get("channelId", "")
            if r.method == "POST" and r.path == "/channels" and channel.startswith("dl-"):
                seen.setdefault(channel, r.query["endpoint"].split("/", 1)[1].split("@", 1)[0])
        return list(seen.values())

    def accepted_originates(self) -> list[str]:
        return [
            r.query["channelId"]
            for r in self.sim.requests
            if r.method == "POST"
            and r.path == "/channels"
            and r.status == 200
            and r.query.get("channelId", "").startswith("dl-")
        ]

    def recordings_started(self) -> list[str]:
        return [
            r.query["name"]
            for r in self.sim.requests
            if r.method == "POST" and r.path.endswith("/record") and r.status in (200, 201)
        ]

    async def burst(
        self,
        agents: int,
        *,
        max_talk: float = 1.0,
        within: float = 90.0,
        mix: Sequence[tuple[str, float]] | None = None,
        during: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> SimulatedAgents:
        """Log agents in and run the campaign until its leads are drained and calls ended.

        ``during`` runs beside the campaign once the agents are in (fault injection).
        """
        ids = [f"{201 + i}" for i in range(agents)]
        kwargs: dict[str, Any] = {"mix": mix} if mix is not None else {}
        sim_agents = SimulatedAgents(
            self.stack.runner,
            CAMPAIGN,
            ids,
            seed=11,
            max_talk=max_talk,
            wrap_seconds=0.05,
            **kwargs,
        )
        async with running(self.stack, burst=True) as task:
            await sim_agents.login_all()
            agents_task = asyncio.create_task(sim_agents.run())
            fault: asyncio.Task[None] | None = (
                asyncio.create_task(during()) if during is not None else None
            )
            try:
                async with asyncio.timeout(within):
                    await asyncio.shield(task)
                    if fault is not None:
                        await fault
            finally:
                sim_agents.stop()
                await agents_task
                if fault is not None and not fault.done():
                    fault.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await fault
        return sim_agents

    async def lead_statuses(self) -> dict[str, LeadStatus]:
        leads = await self.stack.stores.leads.list_leads(CAMPAIGN)
        return {lead.number_key: lead.status for lead in leads}

    async def reserve_history(self, number: str, times: int, at: datetime) -> None:
        """Put earlier calls in the customer's history (another campaign run this month)."""
        for i in range(times):
            d = await self.stack.stores.gate.check_and_reserve(
                number,
                CAMPAIGN,
                f"earlier-{i}",
                at + timedelta(minutes=i),
                attempt_id=f"pre-{number}-{i}",
            )
            assert d.allowed, (mask(number), d.codes)
            await self.stack.stores.ledger.resolve(f"pre-{number}-{i}", AttemptOutcome.NO_ANSWER)


def scenario_config(**overrides: Any) -> RunnerConfig:
    base: dict[str, Any] = {
        "customer_endpoint": "Local/{number}@sim-customers",
        "wrapup_limit": 5.0,
        "drain_timeout": 20.0,
        "tick": 0.02,
        "max_claim": 50,
    }
    base.update(overrides)
    return RunnerConfig(**base)


@contextlib.asynccontextmanager
async def open_scenario(
    tmp_path: Path,
    numbers: Sequence[str],
    *,
    time_scale: float = 10.0,
    pacing: str = "predictive",
    blacklist: Sequence[str] = (),
    config: RunnerConfig | None = None,
    db_url: str | None = None,
    db_schema: str = "",
    redis_url: str = "",
    redis_prefix: str = "dialer-demo:",
    clock: ShiftedClock | None = None,
    sim: SimPbx | None = None,
    with_recordings: bool = False,
    seed: bool = True,
) -> AsyncIterator[Scenario]:
    policy = parse_policy(DEMO_POLICY, "demo policy")
    clock = clock or ShiftedClock(business_hours_start(policy))
    async with contextlib.AsyncExitStack() as stack_ctx:
        if sim is None:
            sim = await stack_ctx.enter_async_context(
                running_simpbx(time_scale=time_scale, recordings_dir=tmp_path / "rec")
            )
        stack = await stack_ctx.enter_async_context(
            demo_stack(
                tmp_path,
                sim.base_url,
                policy=policy,
                clock=clock,
                config=config or scenario_config(),
                db_url=db_url,
                db_schema=db_schema,
                redis_url=redis_url,
                redis_prefix=redis_prefix,
                with_recordings=with_recordings,
            )
        )
        if seed:
            await seed_campaign(
                stack,
                list(numbers),
                spec=campaign_spec(CAMPAIGN, pacing=pacing),
                blacklist=list(blacklist),
                at=clock.wall() - timedelta(hours=1),
            )
        elif await stack.stores.campaigns.find(CAMPAIGN) is not None:
            await stack.load_campaign(CAMPAIGN)
        yield Scenario(sim, stack, clock, policy, list(numbers))


@pytest.fixture
def scenario_factory(tmp_path: Path) -> Any:
    def make(
        numbers: Sequence[str], *, overrides: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        if overrides:
            kwargs["config"] = scenario_config(**overrides)
        return open_scenario(tmp_path, numbers, **kwargs)

    return make
