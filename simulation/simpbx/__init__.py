"""simpbx: a simulated Asterisk speaking the ARI subset the dialer uses, built from real captures.

Start it in-process with :func:`start_simpbx` (or ``async with running_simpbx(...)``)
or as a program: ``python -m simulation.simpbx --port 8088``. The returned
:class:`SimPbx` is also the test controller (journal, failure injection,
dropping the WebSocket, race mode, manual clock, behaviours per number).
"""

from __future__ import annotations

from simulation.simpbx.behaviours import Behaviour, Kind
from simulation.simpbx.clock import ClockMode, SimScheduler
from simulation.simpbx.engine import Engine, SimHttpError
from simulation.simpbx.server import (
    ARI_ROUTES,
    AriRoute,
    JournalEntry,
    SimPbx,
    running_simpbx,
    start_simpbx,
)

__all__ = [
    "ARI_ROUTES",
    "AriRoute",
    "Behaviour",
    "ClockMode",
    "Engine",
    "JournalEntry",
    "Kind",
    "SimHttpError",
    "SimPbx",
    "SimScheduler",
    "running_simpbx",
    "start_simpbx",
]
