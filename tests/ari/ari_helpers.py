"""Shared helpers of the ARI contract tests (imported by conftest and the test modules)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from dialer.ari import AriClient, AriEvent, event_key
from simulation.simpbx import SimPbx

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[2]
SHARED_REFERENCE = REPO / ".." / "shared" / "asterisk-reference"
USER = "dialer"
PASSWORD = "dialer-secret"


def basic_auth(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(user, password)}


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class EventLog:
    """Collects decoded events; ``wait_for`` polls until a predicate holds."""

    def __init__(self) -> None:
        self.events: list[AriEvent] = []
        self._changed = asyncio.Event()

    async def __call__(self, event: AriEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def types(self, key: str) -> list[str]:
        return [e.type for e in self.events if event_key(e) == key]

    def of(self, event_type: str, key: str | None = None) -> list[AriEvent]:
        return [
            e for e in self.events if e.type == event_type and (key is None or event_key(e) == key)
        ]

    async def wait_for(self, predicate: Callable[[], bool], within: float = 3.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def wait_type(
        self, event_type: str, key: str | None = None, within: float = 3.0
    ) -> AriEvent:
        await self.wait_for(lambda: bool(self.of(event_type, key)), within)
        return self.of(event_type, key)[-1]


class Backend:
    """What a contract test talks to: simpbx (manual clock) or a real Asterisk."""

    def __init__(self, name: str, client: AriClient, sim: SimPbx | None) -> None:
        self.name = name
        self.client = client
        self.sim = sim

    async def wait(self, seconds: float) -> None:
        """Let ``seconds`` of PBX time pass (advance the manual clock, or really wait)."""
        if self.sim is not None:
            await self.sim.advance(seconds)
            await asyncio.sleep(0.01)
        else:
            await asyncio.sleep(seconds)

    @staticmethod
    def uid(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"
