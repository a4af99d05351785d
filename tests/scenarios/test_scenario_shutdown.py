"""A graceful stop is bounded by ``drain_timeout``: open wrap-ups do not hold it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from dialer.app import running
from simulation.demo_data import campaign_spec, leads_csv, numbers_ending


async def test_stop_closes_open_wrapups_after_the_drain_time(scenario_factory: Any) -> None:
    numbers = numbers_ending("2", 1, seed=7)  # a person who stays on the line: the agent ends
    overrides = {"wrapup_limit": 60.0, "drain_timeout": 1.0}
    async with scenario_factory([], seed=False, overrides=overrides) as scn:
        stack = scn.stack
        await stack.stores.campaigns.create(_spec())
        await stack.stores.leads.import_text(
            leads_csv(numbers, "broadband"), "stop.csv", "stop", tz=stack.policy.tz,
            now=scn.clock.wall(),
        )  # fmt: skip
        await stack.load_all_campaigns()
        runner = stack.runner
        async with running(stack):
            runner.start_dialling("stop")
            await runner.agent_login("601", "stop")
            await runner.agent_ready("601")
            await _until(lambda: _talking(runner), within=20)
            assert await runner.agent_hangup("601") is None
            await _until(stack.attempts.awaiting_disposition, within=10)
            started = time.monotonic()
            # leaving the block stops the runner: the agent never gives a disposition
        stopped_in = time.monotonic() - started
        assert stopped_in < 10.0, f"stop took {stopped_in:.1f}s (wrap-up limit is 60 s)"
        (attempt,) = [a for a in await stack.attempts.all() if a.connected]
        assert attempt.disposition == "no_decision"
        assert not await stack.attempts.awaiting_disposition()


async def _talking(runner: Any) -> bool:
    return any(a.status.value == "talking" for a in runner.campaigns["stop"].pool.agents())


async def _until(predicate: Any, within: float) -> None:
    async with asyncio.timeout(within):
        while not await predicate():  # noqa: ASYNC110 - polling state, as a client does
            await asyncio.sleep(0.05)


def _spec() -> Any:
    from compliance.campaigns import parse_campaign_spec

    return parse_campaign_spec(campaign_spec("stop", pacing="progressive"))
