"""AMD through the dialplan (``dialer-amd``) after an answer into the app: machines are hung
up, people reach an agent."""

from __future__ import annotations

from typing import Any

from simulation.demo_data import numbers_ending


async def test_amd_machines_hung_up_people_connected(scenario_factory: Any) -> None:
    numbers = numbers_ending("16", 12, seed=12)
    async with scenario_factory(numbers, overrides={"amd": True}) as scn:
        await scn.burst(agents=4, max_talk=0.6)
        attempts = await scn.stack.attempts.all()
        by_digit: dict[str, set[tuple[str | None, bool]]] = {}
        for a in attempts:
            by_digit.setdefault(a.number[-1], set()).add((a.outcome, a.connected))
        assert by_digit["6"] == {("machine", False)}
        assert by_digit["1"] == {("answered", True)}
        # Every originate went into the app (subscribed before any event); each answered
        # call was then continued into [dialer-amd].
        amd = [
            r
            for r in scn.sim.requests
            if r.method == "POST"
            and r.path == "/channels"
            and r.query.get("channelId", "").startswith("dl-")
        ]
        assert amd and all(r.query.get("app") == "dialer" for r in amd)
        assert not any("context" in r.query for r in amd)
        # [dialer-amd] gives AMD() the after-greeting silence the runner takes off its limit
        assert all(r.body["variables"]["DIALER_AMD_AFTER_GREETING_MS"] == "800" for r in amd), amd[
            0
        ].body
        continued = [r for r in scn.sim.requests if r.path.endswith("/continue")]
        assert len(continued) == len(amd) == 12
        assert all(r.query.get("context") == "dialer-amd" for r in continued)
        funnel = await scn.stack.attempts.funnel("scn")
        assert funnel.machines == 6 and funnel.answered == 6
        assert scn.sim.state()["channels"] == []
