"""Agents: login, ready, pause, logout, wrap-up; who gets the next answered customer.

Pure: no I/O, times are passed in. Each logged-in agent's softphone is called
once and kept up (nailed up) in the agent's own mixing bridge ``agent-<id>``;
connecting a customer is then one ``addChannel`` with no ringing at the agent.
The pool only tracks state; the runner places and watches the channels.

Invariants (a violation raises ``AgentStateError``, a programming error):
an agent has at most one customer; only a READY agent whose channel is up is
given a customer; the longest-idle ready agent is chosen first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class AgentStatus(StrEnum):
    OFFLINE = "offline"
    CONNECTING = "connecting"  # softphone being called, not yet up
    READY = "ready"
    PAUSED = "paused"
    TALKING = "talking"
    WRAPUP = "wrapup"


class AgentStateError(Exception):
    """A broken invariant of the agent pool (never a business outcome)."""


class AgentRefusal(StrEnum):
    """Why an agent's request was refused (returned as a value)."""

    UNKNOWN_AGENT = "unknown_agent"
    NOT_LOGGED_IN = "not_logged_in"
    ON_A_CALL = "on_a_call"
    CHANNEL_NOT_UP = "channel_not_up"
    NOT_IN_WRAPUP = "not_in_wrapup"


AGENT_BRIDGE_PREFIX = "agent-"


def bridge_id_for(agent_id: str) -> str:
    return f"{AGENT_BRIDGE_PREFIX}{agent_id}"


def channel_id_for(agent_id: str, generation: int, session: str = "") -> str:
    """The nailed-up softphone channel id; ``session`` (one per dialer process) and the
    generation (one per login) make it unique, so a restart never collides with a
    channel of the previous process."""
    return f"ag-{agent_id}-{session}{generation}"


@dataclass(slots=True)
class Agent:
    agent_id: str
    endpoint: str
    session: str = ""
    status: AgentStatus = AgentStatus.OFFLINE
    channel_up: bool = False
    generation: int = 0
    idle_since: float = 0.0
    logged_in_at: float = 0.0
    call_started: float = 0.0
    wrap_started: float = 0.0
    attempt_id: str | None = None
    last_attempt_id: str | None = None
    wants_pause: bool = False
    wants_logout: bool = False
    talk_seconds: float = 0.0
    logged_seconds: float = 0.0
    calls: int = 0

    @property
    def bridge_id(self) -> str:
        return bridge_id_for(self.agent_id)

    @property
    def channel_id(self) -> str:
        return channel_id_for(self.agent_id, self.generation, self.session)


@dataclass(frozen=True, slots=True)
class AgentView:
    """A read-only copy for the HTTP API and reports."""

    agent_id: str
    status: AgentStatus
    channel_up: bool
    attempt_id: str | None
    last_attempt_id: str | None
    calls: int
    talk_seconds: float
    logged_seconds: float


AgentListener = Callable[[Agent], None]


