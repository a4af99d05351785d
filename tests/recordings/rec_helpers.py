"""Fixtures of the recordings tests: the service on SQLite and on the real PostgreSQL.

``env`` is parametrized over both databases; the blacklist is the real
``compliance.lists.ListStore`` on the same database.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from compliance.lists import ListStore
from compliance.policy import default_policy
from compliance.tables import open_engine as open_compliance_engine
from identity.model import Principal, Role
from identity.store import IdentityStore
from recordings.audit import AccessAudit
from recordings.blacklist import ListStoreBlacklist
from recordings.bundle import MappingCallTimeline
from recordings.config import RecordingsConfig
from recordings.model import AttemptMeta, Origin, Recording
from recordings.pii import NumberKeys
from recordings.schema import open_engine
from recordings.service import RecordingsService
from recordings.store import FileStore

SECRET = "test-number-secret-0123456789abcdef"
NUMBER = "13812345678"
OTHER = "13987654321"
COMPLIANCE = Principal("carol", Role.COMPLIANCE)
ADMIN = Principal("root", Role.ADMIN)
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def wav_bytes(seconds: float = 1.0, freq: float = 440.0, rate: int = 8000) -> bytes:
    """A real 8 kHz mono 16-bit WAV of a tone (distinct content per frequency)."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate)))
        for i in range(int(seconds * rate))
    )
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return buf.getvalue()


@dataclass
class Env:
    service: RecordingsService
    identity: IdentityStore
    lists: ListStore
    engine: AsyncEngine
    timeline: MappingCallTimeline
    spool: Path
    db_url: str
    schema: str | None

    def spool_file(self, name: str, data: bytes) -> Path:
        path = self.spool / f"{name}.wav"
        path.write_bytes(data)
        return path

    async def add(
        self,
        name: str,
        *,
        number: str = NUMBER,
        agent: str = "a1",
        campaign: str = "spring",
        started: datetime = T0,
        freq: float = 440.0,
        origin: Origin = Origin.DIALER,
    ) -> Recording:
        path = self.spool_file(name, wav_bytes(0.5, freq))
        meta = AttemptMeta(
            number=number,
            started_at=started,
            attempt_id=name.removeprefix("rec-"),
            campaign=campaign,
            agent=agent,
            origin=origin,
        )
        return await self.service.ingest(name, meta, path)


async def drop_audit_guards(env: Env) -> None:
    """Remove the database's append-only guards, as someone with DDL rights could (the
    trigger that moves the head with each insert goes too)."""
    async with env.engine.begin() as conn:
        if env.schema is None:
            names = (
                await conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                    "AND tbl_name IN ('access_audit', 'access_audit_head')"
                )
            ).scalars()
            for name in list(names):
                await conn.exec_driver_sql(f"DROP TRIGGER {name}")
        else:
            await conn.exec_driver_sql("ALTER TABLE access_audit DISABLE TRIGGER USER")
            await conn.exec_driver_sql("ALTER TABLE access_audit_head DISABLE TRIGGER USER")


@pytest.fixture(params=["sqlite", "postgres"])
def db_target(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(url, schema): the `sqlite_url` file, or a fresh `pg_target` schema on PostgreSQL."""
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
        return url, None
    target = request.getfixturevalue("pg_target")
    return target.url, target.schema


@pytest.fixture
async def env(db_target: tuple[str, str | None], tmp_path: Path) -> AsyncIterator[Env]:
    url, schema = db_target
    engine = await open_engine(url, schema=schema)
    list_engine = await open_compliance_engine(url, schema=schema)
    # The policy's numbering plan, as the gate and the dialer key numbers with it.
    lists = ListStore(list_engine, plan=default_policy().numbers)
    timeline = MappingCallTimeline()
    config = RecordingsConfig(db_url=url, db_schema=schema, store_dir=str(tmp_path / "store"))
    service = RecordingsService(
        engine,
        FileStore(tmp_path / "store"),
        NumberKeys(SECRET),
        config=config,
        blacklist=ListStoreBlacklist(lists),
        timeline=timeline,
    )
    identity = await IdentityStore.open(url, schema=schema, audit=AccessAudit())
    spool = tmp_path / "spool"
    spool.mkdir()
    try:
        yield Env(service, identity, lists, engine, timeline, spool, url, schema)
    finally:
        await identity.aclose()
        await engine.dispose()
        await list_engine.dispose()
