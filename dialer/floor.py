"""What the supervisors' wallboard shows, as values: every agent's tile and every
campaign's figures, and why the pacer is holding back.

``FloorWatcher.poll`` reads the runner (agents' states, lines in flight, customers
waiting, occupancy) and the report rollup's abandon figures, and returns only the
tiles that changed since the previous poll: the wallboard's feed polls it a few times
a second and pushes those, so 200 agents cost one pass over the pools per poll and a
message per agent only when that agent changed. Time in state is measured from the
first poll that saw the new state (the pools keep no per-state clock).

``hold_back`` says, in order of precedence, why a campaign is dialling less than it
could: not dialling at all (paused, stopped, halted by a fault), inbound calls first
(art. 43), nobody to give a call to, or the abandon rate at or over the target (the
pacer then dials one call per ready agent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from dialer.agent_pool import AgentStatus
from dialer.runner import InboundPolicy, Runner
from reports.model import Grouping
from reports.store import ReportQuery, ReportStore


class HoldBack(StrEnum):
    NONE = ""
    NOT_DIALLING = "not_dialling"
    HALTED = "halted"
    INBOUND_FIRST = "inbound_first"
    NO_AGENTS = "no_agents"
    NO_AGENT_READY = "no_agent_ready"
    ABANDON_OVER_TARGET = "abandon_over_target"


HOLD_BACK_TEXT: dict[HoldBack, tuple[str, str]] = {
    HoldBack.NONE: ("正常拨号", "dialling"),
    HoldBack.NOT_DIALLING: ("已暂停", "paused"),
    HoldBack.HALTED: ("故障停拨", "halted by a fault"),
    HoldBack.INBOUND_FIRST: ("来话优先", "inbound calls first"),
    HoldBack.NO_AGENTS: ("无座席登录", "no agent logged in"),
    HoldBack.NO_AGENT_READY: ("无空闲座席", "no agent ready"),
    HoldBack.ABANDON_OVER_TARGET: (
        "放弃率超标, 逐一拨号",
        "abandon rate over target: one call per ready agent",
    ),
}


@dataclass(frozen=True, slots=True)
class AgentTile:
    agent_id: str
    campaign: str
    state: str
    since: float  # the runner clock's time the state was first seen
    calls: int


@dataclass(frozen=True, slots=True)
class CampaignTile:
    campaign: str
    dialling: bool
    logged_in: int
    ready: int
    talking: int
    wrapping: int
    paused: int
    lines: int
    waiting: int
    occupancy: float
    lines_per_agent: float
    abandon_today: float
    abandon_30d: float
    target: float
    hold_back: HoldBack
    halted: str = ""


@dataclass(frozen=True, slots=True)
class AbandonFigures:
    today: float
    last_30_days: float


def hold_back(
    *,
    dialling: bool,
    halted: str | None,
    inbound_waiting: int,
    inbound_pauses: bool,
    logged_in: int,
    ready: int,
    abandon: AbandonFigures,
    target: float,
) -> HoldBack:
    if halted:
        return HoldBack.HALTED
    if not dialling:
        return HoldBack.NOT_DIALLING
    if inbound_waiting > 0 and inbound_pauses:
        return HoldBack.INBOUND_FIRST
    if logged_in == 0:
        return HoldBack.NO_AGENTS
    if max(abandon.today, abandon.last_30_days) >= target:
        return HoldBack.ABANDON_OVER_TARGET
    if ready == 0:
        return HoldBack.NO_AGENT_READY
    return HoldBack.NONE


@dataclass
class FloorWatcher:
    """Diffs of the floor between polls (see the module doc)."""

    runner: Runner
    target: float = 0.03
    abandon: Mapping[str, AbandonFigures] = field(default_factory=dict)
    _agents: dict[str, AgentTile] = field(default_factory=dict)
    _campaigns: dict[str, CampaignTile] = field(default_factory=dict)

    def inbound_waiting(self) -> int:
        return self.runner.book.inbound_waiting

    def agents(self) -> list[AgentTile]:
        return sorted(self._agents.values(), key=lambda t: (t.campaign, t.agent_id))

    def campaigns(self) -> list[CampaignTile]:
        return sorted(self._campaigns.values(), key=lambda t: t.campaign)

    def poll(self) -> tuple[list[AgentTile], list[CampaignTile]]:
        """The agent and campaign tiles that changed since the last poll."""
        now = self.runner.clock.now()
        agents: list[AgentTile] = []
        camps: list[CampaignTile] = []
        for name, run in self.runner.campaigns.items():
            counts = dict.fromkeys(AgentStatus, 0)
            for a in run.pool.agents():
                counts[a.status] += 1
                old = self._agents.get(a.agent_id)
                state = a.status.value
                if old is None or (old.state, old.campaign, old.calls) != (state, name, a.calls):
                    since = old.since if old is not None and old.state == state else now
                    tile = AgentTile(a.agent_id, name, state, since, a.calls)
                    self._agents[a.agent_id] = tile
                    agents.append(tile)
            figures = self.runner.figures(name)
            logged = figures.agents_logged_in
            ab = self.abandon.get(name, AbandonFigures(0.0, 0.0))
            tile_c = CampaignTile(
                campaign=name,
                dialling=figures.dialling,
                logged_in=logged,
                ready=figures.agents_ready,
                talking=figures.agents_talking,
                wrapping=figures.agents_wrapping,
                paused=counts[AgentStatus.PAUSED],
                lines=figures.dials_in_flight,
                waiting=figures.customers_waiting,
                occupancy=round(figures.occupancy, 2),
                lines_per_agent=round(figures.dials_in_flight / logged, 2) if logged else 0.0,
                abandon_today=ab.today,
                abandon_30d=ab.last_30_days,
                target=self.target,
                hold_back=hold_back(
                    dialling=figures.dialling,
                    halted=figures.halted,
                    inbound_waiting=self.inbound_waiting(),
                    inbound_pauses=self.runner.config.inbound_policy is InboundPolicy.PAUSE,
                    logged_in=logged,
                    ready=figures.agents_ready,
                    abandon=ab,
                    target=self.target,
                ),
                halted=figures.halted or "",
            )
            if self._campaigns.get(name) != tile_c:
                self._campaigns[name] = tile_c
                camps.append(tile_c)
        return agents, camps


async def abandon_figures(store: ReportStore, today: date) -> dict[str, AbandonFigures]:
    """Per campaign, the abandon rate today and over the policy's 30 days (from the rollup)."""
    month = await store.report(ReportQuery(today - timedelta(days=29), today, Grouping.CAMPAIGN))
    day = {
        r.key: r.model.abandon_rate
        for r in await store.report(ReportQuery(today, today, Grouping.CAMPAIGN))
    }
    return {r.key: AbandonFigures(day.get(r.key, 0.0), r.model.abandon_rate) for r in month}
