"""Recordings leave Asterisk's spool once indexed (personal data only in the store).

The real stack (PostgreSQL index, ARI over sockets) against simpbx: after a
verified ingest the dialer sends ``DELETE /recordings/stored/{name}``; with
``recordings.delete_from_spool = false`` the file stays; a failed delete is
logged and the file stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from compliance.policy import parse_policy
from dialer.app import DialerStack, open_stack, running
from dialer.config import (
    AriSettings,
    DatabaseSettings,
    DialerSection,
    RecordingsSettings,
    Settings,
    load_settings,
)
from dialer.ports import ShiftedClock
from dialer.runner import RunnerConfig
from recordings.model import Recording, SearchQuery
from recordings.service import DIALER
from simulation.agents import SimulatedAgents
from simulation.demo import business_hours_start, seed_campaign
from simulation.demo_data import DEMO_POLICY, campaign_spec, numbers_ending
from simulation.simpbx.server import SimPbx, running_simpbx

pytestmark = pytest.mark.timeout(120)
CAMPAIGN = "spool"


@dataclass
class Run:
    sim: SimPbx
    stack: DialerStack
    # sha256 of each spool file at the moment simpbx deleted it
    deleted: dict[str, str]


@contextlib.asynccontextmanager
async def spool_run(
    tmp_path: Path, db_url: str, db_schema: str, *, delete_from_spool: bool
) -> AsyncIterator[Run]:
    policy = parse_policy(DEMO_POLICY, "demo policy")
    clock = ShiftedClock(business_hours_start(policy))
    config = RunnerConfig(
        wrapup_limit=5.0,
        drain_timeout=20.0,
        tick=0.02,
        max_claim=50,
    )
    async with running_simpbx(time_scale=10.0, recordings_dir=tmp_path / "spool") as sim:
        deleted: dict[str, str] = {}
        original = sim.engine.delete_stored

        def snapshot_then_delete(name: str) -> None:
            path = sim.engine.stored_file(name)[0]
            deleted[name] = hashlib.sha256(path.read_bytes()).hexdigest()
            original(name)

        sim.engine.delete_stored = snapshot_then_delete  # type: ignore[method-assign]
        settings = Settings(
            ari=AriSettings(url=sim.base_url, username="dialer", password="dialer-secret"),
            database=DatabaseSettings(url=db_url, schema=db_schema),
            dialer=DialerSection(abandon_context=""),
            recordings=RecordingsSettings(
                root=str(tmp_path / "evidence"), delete_from_spool=delete_from_spool
            ),
        )
        stack = await open_stack(settings, clock=clock, config=config, policy=policy)
        try:
            await seed_campaign(
                stack,
                numbers_ending("19", 4, seed=23),
                spec=campaign_spec(CAMPAIGN, pacing="progressive"),
                blacklist=[],
                at=clock.wall() - timedelta(hours=1),
            )
            yield Run(sim, stack, deleted)
        finally:
            await stack.close()


async def call_all(stack: DialerStack) -> None:
    agents = SimulatedAgents(
        stack.runner, CAMPAIGN, ["201", "202"], seed=11, max_talk=0.5, wrap_seconds=0.05
    )
    async with running(stack, burst=True) as task:
        await agents.login_all()
        agents_task = asyncio.create_task(agents.run())
        try:
            async with asyncio.timeout(60):
                await asyncio.shield(task)
        finally:
            agents.stop()
            await agents_task


async def indexed(stack: DialerStack) -> tuple[list[str], dict[str, Recording]]:
    """The recording names of the connected attempts, and the index by name."""
    assert stack.recordings is not None
    names = [a.recording for a in await stack.attempts.all() if a.connected and a.recording]
    assert names, "no call was connected and recorded"
    page = await stack.recordings.search(
        DIALER, SearchQuery(campaign=CAMPAIGN), reason="spool test", filters={}
    )
    return names, {r.name: r for r in page.items}


def spool_deletes(sim: SimPbx) -> list[tuple[str, int]]:
    return [
        (r.path.rsplit("/", 1)[1], r.status)
        for r in sim.requests
        if r.method == "DELETE" and r.path.startswith("/recordings/stored/")
    ]


@pytest.fixture(autouse=True)
def number_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALER_NUMBER_KEY", "spool-test-secret-key-0123456789abcdef")


async def test_recordings_are_deleted_from_the_spool_after_a_verified_ingest(
    tmp_path: Path, pg_target: Any
) -> None:
    async with spool_run(tmp_path, pg_target.url, pg_target.schema, delete_from_spool=True) as run:
        await call_all(run.stack)
        names, index = await indexed(run.stack)
        for name in names:
            assert name in index, f"{name} not indexed"
            # Indexed with the checksum of the very file Asterisk held...
            assert index[name].sha256 == run.deleted[name]
            # ... and the store's copy still has those bytes.
            assert run.stack.recordings is not None
            stored = run.stack.recordings.store.absolute(index[name].path)
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == index[name].sha256
            # Gone from Asterisk: neither listed nor on its disk.
            assert name not in run.sim.engine.stored
        assert sorted(spool_deletes(run.sim)) == sorted((n, 204) for n in names)
        assert [p.name for p in (tmp_path / "spool").rglob("*") if p.is_file()] == []


async def test_with_delete_from_spool_off_the_recordings_stay_on_asterisk(
    tmp_path: Path, pg_target: Any
) -> None:
    async with spool_run(tmp_path, pg_target.url, pg_target.schema, delete_from_spool=False) as run:
        await call_all(run.stack)
        names, index = await indexed(run.stack)
        for name in names:
            spool_file = run.sim.engine.stored_file(name)[0]
            assert index[name].sha256 == hashlib.sha256(spool_file.read_bytes()).hexdigest()
        assert spool_deletes(run.sim) == []


async def test_a_failed_delete_is_logged_and_the_recording_stays(
    tmp_path: Path, pg_target: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with spool_run(tmp_path, pg_target.url, pg_target.schema, delete_from_spool=True) as run:
        run.sim.fail_next("DELETE", "/recordings/stored/*", 500, count=1000)
        with caplog.at_level(logging.WARNING, logger="dialer.adapters"):
            await call_all(run.stack)
        names, index = await indexed(run.stack)
        for name in names:
            assert name in index
            assert name in run.sim.engine.stored
            assert any(
                name in r.getMessage() and "DELETE from the Asterisk spool failed" in r.getMessage()
                for r in caplog.records
            ), f"no warning for {name}"
        assert {s for _, s in spool_deletes(run.sim)} == {500}


def test_delete_from_spool_is_a_config_switch_on_by_default(tmp_path: Path) -> None:
    assert Settings().recordings.delete_from_spool is True
    conf = tmp_path / "dialer.toml"
    conf.write_text("[recordings]\ndelete_from_spool = false\n")
    assert load_settings(conf, env={}).recordings.delete_from_spool is False
    env = load_settings(None, env={"DIALER__RECORDINGS__DELETE_FROM_SPOOL": "false"})
    assert env.recordings.delete_from_spool is False