class AgentPool:
    """``listener`` (optional) is told of every agent whose state changed, after the change:
    the agents' screens and the floor follow the pool through it (it must not block)."""

    def __init__(self, session: str = "", listener: AgentListener | None = None) -> None:
        self.session = session
        self.listener = listener
        self._agents: dict[str, Agent] = {}
        self._by_channel: dict[str, str] = {}

    def _changed(self, a: Agent) -> None:
        if self.listener is not None:
            self.listener(a)

    # ------------------------------------------------------------ queries
    def get(self, agent_id: str) -> Agent | None:
        return self._agents.get(agent_id)

    def agent_for_channel(self, channel_id: str) -> Agent | None:
        aid = self._by_channel.get(channel_id)
        return self._agents.get(aid) if aid is not None else None

    def agents(self) -> list[Agent]:
        return list(self._agents.values())

    def view(self, agent_id: str, now: float) -> AgentView | None:
        a = self._agents.get(agent_id)
        if a is None:
            return None
        logged = a.logged_seconds + (
            now - a.logged_in_at if a.status is not AgentStatus.OFFLINE else 0.0
        )
        return AgentView(
            a.agent_id,
            a.status,
            a.channel_up,
            a.attempt_id,
            a.last_attempt_id,
            a.calls,
            a.talk_seconds,
            logged,
        )

    def ready_count(self) -> int:
        return sum(
            1 for a in self._agents.values() if a.status is AgentStatus.READY and a.channel_up
        )

    def talking_ages(self, now: float) -> tuple[float, ...]:
        return tuple(
            now - a.call_started for a in self._agents.values() if a.status is AgentStatus.TALKING
        )

    def wrapping_ages(self, now: float) -> tuple[float, ...]:
        return tuple(
            now - a.wrap_started for a in self._agents.values() if a.status is AgentStatus.WRAPUP
        )

    def logged_in_count(self) -> int:
        return sum(1 for a in self._agents.values() if a.status is not AgentStatus.OFFLINE)

    def occupancy(self, now: float) -> float:
        """Talk time / logged-in time over every agent so far."""
        talk = 0.0
        logged = 0.0
        for a in self._agents.values():
            talk += a.talk_seconds + (
                now - a.call_started if a.status is AgentStatus.TALKING else 0.0
            )
            logged += a.logged_seconds + (
                now - a.logged_in_at if a.status is not AgentStatus.OFFLINE else 0.0
            )
        return talk / logged if logged > 0 else 0.0

    # ------------------------------------------------------------ transitions
    def login(self, agent_id: str, endpoint: str, now: float) -> Agent:
        """Log in (or re-log in): the runner must now call the softphone ``channel_id``."""
        a = self._agents.get(agent_id)
        if a is None:
            a = Agent(agent_id, endpoint, self.session)
            self._agents[agent_id] = a
        if a.status is not AgentStatus.OFFLINE:
            return a
        a.endpoint = endpoint
        a.generation += 1
        a.status = AgentStatus.CONNECTING
        a.channel_up = False
        a.logged_in_at = now
        a.wants_pause = False
        a.wants_logout = False
        self._by_channel[a.channel_id] = agent_id
        self._changed(a)
        return a

    def channel_answered(self, channel_id: str, now: float) -> Agent | None:
        """The softphone answered and is in its bridge: the agent is ready."""
        a = self.agent_for_channel(channel_id)
        if a is None or a.channel_id != channel_id:
            return None
        a.channel_up = True
        if a.status is AgentStatus.CONNECTING:
            a.status = AgentStatus.PAUSED if a.wants_pause else AgentStatus.READY
            a.idle_since = now
        self._changed(a)
        return a

    def channel_lost(self, channel_id: str, now: float) -> Agent | None:
        """The softphone channel is gone. The agent is logged out; a call in
        progress must be ended by the caller (the returned agent says which)."""
        a = self.agent_for_channel(channel_id)
        self._by_channel.pop(channel_id, None)
        if a is None or a.channel_id != channel_id:
            return None
        a.channel_up = False
        if a.status is AgentStatus.TALKING:
            # The talk ends when the customer's channel goes; logout follows wrap-up.
            a.wants_logout = True
            self._changed(a)
            return a
        self._go_offline(a, now)
        self._changed(a)
        return a

    def set_ready(self, agent_id: str, now: float) -> AgentRefusal | None:
        a = self._agents.get(agent_id)
        if a is None:
            return AgentRefusal.UNKNOWN_AGENT
        if a.status is AgentStatus.OFFLINE:
            return AgentRefusal.NOT_LOGGED_IN
        a.wants_pause = False
        if a.status is AgentStatus.PAUSED:
            if not a.channel_up:
                return AgentRefusal.CHANNEL_NOT_UP
            a.status = AgentStatus.READY
            a.idle_since = now
        self._changed(a)
        return None

    def pause(self, agent_id: str, now: float) -> AgentRefusal | None:
        a = self._agents.get(agent_id)
        if a is None:
            return AgentRefusal.UNKNOWN_AGENT
        if a.status is AgentStatus.OFFLINE:
            return AgentRefusal.NOT_LOGGED_IN
        if a.status in (AgentStatus.READY, AgentStatus.CONNECTING) and a.channel_up:
            a.status = AgentStatus.PAUSED
        else:
            # On a call or in wrap-up (or still connecting): pause afterwards.
            a.wants_pause = True
        self._changed(a)
        return None

    def logout(self, agent_id: str, now: float) -> tuple[AgentRefusal | None, str | None]:
        """Log out; returns the channel the runner must hang up (None when deferred
        because the agent is on a call or in wrap-up)."""
        a = self._agents.get(agent_id)
        if a is None:
            return AgentRefusal.UNKNOWN_AGENT, None
        if a.status is AgentStatus.OFFLINE:
            return AgentRefusal.NOT_LOGGED_IN, None
        if a.status in (AgentStatus.TALKING, AgentStatus.WRAPUP):
            a.wants_logout = True
            self._changed(a)
            return None, None
        channel = a.channel_id
        self._by_channel.pop(channel, None)
        self._go_offline(a, now)
        self._changed(a)
        return None, channel

    def assign(self, attempt_id: str, now: float) -> Agent | None:
        """Give a customer to the longest-idle ready agent (None when nobody is ready)."""
        best: Agent | None = None
        for a in self._agents.values():
            if a.status is AgentStatus.READY and a.channel_up and a.attempt_id is None:
                if best is None or a.idle_since < best.idle_since:
                    best = a
        if best is None:
            return None
        self._start_call(best, attempt_id, now)
        return best

    def reserve(self, agent_id: str, attempt_id: str, now: float) -> AgentRefusal | None:
        """The agent places a call of their own (preview, manual dial, their callback): they
        are on it from the dial, so nobody else's customer is put through to them."""
        a = self._agents.get(agent_id)
        if a is None:
            return AgentRefusal.UNKNOWN_AGENT
        if a.status is AgentStatus.OFFLINE:
            return AgentRefusal.NOT_LOGGED_IN
        if a.status in (AgentStatus.TALKING, AgentStatus.WRAPUP) or a.attempt_id is not None:
            return AgentRefusal.ON_A_CALL
        if a.status is AgentStatus.CONNECTING or not a.channel_up:
            return AgentRefusal.CHANNEL_NOT_UP
        a.status = AgentStatus.READY
        a.wants_pause = False
        self._start_call(a, attempt_id, now)
        return None

    def _start_call(self, a: Agent, attempt_id: str, now: float) -> None:
        if a.attempt_id is not None or a.status is not AgentStatus.READY:
            raise AgentStateError(
                f"agent {a.agent_id} given call {attempt_id} while {a.status} with {a.attempt_id}"
            )
        a.status = AgentStatus.TALKING
        a.attempt_id = attempt_id
        a.call_started = now
        a.calls += 1
        self._changed(a)

    def unassign(self, agent_id: str, attempt_id: str, now: float) -> None:
        """Give back an agent that was assigned but never connected (the call was gone)."""
        a = self._agents[agent_id]
        if a.attempt_id != attempt_id:
            raise AgentStateError(f"agent {agent_id} is not on {attempt_id}")
        a.attempt_id = None
        a.calls -= 1
        a.status = AgentStatus.READY
        if a.wants_logout or not a.channel_up:
            self._go_offline(a, now)
        self._changed(a)

    def call_ended(self, agent_id: str, attempt_id: str, now: float) -> Agent:
        """The customer left: wrap-up starts."""
        a = self._agents[agent_id]
        if a.attempt_id != attempt_id:
            raise AgentStateError(f"agent {agent_id} ended {attempt_id} but is on {a.attempt_id}")
        a.talk_seconds += max(0.0, now - a.call_started)
        a.last_attempt_id = attempt_id
        a.attempt_id = None
        a.status = AgentStatus.WRAPUP
        a.wrap_started = now
        self._changed(a)
        return a

    def wrap_done(self, agent_id: str, now: float) -> tuple[AgentRefusal | None, str | None]:
        """Wrap-up finished (disposition given or wrap-up limit): ready, paused or
        logged out. Returns the channel to hang up when the agent logs out."""
        a = self._agents.get(agent_id)
        if a is None:
            return AgentRefusal.UNKNOWN_AGENT, None
        if a.status is not AgentStatus.WRAPUP:
            return AgentRefusal.NOT_IN_WRAPUP, None
        if a.wants_logout or not a.channel_up:
            channel = a.channel_id if a.channel_up else None
            self._by_channel.pop(a.channel_id, None)
            self._go_offline(a, now)
            self._changed(a)
            return None, channel
        if a.wants_pause:
            a.status = AgentStatus.PAUSED
            a.wants_pause = False
        else:
            a.status = AgentStatus.READY
            a.idle_since = now
        self._changed(a)
        return None, None

    def _go_offline(self, a: Agent, now: float) -> None:
        if a.status is not AgentStatus.OFFLINE:
            a.logged_seconds += max(0.0, now - a.logged_in_at)
        a.status = AgentStatus.OFFLINE
        a.channel_up = False
        a.attempt_id = None
        a.wants_logout = False
        a.wants_pause = False

    def wrap_expired(self, now: float, limit: float) -> list[str]:
        """Agents whose wrap-up has lasted ``limit`` seconds or more."""
        return [
            a.agent_id
            for a in self._agents.values()
            if a.status is AgentStatus.WRAPUP and now - a.wrap_started >= limit
        ]
