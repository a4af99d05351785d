"""A whole campaign in burst mode against simpbx: 200 leads of mixed behaviours."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest

from compliance.leads import LeadStatus
from compliance.numbers import mask
from dialer.attempts import Stage
from simulation.demo_data import sample_numbers

MIX = {"1": 0.2, "2": 0.05, "7": 0.15, "9": 0.2, "3": 0.08, "4": 0.04, "5": 0.08, "6": 0.06,
       "8": 0.08, "0": 0.06}  # fmt: skip


async def test_200_leads_mixed_behaviours(scenario_factory: Any) -> None:
    numbers = sample_numbers(200, seed=99, mix=MIX)
    blacklist = numbers[:8]
    over_cap = numbers[8:14]
    async with scenario_factory(numbers, blacklist=blacklist) as scn:
        for n in over_cap:
            await scn.reserve_history(n, 2, scn.clock.wall() - timedelta(minutes=50))
        await scn.burst(agents=30, max_talk=0.8)

        statuses = await scn.lead_statuses()
        # Every lead ends in a terminal state for this run: nothing new, nothing claimed.
        stuck = {
            mask(k): s for k, s in statuses.items() if s in (LeadStatus.NEW, LeadStatus.IN_PROGRESS)
        }
        assert not stuck, stuck
        attempts = await scn.stack.attempts.all()
        assert {a.stage for a in attempts} <= {Stage.DONE, Stage.REFUSED}

        # Nothing blacklisted or over a cap was ever sent to the PBX.
        originated = scn.originated_numbers()
        forbidden = set(blacklist) | set(over_cap)
        assert not forbidden & set(originated), [mask(n) for n in forbidden & set(originated)]
        for n in blacklist + over_cap:
            assert statuses[n] in (LeadStatus.REFUSED, LeadStatus.RETRY), (mask(n), statuses[n])
        refused = {a.number: a.reasons for a in attempts if a.stage == Stage.REFUSED}
        assert all("blacklisted" in refused[n] for n in blacklist)
        assert all("monthly_cap" in refused[n] for n in over_cap)
        # Each number dialled once in this burst (retries are hours away).
        dup = [mask(n) for n, c in Counter(originated).items() if c > 1]
        assert not dup, dup

        # Each connected call has exactly one recording, stored with its attempt.
        connected = [a for a in attempts if a.connected]
        assert len(connected) > 60
        started = Counter(scn.recordings_started())
        stored = {r["name"] for r in scn.sim.state()["stored_recordings"]}
        for a in connected:
            assert a.recording == f"rec-{a.attempt_id}", a.attempt_id
            assert started[a.recording] == 1
            assert a.recording in stored
        assert sum(started.values()) == len(connected)

        # No agent ever had two customers at once.
        by_agent: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
        for a in connected:
            assert a.agent_id and a.connected_at and a.ended_at
            by_agent[a.agent_id].append((a.connected_at, a.ended_at))
        for agent, spans in by_agent.items():
            spans.sort()
            for (_s1, e1), (s2, _e2) in pairwise(spans):
                assert e1 <= s2, f"agent {agent} overlapping calls"

        # No channel and no live recording left behind.
        state = scn.sim.state()
        assert state["channels"] == []
        assert state["live_recordings"] == []

        # Outcomes as the behaviours say.
        by_digit: dict[str, set[str]] = defaultdict(set)
        for a in attempts:
            if a.stage == Stage.DONE:
                by_digit[a.number[-1]].add(str(a.outcome))
        assert by_digit["3"] == {"busy"}
        assert by_digit["4"] == {"congestion"}
        assert by_digit["8"] == {"rejected"}
        assert by_digit["0"] == {"unallocated"}
        assert by_digit["5"] == {"no_answer"}
        assert by_digit["9"] <= {"answered"}

        # Abandon rate within the campaign's target (predictive, 3 %).
        funnel = await scn.stack.attempts.funnel("scn")
        assert funnel.abandon_rate <= 0.03, funnel
        assert funnel.connects == len(connected)
        assert scn.runner.halted is None


@pytest.mark.postgres
async def test_campaign_on_postgresql(scenario_factory: Any, pg_target: Any) -> None:
    """The same run on PostgreSQL (the production store): parallel gate checks, same rules."""
    numbers = sample_numbers(60, seed=98, mix=MIX)
    blacklist = numbers[:3]
    async with scenario_factory(
        numbers, blacklist=blacklist, db_url=pg_target.url, db_schema=pg_target.schema
    ) as scn:
        await scn.burst(agents=12, max_talk=0.6)
        statuses = await scn.lead_statuses()
        assert LeadStatus.NEW not in statuses.values()
        assert LeadStatus.IN_PROGRESS not in statuses.values()
        originated = scn.originated_numbers()
        assert not set(blacklist) & set(originated)
        assert all(c == 1 for c in Counter(originated).values())
        attempts = await scn.stack.attempts.all()
        connected = [a for a in attempts if a.connected]
        assert connected and all(a.recording == f"rec-{a.attempt_id}" for a in connected)
        for n in originated:
            history = await scn.stack.stores.ledger.history(n)
            assert history and all(e.outcome != "reserved" for e in history), mask(n)
        assert scn.sim.state()["channels"] == []
