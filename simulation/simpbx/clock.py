"""Simulated time for simpbx: one timer heap, driven by a manual clock or by real time.

The whole simulated Asterisk is a discrete-event simulation: every delayed
action (a ring that ends, a talk that ends, a playback that finishes) is a
timer in one heap, and callbacks run synchronously, in (due time, insertion)
order. That makes runs deterministic and cheap (hundreds of calls are just
heap entries).

* ``manual``: time stands still until :meth:`SimScheduler.advance` moves it;
  every timer due on the way fires in order, at its own simulated time.
* ``real``: a task sleeps until the next timer. ``time_scale`` > 1 makes
  simulated time run faster (``10`` = ten simulated seconds per real second).

Simulated time starts at 0; :meth:`wall` adds the epoch for event timestamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from enum import StrEnum

logger = logging.getLogger(__name__)


class ClockMode(StrEnum):
    MANUAL = "manual"
    REAL = "real"


class Timer:
    """A pending callback; :meth:`cancel` makes it a no-op."""

    __slots__ = ("callback", "cancelled", "due", "seq")

    def __init__(self, due: float, seq: int, callback: Callable[[], None]) -> None:
        self.due = due
        self.seq = seq
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: Timer) -> bool:
        return (self.due, self.seq) < (other.due, other.seq)


class SimScheduler:
    """Timer heap plus the notion of "now" (simulated seconds since start)."""

    def __init__(
        self,
        mode: ClockMode = ClockMode.REAL,
        *,
        time_scale: float = 1.0,
        epoch: float | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, not {time_scale}")
        self.mode = mode
        self.time_scale = time_scale
        self.epoch = time.time() if epoch is None else epoch
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self._manual_now = 0.0
        self._real_start = time.monotonic()
        self._wake = asyncio.Event()
        self.errors = 0

    # --- time -------------------------------------------------------------------------------

    def now(self) -> float:
        if self.mode is ClockMode.MANUAL:
            return self._manual_now
        return (time.monotonic() - self._real_start) * self.time_scale

    def wall(self) -> float:
        """Epoch seconds of the simulated now (for event timestamps)."""
        return self.epoch + self.now()

    # --- timers -----------------------------------------------------------------------------

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self.call_at(self.now() + max(0.0, delay), callback)

    def call_at(self, due: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(due, next(self._seq), callback)
        first = not self._heap or timer < self._heap[0]
        heapq.heappush(self._heap, timer)
        if first and self.mode is ClockMode.REAL:
            self._wake.set()
        return timer

    @property
    def pending(self) -> int:
        return sum(1 for t in self._heap if not t.cancelled)

    def next_due(self) -> float | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].due if self._heap else None

    def _fire(self, timer: Timer) -> None:
        try:
            timer.callback()
        except Exception:
            # A broken simulated call must not stop the whole PBX; it is logged and counted
            # (tests assert ``errors == 0``).
            self.errors += 1
            logger.exception("simpbx: timer callback failed")

    def run_due(self) -> int:
        """Fire every timer due at or before now; returns how many fired."""
        fired = 0
        now = self.now()
        while self._heap and self._heap[0].due <= now:
            timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self._fire(timer)
            fired += 1
        return fired

    def advance(self, seconds: float) -> int:
        """Manual mode: move time forward, firing timers at their own due times."""
        if self.mode is not ClockMode.MANUAL:
            raise RuntimeError("advance() needs the manual clock (clock='manual')")
        if seconds < 0:
            raise ValueError(f"cannot advance by a negative time ({seconds})")
        target = self._manual_now + seconds
        fired = 0
        while self._heap and self._heap[0].due <= target:
            timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self._manual_now = max(self._manual_now, timer.due)
            self._fire(timer)
            fired += 1
        self._manual_now = target
        return fired

    async def run(self) -> None:
        """Real mode: sleep until the next timer, fire, repeat (cancel to stop)."""
        if self.mode is not ClockMode.REAL:
            return
        while True:
            self._wake.clear()
            due = self.next_due()
            if due is None:
                await self._wake.wait()
                continue
            delay = (due - self.now()) / self.time_scale
            if delay > 0:
                # Either a new, earlier timer woke us or the delay ran out: look again.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            self.run_due()
            # Let the sockets drain between bursts so a flood of timers cannot starve them.
            await asyncio.sleep(0)
