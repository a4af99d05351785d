"""Schema migrations (Alembic) for every table of the project, on SQLite and PostgreSQL.

The revisions live in ``migrations/versions/`` as ``NNNN_<what>.py`` with revision id
``NNNN``: the highest number is the head (``migrations.head()``). ``0001`` is the schema
of the previous release (commit 73e539a, made by ``create_all``); every schema change
since is a revision chained after the head (README: "How to add a migration").

``dialer db upgrade`` brings a database to the head; a database made by the previous
release (its tables, no version) is adopted by ``0001``, which creates only what is
missing. A process opening a database (``ensure_current``) goes on when it is at the
head, brings a brand-new empty database to the head by itself (so ``make demo`` stays one
command), and otherwise refuses with ``SchemaNotCurrent`` (exit 3), naming
``dialer db upgrade``.

An upgrade runs in one transaction holding the database's write lock (SQLite ``BEGIN
IMMEDIATE``, PostgreSQL an advisory lock per schema), so two processes starting on the same
new database do not both create it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from compliance.database import make_engine, sqlite_begin_immediate

HERE = Path(__file__).resolve().parent
UPGRADE_COMMAND = "dialer db upgrade"

#: Tables of the previous release: a database with any of them but no version is one it made.
PREVIOUS_RELEASE_TABLES = frozenset(
    {
        "compliance_customers",
        "compliance_contact_events",
        "compliance_decisions",
        "compliance_list_entries",
        "compliance_list_audit",
        "campaigns",
        "leads",
        "rec_recordings",
        "rec_complaints",
        "rec_complaint_recordings",
        "access_users",
        "access_tokens",
        "access_audit",
        "access_audit_head",
        "desk_grants",
        "desk_calls",
        "dialer_attempts",
    }
)


class SchemaNotCurrent(RuntimeError):
    """The database's schema is not the one this code needs (the message says what to do)."""


class SchemaState(StrEnum):
    CURRENT = "current"
    EMPTY = "empty"  # nothing of ours yet
    PREVIOUS_RELEASE = "previous_release"  # tables made before migrations, no version
    BEHIND = "behind"  # an older revision
    UNKNOWN = "unknown"  # a revision this code does not know (a newer release?)


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    state: SchemaState
    current: str | None
    head: str
    where: str = ""

    @property
    def message(self) -> str:
        place = f"database {self.where}" if self.where else "the database"
        if self.state is SchemaState.CURRENT:
            return f"{place} is at revision {self.head} (the head)"
        if self.state is SchemaState.EMPTY:
            return f"{place} has no tables yet; `{UPGRADE_COMMAND}` creates revision {self.head}"
        if self.state is SchemaState.PREVIOUS_RELEASE:
            return (
                f"{place} was made by an earlier release (no schema version); this code needs "
                f"revision {self.head}: run `{UPGRADE_COMMAND}` (nothing is lost)"
            )
        if self.state is SchemaState.BEHIND:
            return (
                f"{place} is at revision {self.current}, this code needs {self.head}: "
                f"run `{UPGRADE_COMMAND}`"
            )
        return (
            f"{place} is at revision {self.current}, which this code does not know "
            f"(its head is {self.head}): is it a newer release's database?"
        )


def config(connection: Connection | None = None) -> Config:
    """The Alembic configuration of this package (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def head() -> str:
    found = scripts().get_current_head()
    if found is None:
        raise RuntimeError(f"no migration revisions under {HERE / 'versions'}")
    return found


def _where(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=True)


def status_of(conn: Connection, where: str = "") -> SchemaStatus:
    """The schema state, read on an open (synchronous) connection."""
    top = head()
    current = MigrationContext.configure(conn).get_current_revision()
    if current == top:
        return SchemaStatus(SchemaState.CURRENT, current, top, where)
    if current is None:
        ours = PREVIOUS_RELEASE_TABLES & set(inspect(conn).get_table_names())
        state = SchemaState.PREVIOUS_RELEASE if ours else SchemaState.EMPTY
        return SchemaStatus(state, None, top, where)
    known = {rev.revision for rev in scripts().walk_revisions()}
    state = SchemaState.BEHIND if current in known else SchemaState.UNKNOWN
    return SchemaStatus(state, current, top, where)


async def status(engine: AsyncEngine) -> SchemaStatus:
    async with engine.connect() as conn:
        return await conn.run_sync(status_of, _where(engine))


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        # one upgrade at a time per schema; released with the transaction
        key = "hashtext('dialer-migrations:' || current_schema())"
        conn.execute(text(f"SELECT pg_advisory_xact_lock({key})"))


def _upgrade(
    conn: Connection, revision: str, where: str, only_if_empty: bool
) -> tuple[SchemaStatus, SchemaStatus]:
    _lock(conn)
    before = status_of(conn, where)
    if only_if_empty and before.state is not SchemaState.EMPTY:
        return before, before
    if before.state is SchemaState.UNKNOWN:
        raise SchemaNotCurrent(before.message)
    command.upgrade(config(conn), revision)
    return before, status_of(conn, where)


async def _run_locked(
    engine: AsyncEngine, revision: str, only_if_empty: bool
) -> tuple[SchemaStatus, SchemaStatus]:
    where = _where(engine)
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        # a connection of our own whose transaction is BEGIN IMMEDIATE: the write lock is
        # held from the first statement, whatever the caller's engine does
        own = make_engine(engine.url.render_as_string(hide_password=False))
        sqlite_begin_immediate(own, "migrations_read_only")
        try:
            async with own.begin() as conn:
                return await conn.run_sync(_upgrade, revision, where, only_if_empty)
        finally:
            await own.dispose()
    async with engine.begin() as conn:
        return await conn.run_sync(_upgrade, revision, where, only_if_empty)


def new_revision(message: str) -> Path:
    """Write ``versions/NNNN_<message>.py`` chained after the head (``dialer db revision``)."""
    cfg = config()
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    made = command.revision(cfg, message=message, rev_id=f"{int(head()) + 1:04d}")
    scripts.cache_clear()
    found = made[0] if isinstance(made, list) else made
    if found is None:
        raise RuntimeError("alembic wrote no revision file")
    return Path(found.path)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> tuple[SchemaStatus, SchemaStatus]:
    """Upgrade to ``revision`` (default the head); the states before and after."""
    return await _run_locked(engine, revision, only_if_empty=False)


async def ensure_current(engine: AsyncEngine, *, create_empty: bool = True) -> None:
    """Go on at the head; bring an empty database to the head (``create_empty``);
    otherwise raise ``SchemaNotCurrent`` naming ``dialer db upgrade``."""
    found = await status(engine)
    if found.state is SchemaState.CURRENT:
        return
    if found.state is SchemaState.EMPTY and create_empty:
        _, after = await _run_locked(engine, "head", only_if_empty=True)
        if after.state is SchemaState.CURRENT:
            return
        found = after
    raise SchemaNotCurrent(found.message)
