"""Every connected call's recording reaches the recordings index (evidence, rule C)."""

from __future__ import annotations

from typing import Any

import pytest

from recordings.model import SearchQuery
from recordings.service import DIALER
from simulation.demo_data import numbers_ending


async def test_recordings_are_indexed_with_their_attempt(
    scenario_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIALER_NUMBER_KEY", "scenario-secret-key-0123456789abcdef")
    numbers = numbers_ending("19", 10, seed=14)
    async with scenario_factory(numbers, with_recordings=True) as scn:
        assert scn.stack.recordings is not None
        await scn.burst(agents=5, max_talk=0.6)
        attempts = [a for a in await scn.stack.attempts.all() if a.connected]
        assert attempts
        page = await scn.stack.recordings.search(
            DIALER,
            SearchQuery(campaign="scn"),
            reason="scenario check",
            filters={"campaign": "scn"},
        )
        indexed = {r.name: r for r in page.items}
        for a in attempts:
            assert a.recording is not None
            rec = indexed[a.recording]
            assert rec.attempt_id == a.attempt_id
            assert rec.agent == a.agent_id
            assert "****" in rec.number_masked
