"""The typed messages the agent's screen receives over its WebSocket.

Times travel as "seconds in this state when sent" rather than clock readings,
so the browser's timer is right whatever its own clock says (it counts from
when the message arrived).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class AgentState:
    """Phone, agent state with its timer, campaign: one per agent, newest wins."""

    TYPE: ClassVar[str] = "agent"
    agent_id: str
    status: str  # offline, connecting, ready, paused, talking, wrapup
    seconds: float  # time in this state when the message was made
    campaign: str
    phone_up: bool
    pause_code: str = ""
    pause_label: str = ""
    calls: int = 0
    talk_seconds: int = 0
    pending: str = ""  # "pause" / "logout" after this call

    @property
    def key(self) -> str:
        return self.agent_id


@dataclass(frozen=True, slots=True)
class Customer:
    """The screen-pop; ``attempt_id`` empty clears it (wrap-up over: the data leaves)."""

    TYPE: ClassVar[str] = "customer"
    agent_id: str
    attempt_id: str = ""
    name: str = ""
    number: str = ""  # always masked
    segment: str = ""
    product: str = ""
    products: Sequence[Mapping[str, str]] = ()
    history: Sequence[Mapping[str, str]] = ()
    script: Sequence[Mapping[str, str]] = ()
    questionnaire: Sequence[Mapping[str, Any]] = ()
    phase: str = ""  # talking / wrapup
    callback: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.agent_id


@dataclass(frozen=True, slots=True)
class Notice:
    """A line the agent should read (a callback due, a refusal explained)."""

    TYPE: ClassVar[str] = "notice"
    agent_id: str
    level: str  # info, warn, error
    text: str
    id: str = ""

    @property
    def key(self) -> str:
        return self.id or self.text


@dataclass(frozen=True, slots=True)
class Callbacks:
    """The agent's own ("me only") callbacks still open, the due ones first."""

    TYPE: ClassVar[str] = "callbacks"
    agent_id: str
    items: Sequence[Mapping[str, Any]] = ()

    @property
    def key(self) -> str:
        return self.agent_id


@dataclass(frozen=True, slots=True)
class Preview:
    """A preview campaign's lead held for the agent (masked), or none."""

    TYPE: ClassVar[str] = "preview"
    agent_id: str
    preview: bool = False  # the agent's campaign is a preview campaign
    lead: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.agent_id
