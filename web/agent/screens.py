"""The agents' screens: what each one shows now, and the pushes when it changes.

``AgentScreens`` reads the dialer's agent state (in memory, no I/O) and the
customer's data for a screen-pop, and publishes typed messages on the topic
``agent:<id>``. The dialer's domain events call ``agent_changed`` and
``customer_connected``; the page's own actions call ``agent_changed`` too, so
the screen follows even a change the dialer made by itself (the softphone
answering, a wrap-up ending at its limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dialer.agent_pool import Agent, AgentStatus
from web.agent.messages import AgentState, Customer
from web.hub import Hub, Message

if TYPE_CHECKING:
    from dialer.app import DialerStack


def topic(agent_id: str) -> str:
    return f"agent:{agent_id}"


@dataclass(frozen=True, slots=True)
class Seat:
    """Where an agent is: the campaign and the pool's record (None: never logged in)."""

    campaign: str
    agent: Agent | None


class AgentScreens:
    def __init__(self, stack: DialerStack, hub: Hub) -> None:
        self.stack = stack
        self.hub = hub
        self._pause_codes: dict[str, tuple[str, str]] = {}  # agent -> (code, label)
        self._since: dict[str, tuple[AgentStatus, float]] = {}

    # ------------------------------------------------------------ reading the dialer
    def seat(self, agent_id: str) -> Seat:
        for run in self.stack.runner.campaigns.values():
            agent = run.pool.get(agent_id)
            if agent is not None and agent.status is not AgentStatus.OFFLINE:
                return Seat(run.plan.name, agent)
        for run in self.stack.runner.campaigns.values():
            agent = run.pool.get(agent_id)
            if agent is not None:
                return Seat(run.plan.name, agent)
        return Seat("", None)

    def campaigns(self) -> list[str]:
        return sorted(self.stack.runner.campaigns)

    def _state_started(self, agent: Agent, now: float) -> float:
        """When the agent entered its current state (the pool keeps it for some states)."""
        if agent.status is AgentStatus.TALKING:
            return agent.call_started
        if agent.status is AgentStatus.WRAPUP:
            return agent.wrap_started
        if agent.status is AgentStatus.READY:
            return agent.idle_since
        seen = self._since.get(agent.agent_id)
        if seen is None or seen[0] is not agent.status:
            self._since[agent.agent_id] = (agent.status, now)
            return now
        return seen[1]

    def state(self, agent_id: str) -> AgentState:
        seat = self.seat(agent_id)
        now = self.stack.runner.clock.now()
        a = seat.agent
        if a is None:
            return AgentState(agent_id, AgentStatus.OFFLINE.value, 0.0, "", False)
        code, label = self._pause_codes.get(agent_id, ("", ""))
        if a.status is not AgentStatus.PAUSED:
            code, label = "", ""
        pending = "logout" if a.wants_logout else "pause" if a.wants_pause else ""
        return AgentState(
            agent_id,
            a.status.value,
            round(max(0.0, now - self._state_started(a, now)), 1),
            seat.campaign,
            a.channel_up,
            pause_code=code,
            pause_label=label,
            calls=a.calls,
            talk_seconds=int(a.talk_seconds),
            pending=pending,
        )

    # ------------------------------------------------------------ pushes
    def set_pause_code(self, agent_id: str, code: str, label: str) -> None:
        self._pause_codes[agent_id] = (code, label)

    def agent_changed(self, agent_id: str) -> None:
        self.hub.publish(topic(agent_id), self.state(agent_id))

    def cleared(self, agent_id: str) -> Customer:
        return Customer(agent_id)

    def snapshot(self, agent_id: str) -> list[Message]:
        return [self.state(agent_id)]
