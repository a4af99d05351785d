"""Fixtures for the ARI contract tests: simpbx in-process, a client, an event recorder.

Reference data: the real Asterisk captures copied into ``tests/ari/data/`` (so
the tests do not depend on ``../shared``); when the shared folder is present
(``<repo>/../shared/asterisk-reference``) a test checks the copies are identical.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ari_helpers import PASSWORD, USER, Backend, EventLog

from dialer.ari import AriClient, AriEvents, AriNotFound
from simulation.simpbx import SimPbx, start_simpbx


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimPbx]:
    """simpbx on a manual clock (time moves only with ``await sim.advance(s)``)."""
    pbx = await start_simpbx(clock="manual", recordings_dir=tmp_path / "recordings")
    try:
        yield pbx
    finally:
        await pbx.close()
        assert pbx.sched.errors == 0, "a simulated call raised (see the log)"


@pytest.fixture
async def client(sim: SimPbx) -> AsyncIterator[AriClient]:
    ari = AriClient(sim.base_url, USER, PASSWORD)
    try:
        yield ari
    finally:
        await ari.close()


@pytest.fixture
async def events(client: AriClient) -> AsyncIterator[tuple[AriEvents, EventLog]]:
    """A connected AriEvents (app ``dialer``) whose every event lands in an EventLog."""
    log = EventLog()
    ws = AriEvents(client, heartbeat=5.0, backoff_initial=0.05, backoff_max=0.2)
    ws.on_any(log)
    async with ws:
        await ws.wait_connected()
        yield ws, log


@pytest.fixture(params=["simpbx", pytest.param("asterisk", marks=pytest.mark.asterisk)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """The same contract tests against simpbx and, when configured, a real Asterisk."""
    if request.param == "asterisk":
        url = os.environ.get("ASTERISK_ARI_URL")
        if not url:
            pytest.skip(
                "real-Asterisk contract tests need ASTERISK_ARI_URL (e.g. http://127.0.0.1:8088/ari)"
                " and ASTERISK_ARI_USER/ASTERISK_ARI_PASSWORD, with the reference dialplan"
                " (shared/asterisk-reference/dialplan/extensions.conf) loaded"
            )
        ari = AriClient(
            url,
            os.environ.get("ASTERISK_ARI_USER", USER),
            os.environ.get("ASTERISK_ARI_PASSWORD", PASSWORD),
        )
        try:
            yield Backend("asterisk", ari, None)
        finally:
            await ari.close()
        return
    pbx = await start_simpbx(clock="manual", recordings_dir=tmp_path / "recordings")
    ari = AriClient(pbx.base_url, USER, PASSWORD)
    try:
        yield Backend("simpbx", ari, pbx)
    finally:
        await ari.close()
        await pbx.close()
        assert pbx.sched.errors == 0, "a simulated call raised (see the log)"


@pytest.fixture
async def backend_events(backend: Backend) -> AsyncIterator[EventLog]:
    """Events of app ``dialer`` on the backend, collected in an EventLog."""
    log = EventLog()
    ws = AriEvents(backend.client, heartbeat=5.0)
    ws.on_any(log)
    async with ws:
        await ws.wait_connected()
        yield log
    if backend.sim is None:
        # Asterisk unregisters the app of a closed socket asynchronously, by name: if the next
        # test's socket registered "dialer" first, that late unregister removes it and calls
        # then fail with "Stasis app 'dialer' doesn't exist". Wait until it is gone.
        async with asyncio.timeout(5.0):
            while True:
                try:
                    await backend.client.get_application("dialer")
                except AriNotFound:
                    break
                await asyncio.sleep(0.05)
