"""SQL tables of the compliance side (ledger, lists, leads, campaigns) and engine setup.

One ``MetaData`` without a schema: on PostgreSQL the engine's ``search_path``
(``compliance.database.make_engine(url, schema=...)``) decides where the tables
live. Every time column is a ``UtcDateTime``: aware datetimes in, aware UTC
datetimes out, on SQLite (which has no time zone type) as well as PostgreSQL.

``open_engine`` is the one place that builds an engine for these stores: on
SQLite every transaction starts with ``BEGIN IMMEDIATE`` (the write lock is
taken at the start, so two writers never both read a customer's history and
then both append to it; it also avoids the deadlock-prone read-to-write lock
upgrade of a deferred transaction).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from compliance.database import UtcDateTime, is_sqlite, make_engine, sqlite_begin_immediate
from migrations import ensure_current

metadata = MetaData()

# --- contact ledger -------------------------------------------------------------------------

#: One row per customer (number key) that has a history: the row PostgreSQL locks
#: (SELECT ... FOR UPDATE) to serialize check-and-reserve per customer.
customers = Table(
    "compliance_customers",
    metadata,
    Column("number_key", String(32), primary_key=True),
)

#: Append-only contact history (attempts and refusals); only ``outcome`` of an attempt changes.
contact_events = Table(
    "compliance_contact_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number_key", String(32), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("campaign", String(128), nullable=False),
    Column("product", String(128), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("attempt_id", String(128), nullable=True),  # NULL: a refusal without attempt
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    UniqueConstraint("kind", "attempt_id", name="uq_compliance_event_attempt"),
)
Index("ix_compliance_events_number", contact_events.c.number_key, contact_events.c.at)

#: Every decision the gate took through the ledger, allowed or refused, with reasons.
decisions = Table(
    "compliance_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number_key", String(64), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("decided_at", UtcDateTime, nullable=False),
    Column("campaign", String(128), nullable=False),
    Column("product", String(128), nullable=False),
    Column("attempt_id", String(128), nullable=False),
    Column("allowed", Boolean, nullable=False),
    Column("reserved", Boolean, nullable=False),
    Column("codes", Text, nullable=False),  # comma separated, for quick filters
    Column("reasons", Text, nullable=False),  # JSON list of {code, rule, message, retry_at}
    Column("retry_at", UtcDateTime, nullable=True),
    Column("policy_version", String(64), nullable=False),
)
Index("ix_compliance_decisions_number", decisions.c.number_key, decisions.c.id)
#: ``decisions_for_attempt`` (evidence bundles) and the Redis journal replay look up by attempt.
ix_decisions_attempt = Index("ix_compliance_decisions_attempt", decisions.c.attempt_id)

# --- do-not-call and special lists ----------------------------------------------------------

list_entries = Table(
    "compliance_list_entries",
    metadata,
    Column("number_key", String(32), primary_key=True),
    Column("list_kind", String(16), primary_key=True),  # "dnc" or "special"
    Column("reason", String(32), nullable=False),
    Column("source", String(128), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("note", Text, nullable=False),
    Column("added_at", UtcDateTime, nullable=False),
)

#: Append-only: every add, remove and import, who did it, from where, why.
list_audit = Table(
    "compliance_list_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("action", String(16), nullable=False),  # add, update, remove, import
    Column("number_key", String(32), nullable=False),  # "" for an import summary row
    Column("list_kind", String(16), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("source", String(128), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("detail", Text, nullable=False),
)

# --- campaigns and leads --------------------------------------------------------------------

campaigns = Table(
    "campaigns",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("script", Text, nullable=False),
    Column("products", Text, nullable=False),  # JSON list
    Column("caller_id", String(32), nullable=False),
    Column("ring_timeout", Integer, nullable=False),
    Column("hours", Text, nullable=False),  # JSON: {"days": [...], "windows": [[from, to]]}
    Column("retry", Text, nullable=False),  # JSON: {outcome: {"max_tries": n, "delay_s": s}}
    Column("pacing_method", String(32), nullable=False),
    Column("pacing_params", Text, nullable=False),  # JSON object of numbers
    Column("state", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

leads = Table(
    "leads",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign", String(128), ForeignKey("campaigns.name"), nullable=False),
    Column("number_key", String(32), nullable=False),
    Column("name", String(256), nullable=False),
    Column("segment", String(64), nullable=False),
    Column("product", String(128), nullable=False),
    Column("assigned_at", UtcDateTime, nullable=False),
    Column("dialled_number", String(32), nullable=True),
    Column("status", String(16), nullable=False),
    Column("reasons", Text, nullable=False),  # JSON list of reason codes / notes
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("claimed_by", String(128), nullable=False, default=""),
    Column("claimed_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("campaign", "number_key", name="uq_leads_campaign_number"),
)
Index("ix_leads_due", leads.c.campaign, leads.c.status, leads.c.next_attempt_at)

# --- the deployment: agent directory, ledger of record -----------------------------------------

#: The agent directory an administrator maintains (``dialer agent add``): the only
#: softphone endpoints the dialer ever calls for an agent (agent id -> endpoint, PBX).
agent_directory = Table(
    "dialer_agent_directory",
    metadata,
    Column("agent_id", String(64), primary_key=True),
    Column("endpoint", String(256), nullable=False),
    Column("pbx", String(128), nullable=False),
    Column("added_by", String(128), nullable=False),
    Column("added_at", UtcDateTime, nullable=False),
)

#: Deployment-wide settings decided once and read by every process: where the ledger
#: of record lives (``ledger.backend`` sql|redis, ``ledger.redis_url``,
#: ``ledger.redis_prefix``, ``ledger.generation``).
deployment_settings = Table(
    "dialer_deployment",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

#: The list (名单) a lead came in with: the import's name (``leads import --list``, default the
#: file's stem). A table of its own rather than a column of ``leads``, so a database made
#: before it gains it through ``create_all``; the last import that carried a lead wins.
lead_lists = Table(
    "lead_lists",
    metadata,
    Column("campaign", String(128), primary_key=True),
    Column("number_key", String(32), primary_key=True),
    Column("list_name", String(128), nullable=False),
)


#: Execution option marking an engine (``reader``) whose transactions only read.
READ_ONLY_OPTION = "compliance_read_only"


def reader(engine: AsyncEngine) -> AsyncEngine:
    """The same engine and pool, for connections that run single read statements.

    No transaction is opened (SQLite: no ``BEGIN IMMEDIATE``, see ``open_engine``;
    PostgreSQL: autocommit, no BEGIN/ROLLBACK round trips), so each statement is
    its own snapshot: use it only where one statement answers the question. On
    SQLite such lookups never queue behind writers.
    """
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{READ_ONLY_OPTION: True})
    return engine.execution_options(isolation_level="AUTOCOMMIT", **{READ_ONLY_OPTION: True})


async def open_engine(
    url: str, *, schema: str | None = None, create: bool = True, **kwargs: Any
) -> AsyncEngine:
    """Build the engine every compliance store shares; a new empty database is brought to
    the schema's head when ``create``, an older one refused (``migrations.ensure_current``).

    SQLite: the parent directory of the file is created, every transaction is
    ``BEGIN IMMEDIATE``. PostgreSQL: ``schema`` becomes the search path.
    """
    if is_sqlite(url):
        _ensure_sqlite_dir(url)
        engine = make_engine(url, **kwargs)
        sqlite_begin_immediate(engine, READ_ONLY_OPTION)
    else:
        engine = make_engine(url, schema=schema, **kwargs)
    # The schema is the migrations' (``dialer db upgrade``): refuse an older database,
    # bring a brand-new one to the head when ``create``.
    try:
        await ensure_current(engine, create_empty=create)
    except Exception:
        await engine.dispose()
        raise
    return engine


def _ensure_sqlite_dir(url: str) -> None:
    import os

    _, _, path = url.partition(":///")
    path = path.split("?", 1)[0]
    if path and path != ":memory:":
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
