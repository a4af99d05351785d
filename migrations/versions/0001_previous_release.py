"""Revision 0001: the schema of the previous release (commit 73e539a), all of it.

Until then each area made its tables with ``metadata.create_all`` (compliance/tables.py,
recordings/schema.py, agi_scripts/desk_store.py, dialer/attempts.py); these are those
tables, frozen here as they were, with the audit log's guards and its head row. A
database that release made has some or all of them and no version: this revision creates
only what is missing (tables, indexes, guards, head row), so such a database is adopted
without losing a row, and an empty one gets everything.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# SQLite autoincrements only an INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

# --- compliance/tables.py
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
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("campaign", String(128), nullable=False),
    Column("product", String(128), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("attempt_id", String(128), nullable=True),  # NULL: a refusal without attempt
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("kind", "attempt_id", name="uq_compliance_event_attempt"),
)
Index("ix_compliance_events_number", contact_events.c.number_key, contact_events.c.at)

#: Every decision the gate took through the ledger, allowed or refused, with reasons.
decisions = Table(
    "compliance_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number_key", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("campaign", String(128), nullable=False),
    Column("product", String(128), nullable=False),
    Column("attempt_id", String(128), nullable=False),
    Column("allowed", Boolean, nullable=False),
    Column("reserved", Boolean, nullable=False),
    Column("codes", Text, nullable=False),  # comma separated, for quick filters
    Column("reasons", Text, nullable=False),  # JSON list of {code, rule, message, retry_at}
    Column("retry_at", DateTime(timezone=True), nullable=True),
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
    Column("added_at", DateTime(timezone=True), nullable=False),
)

#: Append-only: every add, remove and import, who did it, from where, why.
list_audit = Table(
    "compliance_list_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
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
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
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
    Column("assigned_at", DateTime(timezone=True), nullable=False),
    Column("dialled_number", String(32), nullable=True),
    Column("status", String(16), nullable=False),
    Column("reasons", Text, nullable=False),  # JSON list of reason codes / notes
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("claimed_by", String(128), nullable=False, default=""),
    Column("claimed_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("campaign", "number_key", name="uq_leads_campaign_number"),
)
Index("ix_leads_due", leads.c.campaign, leads.c.status, leads.c.next_attempt_at)


# --- recordings/schema.py
recordings = Table(
    "rec_recordings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("attempt_id", String(64), nullable=False, default=""),
    Column("campaign", String(64), nullable=False, default=""),
    Column("agent", String(64), nullable=False, default=""),
    Column("origin", String(16), nullable=False),
    Column("number_hmac", String(64), nullable=False),
    Column("number_masked", String(32), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("duration_ms", BigInteger, nullable=True),
    Column("format", String(16), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("path", String(200), nullable=False),
    Column("retain_until", DateTime(timezone=True), nullable=False),
    Column("legal_hold", Boolean, nullable=False, default=False),
    Column("ingested_at", DateTime(timezone=True), nullable=False),
    Index("ix_rec_number_time", "number_hmac", "started_at"),
    Index("ix_rec_time", "started_at"),
    Index("ix_rec_agent_time", "agent", "started_at"),
    Index("ix_rec_campaign_time", "campaign", "started_at"),
    Index("ix_rec_retain", "retain_until"),
    Index("ix_rec_attempt", "attempt_id"),
    Index("ix_rec_sha", "sha256"),
)

complaints = Table(
    "rec_complaints",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("number_hmac", String(64), nullable=False, index=True),
    Column("number_masked", String(32), nullable=False),
    Column("number_enc", LargeBinary, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("registered_by", String(64), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("company_at_fault", Boolean, nullable=True),
    Column("judgement_note", Text, nullable=False, default=""),
    Column("penalty_note", Text, nullable=False, default=""),
    Column("order_cancelled", Boolean, nullable=False, default=False),
    Column("refund", Numeric(12, 2), nullable=True),
    Column("judged_by", String(64), nullable=False, default=""),
    Column("judged_at", DateTime(timezone=True), nullable=True),
    Column("reply", Text, nullable=False, default=""),
    Column("closed_by", String(64), nullable=False, default=""),
    Column("closed_at", DateTime(timezone=True), nullable=True),
)

complaint_recordings = Table(
    "rec_complaint_recordings",
    metadata,
    Column(
        "complaint_id",
        BigId,
        ForeignKey("rec_complaints.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "recording_id",
        BigId,
        ForeignKey("rec_recordings.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)

users = Table(
    "access_users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("agent_id", String(64), nullable=False, default=""),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

tokens = Table(
    "access_tokens",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_id", BigId, ForeignKey("access_users.id"), nullable=False, index=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("label", String(64), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

audit_log = Table(
    "access_audit",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("outcome", String(8), nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

#: One row (id 1): the last sequence number and hash. Appenders lock it, which serializes
#: the chain; a trigger advances it on every insert; verification compares it with the last
#: entry, so a deleted tail is found too.
audit_head = Table(
    "access_audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)


# --- agi_scripts/desk_store.py
desk_grants = Table(
    "desk_grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("extension", String(16), nullable=False),
    Column("requester", String(128), nullable=False),
    Column("approvers", Text, nullable=False),  # comma-separated names
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revoked_by", String(128), nullable=False, default=""),
    Index("ix_desk_grants_extension", "extension", "expires_at"),
)

desk_calls = Table(
    "desk_calls",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("call_id", String(64), nullable=False, unique=True),
    Column("extension", String(16), nullable=False),
    Column("month", String(7), nullable=False),  # YYYY-MM in the policy's time zone
    Column("ended_at", DateTime(timezone=True), nullable=False),
    Column("number_key", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("dial", String(40), nullable=False),
    Column("billsec", Integer, nullable=False),
    Column("cost_fen", Integer, nullable=False),
    Index("ix_desk_calls_month", "month", "extension"),
)


# --- dialer/attempts.py
attempts_table = Table(
    "dialer_attempts",
    metadata,
    Column("attempt_id", String(64), primary_key=True),
    Column("campaign", String(128), nullable=False),
    Column("lead_id", String(64), nullable=False),
    Column("number", String(32), nullable=False),
    Column("product", String(128), nullable=False),
    Column("channel_id", String(80), nullable=False, unique=True),
    Column("stage", String(16), nullable=False),
    Column("phase", String(16), nullable=False),
    Column("outcome", String(16), nullable=True),
    Column("reasons", Text, nullable=False, default=""),
    Column("answered", Boolean, nullable=False, default=False),
    Column("connected", Boolean, nullable=False, default=False),
    Column("abandoned", Boolean, nullable=False, default=False),
    Column("agent_id", String(64), nullable=True),
    Column("recording", String(128), nullable=True),
    Column("recording_seconds", Float, nullable=True),
    Column("ring_seconds", Float, nullable=True),
    Column("talk_seconds", Float, nullable=True),
    Column("disposition", String(32), nullable=True),
    Column("disposition_product", String(128), nullable=True),
    Column("order_confirmed", Boolean, nullable=False, default=False),
    Column("note", Text, nullable=False, default=""),
    Column("try_no", Integer, nullable=False, default=1),
    Column("connected_at", DateTime(timezone=True), nullable=True),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_dialer_attempts_stage", attempts_table.c.stage)
Index("ix_dialer_attempts_campaign", attempts_table.c.campaign)


GENESIS_HASH = "0" * 64

_SQLITE_GUARDS = (
    "CREATE TRIGGER IF NOT EXISTS access_audit_advance_head AFTER INSERT ON access_audit "
    "BEGIN UPDATE access_audit_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1; END",
    "CREATE TRIGGER IF NOT EXISTS access_audit_no_update BEFORE UPDATE ON access_audit "
    "BEGIN SELECT RAISE(ABORT, 'access_audit is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS access_audit_no_delete BEFORE DELETE ON access_audit "
    "BEGIN SELECT RAISE(ABORT, 'access_audit is append-only'); END",
)

_PG_GUARDS = (
    "CREATE OR REPLACE FUNCTION access_audit_advance_head() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN UPDATE access_audit_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1; "
    "RETURN NULL; END $$",
    "CREATE OR REPLACE TRIGGER access_audit_advance_head AFTER INSERT ON access_audit "
    "FOR EACH ROW EXECUTE FUNCTION access_audit_advance_head()",
    "CREATE OR REPLACE FUNCTION access_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'access_audit is append-only'; END $$",
    "CREATE OR REPLACE TRIGGER access_audit_append_only BEFORE UPDATE OR DELETE ON access_audit "
    "FOR EACH ROW EXECUTE FUNCTION access_audit_append_only()",
    "CREATE OR REPLACE TRIGGER access_audit_no_truncate BEFORE TRUNCATE ON access_audit "
    "FOR EACH STATEMENT EXECUTE FUNCTION access_audit_append_only()",
)


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind, checkfirst=True)
    # create_all adds indexes only with a new table; an older table may miss one
    present = inspect(bind)
    for table in metadata.sorted_tables:
        names = {ix["name"] for ix in present.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in names:
                index.create(bind)
    for statement in _SQLITE_GUARDS if bind.dialect.name == "sqlite" else _PG_GUARDS:
        op.execute(statement)
    # the head row is made with an empty log only: a head missing beside entries stays
    # missing, and `dialer audit verify` reports it
    no_head = bind.execute(audit_head.select().where(audit_head.c.id == 1)).first() is None
    no_entries = bind.execute(audit_log.select().limit(1)).first() is None
    if no_head and no_entries:
        op.execute(audit_head.insert().values(id=1, seq=0, hash=GENESIS_HASH))
