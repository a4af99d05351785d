"""The wallboard's feed (``dialer.floor``) on a live campaign against simpbx: agents'
tiles change with their state, campaign tiles say why the pacer holds back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from dialer.app import running
from dialer.floor import AbandonFigures, FloorWatcher, HoldBack, hold_back
from simulation.demo_data import numbers_ending


def test_hold_back_precedence() -> None:
    base: dict[str, Any] = dict(
        dialling=True, halted=None, inbound_waiting=0, inbound_pauses=True, logged_in=3,
        ready=1, abandon=AbandonFigures(0.01, 0.02), target=0.03,
    )  # fmt: skip
    assert hold_back(**base) is HoldBack.NONE
    assert hold_back(**{**base, "ready": 0}) is HoldBack.NO_AGENT_READY
    assert hold_back(**{**base, "abandon": AbandonFigures(0.0, 0.031)}) is (
        HoldBack.ABANDON_OVER_TARGET
    )
    assert hold_back(**{**base, "logged_in": 0}) is HoldBack.NO_AGENTS
    assert hold_back(**{**base, "inbound_waiting": 2}) is HoldBack.INBOUND_FIRST
    assert hold_back(**{**base, "inbound_waiting": 2, "inbound_pauses": False}) is HoldBack.NONE
    assert hold_back(**{**base, "dialling": False}) is HoldBack.NOT_DIALLING
    assert hold_back(**{**base, "halted": "ledger down"}) is HoldBack.HALTED


async def test_floor_tiles_follow_the_agents(scenario_factory: Any) -> None:
    numbers = numbers_ending("2", 3, seed=4)  # people who stay on the line
    overrides = {"drain_timeout": 2.0, "wrapup_limit": 1.0}
    async with scenario_factory(numbers, pacing="progressive", overrides=overrides) as scn:
        stack = scn.stack
        watcher = FloorWatcher(stack.runner)
        agents, camps = watcher.poll()
        assert agents == [] and [c.hold_back for c in camps] == [HoldBack.NO_AGENTS]
        async with running(stack):
            await stack.runner.agent_login("201", "scn")
            await stack.runner.agent_login("202", "scn")
            seen: dict[str, str] = {}
            async with asyncio.timeout(15):
                while {seen.get("201"), seen.get("202")} != {"talking"}:
                    changed, _ = watcher.poll()
                    seen.update({t.agent_id: t.state for t in changed})
                    await asyncio.sleep(0.05)
            assert watcher.poll()[0] == []  # no agent changed: no agent tile to push
            [tile] = watcher.campaigns()
            assert (tile.logged_in, tile.talking, tile.ready) == (2, 2, 0)
            assert tile.hold_back is HoldBack.NO_AGENT_READY
            stack.runner.set_inbound_waiting(3)
            _, camps = watcher.poll()
            assert [c.hold_back for c in camps] == [HoldBack.INBOUND_FIRST]
            stack.runner.set_inbound_waiting(0)
            stack.runner.pause_dialling("scn")
            _, camps = watcher.poll()
            assert [c.hold_back for c in camps] == [HoldBack.NOT_DIALLING]
            for agent in ("201", "202"):
                await stack.runner.agent_hangup(agent)
        assert all(t.since <= stack.runner.clock.now() for t in watcher.agents())
        assert datetime.now(UTC)  # the scenario clock is the runner's, not the wall
