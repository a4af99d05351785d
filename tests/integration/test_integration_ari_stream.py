"""Recordings come from ARI as a stream: chunked, never whole in memory, checksum intact.

simpbx (manual clock) records a bridge for minutes of simulated time, which
gives a WAV of several MB; the ARI client streams it in chunks and the
recordings index stores it with the SHA-256 of the bytes Asterisk holds.
"""

from __future__ import annotations

import hashlib
import logging
import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dialer.adapters import AriRecordingSource
from dialer.ari.client import AriClient
from dialer.ari.errors import AriNotFound
from recordings.config import RecordingsConfig
from recordings.model import AttemptMeta
from recordings.pii import NumberKeys
from recordings.service import RecordingsService
from simulation.simpbx import SimPbx, start_simpbx

SECONDS = 200.0  # 8 kHz 16-bit mono: 16,000 bytes a second -> about 3.2 MB
CHUNK = 65536


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimPbx]:
    pbx = await start_simpbx(clock="manual", recordings_dir=tmp_path / "spool")
    try:
        yield pbx
    finally:
        await pbx.close()


@pytest.fixture
async def client(sim: SimPbx) -> AsyncIterator[AriClient]:
    ari = AriClient(sim.base_url, sim.username, sim.password)
    try:
        yield ari
    finally:
        await ari.close()


async def record_long(sim: SimPbx, client: AriClient, name: str) -> Path:
    await client.create_bridge("br-long", type="mixing")
    await client.record_bridge("br-long", name, format="wav", if_exists="fail")
    await sim.advance(SECONDS)
    await client.stop_recording(name)
    path = sim.recordings_dir / f"{name}.wav"
    assert path.stat().st_size > 3_000_000
    return path


async def test_stream_arrives_in_chunks_with_the_file_bytes(
    sim: SimPbx, client: AriClient, caplog: pytest.LogCaptureFixture
) -> None:
    path = await record_long(sim, client, "rec-long")
    sizes: list[int] = []
    hasher = hashlib.sha256()
    tracemalloc.start()
    try:
        async for chunk in client.stream_stored_recording_file("rec-long", chunk_size=CHUNK):
            sizes.append(len(chunk))
            hasher.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Neither simpbx (serving) nor the client (reading) held the file whole.
    assert peak < path.stat().st_size // 3, f"peak {peak} bytes for a {path.stat().st_size} file"
    assert len(sizes) >= path.stat().st_size // CHUNK
    assert max(sizes) <= CHUNK
    assert sum(sizes) == path.stat().st_size
    assert hasher.hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()
    # The server side sent it without an error (aiohttp logs a failed reply, it does not raise).
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def test_stream_maps_errors_like_the_other_calls(client: AriClient) -> None:
    with pytest.raises(AriNotFound) as err:
        async for _ in client.stream_stored_recording_file("rec-none"):
            pytest.fail("a chunk arrived for a recording that does not exist")
    assert err.value.message == "Recording not found"
    with pytest.raises(ValueError, match="chunk_size"):
        async for _ in client.stream_stored_recording_file("rec-none", chunk_size=0):
            pass


async def test_ari_source_ingests_a_long_recording_with_its_checksum(
    sim: SimPbx, client: AriClient, tmp_path: Path, sqlite_url: str
) -> None:
    path = await record_long(sim, client, "rec-evidence")
    service = await RecordingsService.open(
        RecordingsConfig(db_url=sqlite_url, db_schema=None, store_dir=str(tmp_path / "store")),
        NumberKeys("integration-secret-key-0123456789abcdef"),
    )
    try:
        meta = AttemptMeta(
            number="13812345678",
            started_at=datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
            attempt_id="att-long",
            campaign="scn",
            agent="201",
            duration_s=SECONDS,
            format="wav",
        )
        rec = await service.ingest_from_source("rec-evidence", meta, AriRecordingSource(client))
        expected = hashlib.sha256(path.read_bytes()).hexdigest()
        assert rec.sha256 == expected
        assert rec.size == path.stat().st_size
        with pytest.raises(FileNotFoundError, match="rec-gone"):
            await service.ingest_from_source("rec-gone", meta, AriRecordingSource(client))
    finally:
        await service.aclose()
