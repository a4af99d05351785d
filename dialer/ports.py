"""The ports the campaign runner talks through (``typing.Protocol``), the types it shares
with the adapters (``CampaignPlan``, ``GateUnavailable``), and its clock.

Only ``dialer.app`` (the composition root) knows the concrete classes behind
them: the ARI client, the compliance gate and stores, the recording index.
Tests plug in the real adapters against the simulated PBX and real databases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from compliance.clock import Clock as Clock
from compliance.clock import ShiftedClock as ShiftedClock
from compliance.clock import SystemClock as SystemClock
from compliance.model import AttemptOutcome, Decision
from dialer.legs import Leg
from dialer.retry import RuleLike


class GateUnavailable(Exception):
    """The compliance gate could not answer (database or Redis gone). Dialling stops."""


@dataclass(frozen=True, slots=True)
class CampaignPlan:
    """What the runner needs of a campaign (built from the campaign registry)."""

    name: str
    products: tuple[str, ...]
    caller_id: str
    ring_timeout: int
    retry: Mapping[str, RuleLike]
    pacing_method: str = "progressive"
    pacing_params: Mapping[str, float] = field(default_factory=dict)
    # The campaign's own dialling hours (on top of the policy's calling hours).
    hours_allow: Callable[[datetime], bool] | None = None

    @property
    def default_product(self) -> str:
        return self.products[0] if self.products else ""


@dataclass(frozen=True, slots=True)
class LiveFigures:
    """A campaign's live figures, as the API and the demo show them."""

    campaign: str
    dialling: bool
    agents_logged_in: int
    agents_ready: int
    agents_talking: int
    agents_wrapping: int
    dials_in_flight: int
    customers_waiting: int
    calls_placed: int
    occupancy: float
    halted: str | None
    # Why fewer calls than the pacer wants are placed (the PBX is slow), None otherwise.
    throttled: str | None = None



class CallControl(Protocol):
    """The ARI requests the runner needs. Failures raise ``dialer.ari.errors.AriError``
    (its ``status`` is the HTTP status, None when no answer came).

    Every originate carries its ``leg`` (``dialer.legs``): a customer leg with the
    gate's decision for that attempt, or an agent leg checked against the agent
    directory; an originate its leg does not allow raises ``OriginateRefused``.
    """

    async def originate(
        self,
        *,
        leg: Leg,
        channel_id: str,
        endpoint: str,
        caller_id: str,
        ring_timeout: int,
        app_args: Sequence[str],
        variables: dict[str, str],
    ) -> None:
        """Originate into the Stasis application (``app_args``), never into the dialplan:
        the app is then subscribed to the channel before it can produce an event."""

    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str, priority: int
    ) -> None:
        """Hand a channel in the app to a dialplan context (AMD, the abandon message);
        its events keep coming to the app."""

    async def hangup(self, channel_id: str) -> None:
        """Hang up; a channel that is already gone is not an error."""

    async def ensure_bridge(self, bridge_id: str) -> None: ...

    async def destroy_bridge(self, bridge_id: str) -> None: ...

    async def add_to_bridge(self, bridge_id: str, channel_id: str) -> None: ...

    async def record_bridge(self, bridge_id: str, name: str, fmt: str) -> None: ...

    async def stop_recording(self, name: str) -> None:
        """Stop a live recording; one that already finished is not an error."""

    async def play(self, channel_id: str, media: str, playback_id: str) -> None: ...

    async def channel_ids(self) -> set[str]:
        """Ids of every channel Asterisk has now (``GET /channels``)."""

    async def channel_exists(self, channel_id: str) -> bool: ...

    async def bridge_ids(self) -> set[str]:
        """Ids of every bridge Asterisk has now (``GET /bridges``)."""


class AgentDirectory(Protocol):
    """The agent directory an administrator maintains (``dialer agent add``)."""

    async def endpoint_of(self, agent_id: str) -> str | None:
        """The agent's softphone endpoint, None when the agent is not in the directory."""


class Gate(Protocol):
    """The compliance gate: atomic check-and-reserve of one attempt."""

    async def check_and_reserve(
        self,
        number: str,
        campaign: str,
        product: str,
        at: datetime,
        *,
        attempt_id: str,
        caller_id: str | None = None,
        is_callback: bool = False,
        dialled_number: str | None = None,
        segment: str = "default",
        assigned_at: datetime | None = None,
    ) -> Decision: ...


class Ledger(Protocol):
    async def resolve(self, attempt_id: str, outcome: AttemptOutcome) -> None: ...

    async def record_refusal(
        self, number: str, campaign: str, product: str, at: datetime, attempt_id: str = ""
    ) -> None: ...


class DncList(Protocol):
    async def add_do_not_call(self, number: str, reason: str, at: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class DialLead:
    """A claimed lead, as the runner needs it."""

    lead_id: str
    campaign: str
    number: str
    product: str
    segment: str
    assigned_at: datetime | None
    dialled_number: str | None
    attempts: int
    is_callback: bool = False


class LeadSource(Protocol):
    async def claim(self, campaign: str, now: datetime, limit: int) -> list[DialLead]: ...

    async def claim_lead(self, lead_id: str, now: datetime) -> DialLead | None:
        """Claim one given lead for an agent's own call; None when it is not available."""

    async def retry_at(
        self,
        lead: DialLead,
        at: datetime | None,
        reasons: Sequence[str],
        *,
        counted: bool,
        now: datetime,
    ) -> None:
        """Due again at ``at`` (None: now)."""

    async def callback_at(self, lead: DialLead, at: datetime, *, now: datetime) -> None: ...

    async def finish(
        self, lead: DialLead, reasons: Sequence[str], *, counted: bool, now: datetime
    ) -> None:
        """Closed: done (talked, retries exhausted...)."""

    async def refuse(self, lead: DialLead, reasons: Sequence[str], *, now: datetime) -> None:
        """Never to be dialled (gate refusal without retry, do-not-call, wrong number)."""

    async def release_claims(self, campaign: str, now: datetime) -> int:
        """Give back every lead of ``campaign`` this dialer claimed (start-up after a crash)."""


@dataclass(frozen=True, slots=True)
class FinishedRecording:
    attempt_id: str
    name: str
    fmt: str
    duration: float | None
    campaign: str
    number: str
    agent_id: str | None
    started_at: datetime
    ended_at: datetime


class RecordingSink(Protocol):
    async def recording_finished(self, rec: FinishedRecording) -> None: ...
