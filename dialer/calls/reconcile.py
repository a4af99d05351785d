"""Reconcile and recovery as pure decisions: what we know vs the channels Asterisk has.

``reconcile(calls, agents, channels)`` runs after a WebSocket reconnect (and at
start-up): our calls whose channel is gone are finalized (``vanished``), a
dialling call whose channel is Up was answered while we were not listening
(``answered``), agents whose softphone is gone are logged off, and our
channels Asterisk has that we do not know are hung up (``orphans``).

``recovery(unfinished, channels)`` runs at start-up after a crash: every
attempt a previous process left unfinished is finalized (nothing is dialled
again) with the outcome its row supports, its channel hung up if Asterisk
still has it, and every other channel of ours hung up.

Both return actions as data; ``dialer.runner`` carries them out. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dialer.attempt_model import AttemptRecord, Stage
from dialer.fsm import CallState, Phase
from dialer.ids import is_ours
from dialer.outcomes import DialOutcome


@dataclass(frozen=True, slots=True)
class AgentLine:
    """What reconcile needs of a logged-in agent."""

    campaign: str
    agent_id: str
    channel_id: str
    channel_up: bool
    attempt_id: str | None


@dataclass(frozen=True, slots=True)
class ReconcileActions:
    vanished: tuple[str, ...] = ()  # attempts to finalize (fsm.Vanished)
    answered: tuple[str, ...] = ()  # attempts answered unseen (fsm.StasisStarted)
    agents_lost: tuple[AgentLine, ...] = ()  # softphones gone: channel lost, call told
    orphans: tuple[str, ...] = ()  # channels to hang up

    @property
    def empty(self) -> bool:
        return not (self.vanished or self.answered or self.agents_lost or self.orphans)


def reconcile(
    calls: Mapping[str, CallState],
    agents: Sequence[AgentLine],
    channels: Mapping[str, str],
) -> ReconcileActions:
    """``calls``: attempt -> state of our live calls; ``agents``: every logged-in agent;
    ``channels``: channel id -> state (``Up``, ``Ring`` ...) of every channel Asterisk has."""
    vanished: list[str] = []
    answered: list[str] = []
    for attempt, st in calls.items():
        if st.terminal or st.phase is Phase.RESERVED:
            continue
        cid = st.params.channel_id
        if cid not in channels and (st.originate_accepted or st.saw_event):
            vanished.append(attempt)
        elif channels.get(cid) == "Up" and st.phase in (Phase.DIALING, Phase.RINGING):
            # Answered while we were not listening (its StasisStart is lost):
            # a person is waiting, connect them now or abandon within the limit.
            answered.append(attempt)
    lost = tuple(a for a in agents if a.channel_up and a.channel_id not in channels)
    ours = {st.params.channel_id for st in calls.values()}
    ours.update(a.channel_id for a in agents)
    return ReconcileActions(
        vanished=tuple(vanished),
        answered=tuple(answered),
        agents_lost=lost,
        orphans=tuple(cid for cid in channels if is_ours(cid) and cid not in ours),
    )


@dataclass(frozen=True, slots=True)
class Recovered:
    """One unfinished attempt of a previous process and how it ends."""

    record: AttemptRecord
    outcome: DialOutcome
    hang_up: bool  # Asterisk still has its channel


@dataclass(frozen=True, slots=True)
class RecoveryPlan:
    attempts: tuple[Recovered, ...]
    orphans: tuple[str, ...]  # our channels to hang up


def recovered_outcome(record: AttemptRecord) -> DialOutcome:
    """Cancelled before the gate answered; otherwise it may have reached the network, so
    it counts: answered if the row says a person was reached, else no answer."""
    if record.stage == Stage.RESERVING:
        return DialOutcome.CANCELLED
    if record.answered:
        return DialOutcome.ANSWERED
    return DialOutcome.NO_ANSWER


def recovery(unfinished: Iterable[AttemptRecord], channels: Iterable[str]) -> RecoveryPlan:
    ids = set(channels)
    return RecoveryPlan(
        attempts=tuple(
            Recovered(rec, recovered_outcome(rec), rec.channel_id in ids) for rec in unfinished
        ),
        orphans=tuple(sorted(cid for cid in ids if is_ours(cid))),
    )
