"""The one definition of "now": the ``Clock`` port and the clocks behind it.

Every package takes time from here. Logic that decides takes a ``Clock`` (or the
time as an argument) and never reads the system clock itself; only the defaults
of the composition root and of stores that stamp rows (``utcnow``) read
``SYSTEM_CLOCK``. Tests and the demo plug in ``ManualClock`` or ``ShiftedClock``
instead of sleeping or waiting for calling hours.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds (timers, caches, the pacer)."""

    def wall(self) -> datetime:
        """Timezone-aware wall-clock time (the gate, the ledger, the leads)."""


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC)


class ShiftedClock:
    """The system clock moved to a given wall time (demo and tests: inside calling hours),
    advancing at ``rate`` wall seconds per real second."""

    def __init__(self, start: datetime, rate: float = 1.0) -> None:
        if start.tzinfo is None:
            raise ValueError("ShiftedClock needs a timezone-aware start time")
        self._start = start
        self._t0 = time.monotonic()
        self._rate = rate

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self._rate)


class ManualClock:
    """Time moves only when told (``advance``): tests of TTLs and deadlines without sleeping."""

    def __init__(self, start: datetime, monotonic: float = 0.0) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._wall = start
        self._now = monotonic

    def now(self) -> float:
        return self._now

    def wall(self) -> datetime:
        return self._wall

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock does not go back ({seconds} s)")
        self._now += seconds
        self._wall += timedelta(seconds=seconds)


SYSTEM_CLOCK = SystemClock()


def utcnow() -> datetime:
    """The system's wall clock, for the defaults of code that takes no ``Clock``."""
    return SYSTEM_CLOCK.wall()
