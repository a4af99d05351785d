"""Logout, stop and a crash leave nothing in Asterisk: no agent bridge, no channel."""

from __future__ import annotations

import asyncio
from typing import Any

from dialer.app import running
from simulation.demo_data import numbers_ending


async def test_logout_destroys_the_agent_bridge(scenario_factory: Any) -> None:
    async with scenario_factory([], seed=True) as scn:
        async with running(scn.stack):
            await scn.runner.agent_login("201", "scn")
            await scn.runner.agent_login("202", "scn")
            async with asyncio.timeout(10):
                # polling the PBX's state, as an operator would
                while len(scn.sim.state()["bridges"]) < 2 or scn.sim.state()["channels"] == []:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            await scn.runner.agent_logout("201")
            async with asyncio.timeout(10):
                while any(b["id"] == "agent-201" for b in scn.sim.state()["bridges"]):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            assert [b["id"] for b in scn.sim.state()["bridges"]] == ["agent-202"]
        # The stop logged 202 out too: nothing is left.
        assert scn.sim.state()["bridges"] == []
        assert scn.sim.state()["channels"] == []


async def test_a_campaign_stop_leaves_no_bridge_or_channel(scenario_factory: Any) -> None:
    async with scenario_factory(numbers_ending("1", 6, seed=21)) as scn:
        await scn.burst(agents=3, max_talk=0.5)
        state = scn.sim.state()
        assert state["bridges"] == [] and state["channels"] == []


async def test_start_up_destroys_agent_bridges_a_crashed_run_left(scenario_factory: Any) -> None:
    async with scenario_factory([]) as scn:
        scn.sim.engine.create_bridge({"bridgeId": "agent-777", "type": "mixing"})
        scn.sim.engine.create_bridge({"bridgeId": "someone-elses", "type": "mixing"})
        await scn.runner.recover()
        assert [b["id"] for b in scn.sim.state()["bridges"]] == ["someone-elses"]
