"""The agent directory (SQL): agent id -> softphone endpoint and PBX, kept by an administrator.

The dialer calls an agent's softphone only at the endpoint this directory
gives (``dialer agent add|list|remove``); the HTTP login never takes one from
the request. ``AriCallControl`` checks every agent originate against it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from compliance.tables import agent_directory

_AGENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# TECH/resource[@context]: PJSIP/701, SIP/desk-12, Local/701@agents
_ENDPOINT = re.compile(r"[A-Za-z][A-Za-z0-9]*/[A-Za-z0-9_.+-]+(@[A-Za-z0-9_.-]+)?")


class DirectoryError(ValueError):
    """Bad input for the directory (names the field and the problem)."""


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    agent_id: str
    endpoint: str
    pbx: str
    added_by: str
    added_at: datetime


def check_agent_id(agent_id: str) -> str:
    if not _AGENT_ID.fullmatch(agent_id):
        raise DirectoryError(
            f"agent id {agent_id!r}: 1-64 letters, digits, '_', '.', '-' (starting with a "
            "letter or digit)"
        )
    return agent_id


def check_endpoint(endpoint: str) -> str:
    if not _ENDPOINT.fullmatch(endpoint):
        raise DirectoryError(
            f"endpoint {endpoint!r}: expected TECH/RESOURCE[@CONTEXT], e.g. PJSIP/701"
        )
    return endpoint


class AgentDirectory:
    """The directory on the deployment's SQL database (the compliance engine)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(
        self, agent_id: str, endpoint: str, *, pbx: str, added_by: str, at: datetime | None = None
    ) -> DirectoryEntry:
        entry = DirectoryEntry(
            check_agent_id(agent_id),
            check_endpoint(endpoint),
            pbx or "default",
            added_by or "admin",
            at or datetime.now(UTC),
        )
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    agent_directory.insert().values(
                        agent_id=entry.agent_id,
                        endpoint=entry.endpoint,
                        pbx=entry.pbx,
                        added_by=entry.added_by,
                        added_at=entry.added_at,
                    )
                )
        except IntegrityError:
            raise DirectoryError(
                f"agent {agent_id!r} is already in the directory: remove it first "
                f"(dialer agent remove {agent_id})"
            ) from None
        return entry

    async def add_many(
        self, entries: list[tuple[str, str]], *, pbx: str, added_by: str
    ) -> int:
        """Add (agent id, endpoint) pairs in one transaction; ids already present are kept."""
        at = datetime.now(UTC)
        rows = [
            {
                "agent_id": check_agent_id(a),
                "endpoint": check_endpoint(e),
                "pbx": pbx,
                "added_by": added_by,
                "added_at": at,
            }
            for a, e in entries
        ]
        async with self.engine.begin() as conn:
            present = set(
                (await conn.execute(select(agent_directory.c.agent_id))).scalars().all()
            )
            new = [r for r in rows if r["agent_id"] not in present]
            if new:
                await conn.execute(agent_directory.insert(), new)
        return len(new)

    async def remove(self, agent_id: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(agent_directory).where(agent_directory.c.agent_id == agent_id)
            )
        return bool(result.rowcount)

    async def get(self, agent_id: str) -> DirectoryEntry | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(agent_directory).where(agent_directory.c.agent_id == agent_id)
                )
            ).first()
        if row is None:
            return None
        return DirectoryEntry(row.agent_id, row.endpoint, row.pbx, row.added_by, row.added_at)

    async def endpoint_of(self, agent_id: str) -> str | None:
        entry = await self.get(agent_id)
        return entry.endpoint if entry is not None else None

    async def list_all(self) -> list[DirectoryEntry]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(select(agent_directory).order_by(agent_directory.c.agent_id))
            ).all()
        return [DirectoryEntry(r.agent_id, r.endpoint, r.pbx, r.added_by, r.added_at) for r in rows]
