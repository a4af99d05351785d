"""Simulated agents for the demo, the scenario tests and the load bench.

They act only through the runner's agent API, exactly like the HTTP API does
for people: log in, end calls that run too long, give a disposition after a
short wrap-up. The disposition mix is seeded, so runs are repeatable.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from dialer.agent_pool import AgentStatus
from dialer.dispositions import DispositionRejected, DispositionRequest
from dialer.runner import Runner

DEFAULT_MIX: tuple[tuple[str, float], ...] = (
    ("order", 0.15),
    ("refused", 0.30),
    ("callback", 0.15),
    ("no_decision", 0.30),
    ("do_not_call", 0.05),
    ("wrong_number", 0.05),
)


@dataclass
class SimAgentStats:
    dispositions: dict[str, int] = field(default_factory=dict)
    hangups: int = 0
    rejected: int = 0


class SimulatedAgents:
    def __init__(
        self,
        runner: Runner,
        campaign: str,
        agent_ids: Sequence[str],
        *,
        seed: int = 7,
        max_talk: float = 8.0,
        wrap_seconds: float = 0.2,
        mix: Sequence[tuple[str, float]] = DEFAULT_MIX,
        tick: float = 0.05,
    ) -> None:
        self.runner = runner
        self.campaign = campaign
        self.agent_ids = tuple(agent_ids)
        self.rng = random.Random(seed)
        self.max_talk = max_talk
        self.wrap_seconds = wrap_seconds
        self.mix = tuple(mix)
        self.tick = tick
        self.stats = SimAgentStats()
        self._stop = asyncio.Event()

    async def login_all(self) -> None:
        for agent_id in self.agent_ids:
            await self.runner.agent_login(agent_id, self.campaign)

    def stop(self) -> None:
        self._stop.set()

    def _pick(self) -> str:
        r = self.rng.random()
        acc = 0.0
        for kind, weight in self.mix:
            acc += weight
            if r < acc:
                return kind
        return self.mix[-1][0]

    def _request(self, kind: str, products: Sequence[str]) -> DispositionRequest:
        product = products[0] if products else None
        if kind == "order":
            return DispositionRequest(kind, product, confirmed=True, note="sim: confirmed")
        if kind == "refused":
            return DispositionRequest(kind, product)
        if kind == "callback":
            at = self.runner.clock.wall() + timedelta(days=2)
            return DispositionRequest(kind, product, callback_at=at)
        return DispositionRequest(kind)

    async def run(self) -> None:
        """Act until ``stop()``."""
        while not self._stop.is_set():
            await self.step()
            try:
                await asyncio.wait_for(self._stop.wait(), self.tick)
            except TimeoutError:
                pass

    async def step(self) -> None:
        run = self.runner.campaigns.get(self.campaign)
        if run is None:
            return
        now = self.runner.clock.now()
        for agent_id in self.agent_ids:
            agent = run.pool.get(agent_id)
            if agent is None:
                continue
            if agent.status is AgentStatus.TALKING and now - agent.call_started > self.max_talk:
                self.stats.hangups += 1
                await self.runner.agent_hangup(agent_id)
            elif (
                agent.status is AgentStatus.WRAPUP and now - agent.wrap_started >= self.wrap_seconds
            ):
                attempt = agent.last_attempt_id
                if attempt is None or run.awaiting_disposition.get(attempt) != agent_id:
                    continue
                kind = self._pick()
                result = await self.runner.disposition(
                    agent_id, self._request(kind, run.plan.products), attempt
                )
                if isinstance(result, DispositionRejected):
                    self.stats.rejected += 1
                else:
                    self.stats.dispositions[kind] = self.stats.dispositions.get(kind, 0) + 1
