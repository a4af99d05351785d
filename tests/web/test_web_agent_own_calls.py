"""An agent's own calls (manual dial, preview) pass the same compliance gate, against simpbx.

The whole ``dialer serve`` stack runs (``tests/browser/harness.running_site``,
no browser needed): a refused call is never originated and its reasons come
back; an allowed one is put through to the agent who placed it; a preview
campaign is never dialled by the pacer.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from compliance.lists import ListReason
from compliance.model import ReasonCode
from dialer.agent_pool import AgentStatus
from simulation.demo_data import numbers_ending

sys.path.insert(0, str(Path(__file__).parents[1] / "browser"))
from harness import running_site, sample_campaign


def originated(site: object, number: str) -> bool:
    return any(
        r.method == "POST" and r.path == "/channels" and number in r.query.get("endpoint", "")
        for r in site.sim.requests  # type: ignore[attr-defined]
    )


async def agent_status(site: object, agent_id: str) -> AgentStatus | None:
    for run in site.stack.runner.campaigns.values():  # type: ignore[attr-defined]
        agent = run.pool.get(agent_id)
        if agent is not None:
            return agent.status
    return None


async def test_manual_dial_goes_through_the_gate(tmp_path: Path) -> None:
    spec = sample_campaign("手动外呼")
    spec["pacing"] = {"method": "preview"}  # nothing is dialled unless an agent chooses
    blocked, allowed = numbers_ending("2", 2, seed=21)
    async with running_site(tmp_path, [blocked, allowed], spec=spec) as site:
        stack = site.stack
        await stack.stores.lists.add(
            blocked, ListReason.COMPLAINT, source="test", actor="test", note="complaint"
        )
        await stack.runner.agent_login("701", "手动外呼")
        async with asyncio.timeout(10):
            while await agent_status(site, "701") is not AgentStatus.READY:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a preview campaign: the pacer places nothing by itself
        assert not originated(site, blocked) and not originated(site, allowed)

        lead = await stack.stores.leads.find("手动外呼", blocked)
        assert lead is not None
        refused = await stack.runner.dial_for_agent("701", str(lead.id))
        assert refused.decision is not None and not refused.decision.allowed
        assert ReasonCode.BLACKLISTED in refused.decision.codes
        assert not originated(site, blocked)
        assert await agent_status(site, "701") is AgentStatus.READY  # free again

        # Preview: the next lead is held for the agent, then dialled and put through to them.
        held = await stack.runner.preview_next("701")
        assert held is not None and held.number == allowed
        placed = await stack.runner.preview_dial("701")
        assert placed.attempt_id, placed
        async with asyncio.timeout(20):
            while True:  # the customer answers and is put through to the agent who dialled
                call = stack.runner.calls.get(placed.attempt_id)
                if call is not None and call.connected_wall is not None:
                    break
                await asyncio.sleep(0.1)
        assert call.state.agent_id == "701" and originated(site, allowed)
        # Dialling again while on the call is refused for the agent, not placed.
        again = await stack.runner.dial_for_agent("701", str(lead.id))
        assert again.attempt_id == "" and not originated(site, blocked)
