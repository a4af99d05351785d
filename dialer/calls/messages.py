"""What the runner's dispatcher handles, one frozen type per kind of message.

Everything that touches live calls goes through one queue and is handled in
order by one task: ARI events, FSM events from timers, the two guards, the
reconcile after a reconnect, and work the API and the loops hand in
(``RunInDispatcher``). ``Message`` is their union; the dispatcher matches on
the type, so an unknown message is a type error, not a silently ignored string.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dialer import fsm
from dialer.ari.events import AriEvent


@dataclass(frozen=True, slots=True)
class AriEventReceived:
    event: AriEvent


@dataclass(frozen=True, slots=True)
class CallEvent:
    """An FSM event for one call (a timer fired)."""

    attempt_id: str
    event: fsm.Event


@dataclass(frozen=True, slots=True)
class RecordingWaitExpired:
    """The call ended; its RecordingFinished did not come within ``recording_wait``."""

    attempt_id: str


@dataclass(frozen=True, slots=True)
class DialGuardExpired:
    """Nothing heard of a dialling call after its ring timeout plus ``dial_guard``."""

    attempt_id: str


@dataclass(frozen=True, slots=True)
class Reconcile:
    """Compare with the channels Asterisk has (id -> state); ``done`` is set when handled."""

    channels: Mapping[str, str]
    done: asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class RunInDispatcher:
    """Run ``fn`` in order with the events; its result or exception goes to ``done``."""

    fn: Callable[[], Awaitable[Any]]
    done: asyncio.Future[Any]


@dataclass(frozen=True, slots=True)
class Stop:
    """The last message: the dispatcher returns."""


Message = (
    AriEventReceived
    | CallEvent
    | RecordingWaitExpired
    | DialGuardExpired
    | Reconcile
    | RunInDispatcher
    | Stop
)
