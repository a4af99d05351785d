"""Revision 0003: the audit log's guards made complete (commit 0beca1f, "append-only guards
on every audit table"), folded in from the code that created them on every start.

An entry is refused unless it follows the last one (so INSERT OR REPLACE and UPSERT of an
existing seq fail too), and the head row can only ever follow the log: it cannot be
deleted, inserted twice or pointed elsewhere; on PostgreSQL TRUNCATE of the head is refused
as well. The statements create what is missing and replace the functions, so they apply as
well to a database whose guards that commit's code had already made.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The audit tables are append-only by the database's own guards, whoever writes to them:
# an entry is refused unless it follows the last one (so INSERT OR REPLACE and UPSERT of an
# existing seq fail before any row is touched), UPDATE, DELETE and (PostgreSQL) TRUNCATE are
# refused, and the head row can only ever move to the log's last entry: it cannot be deleted,
# rolled back or pointed elsewhere. Someone able to drop the guards is still caught by the
# hash chain and, for a rewritten tail, by the signed anchors kept outside the database.
_LAST_SEQ = "(SELECT coalesce(max(seq), 0) FROM access_audit)"
_LAST_HASH = f"coalesce((SELECT hash FROM access_audit WHERE seq = {_LAST_SEQ}), '{'0' * 64}')"
_SQLITE_GUARDS = (
    "CREATE TRIGGER IF NOT EXISTS access_audit_advance_head AFTER INSERT ON access_audit "
    "BEGIN UPDATE access_audit_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1; END",
    "CREATE TRIGGER IF NOT EXISTS access_audit_no_update BEFORE UPDATE ON access_audit "
    "BEGIN SELECT RAISE(ABORT, 'access_audit is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS access_audit_no_delete BEFORE DELETE ON access_audit "
    "BEGIN SELECT RAISE(ABORT, 'access_audit is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS access_audit_insert_follows BEFORE INSERT ON access_audit "
    f"WHEN NEW.seq IS NOT {_LAST_SEQ} + 1 OR NEW.prev_hash IS NOT {_LAST_HASH} "
    "BEGIN SELECT RAISE(ABORT, 'access_audit is append-only: an entry must follow the last "
    "one'); END",
    "CREATE TRIGGER IF NOT EXISTS access_audit_head_no_delete BEFORE DELETE ON access_audit_head "
    "BEGIN SELECT RAISE(ABORT, 'access_audit_head cannot be deleted'); END",
    "CREATE TRIGGER IF NOT EXISTS access_audit_head_follows BEFORE UPDATE ON access_audit_head "
    f"WHEN NEW.id IS NOT 1 OR NEW.seq IS NOT {_LAST_SEQ} OR NEW.hash IS NOT {_LAST_HASH} "
    "BEGIN SELECT RAISE(ABORT, 'access_audit_head only follows the log'); END",
    "CREATE TRIGGER IF NOT EXISTS access_audit_head_insert_once BEFORE INSERT ON access_audit_head "
    "WHEN (SELECT count(*) FROM access_audit_head) > 0 OR NEW.id IS NOT 1 "
    f"OR NEW.seq IS NOT {_LAST_SEQ} OR NEW.hash IS NOT {_LAST_HASH} "
    "BEGIN SELECT RAISE(ABORT, 'access_audit_head only follows the log'); END",
)
_PG_GUARDS = (
    "CREATE OR REPLACE FUNCTION access_audit_advance_head() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN UPDATE access_audit_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1; "
    "RETURN NULL; END $$",
    "CREATE OR REPLACE TRIGGER access_audit_advance_head AFTER INSERT ON access_audit "
    "FOR EACH ROW EXECUTE FUNCTION access_audit_advance_head()",
    "CREATE OR REPLACE FUNCTION access_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$",
    "CREATE OR REPLACE TRIGGER access_audit_append_only BEFORE UPDATE OR DELETE ON access_audit "
    "FOR EACH ROW EXECUTE FUNCTION access_audit_append_only()",
    "CREATE OR REPLACE TRIGGER access_audit_no_truncate BEFORE TRUNCATE ON access_audit "
    "FOR EACH STATEMENT EXECUTE FUNCTION access_audit_append_only()",
    "CREATE OR REPLACE FUNCTION access_audit_insert_follows() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN IF NEW.seq IS DISTINCT FROM {_LAST_SEQ} + 1 "
    f"OR NEW.prev_hash IS DISTINCT FROM {_LAST_HASH} THEN "
    "RAISE EXCEPTION 'access_audit is append-only: an entry must follow the last one'; "
    "END IF; RETURN NEW; END $$",
    "CREATE OR REPLACE TRIGGER access_audit_insert_follows BEFORE INSERT ON access_audit "
    "FOR EACH ROW EXECUTE FUNCTION access_audit_insert_follows()",
    "CREATE OR REPLACE FUNCTION access_audit_head_follows() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM access_audit_head) THEN "
    "RAISE EXCEPTION 'access_audit_head only follows the log'; END IF; "
    f"IF NEW.id IS DISTINCT FROM 1 OR NEW.seq IS DISTINCT FROM {_LAST_SEQ} "
    f"OR NEW.hash IS DISTINCT FROM {_LAST_HASH} THEN "
    "RAISE EXCEPTION 'access_audit_head only follows the log'; END IF; RETURN NEW; END $$",
    "CREATE OR REPLACE TRIGGER access_audit_head_follows BEFORE INSERT OR UPDATE "
    "ON access_audit_head FOR EACH ROW EXECUTE FUNCTION access_audit_head_follows()",
    "CREATE OR REPLACE TRIGGER access_audit_head_no_delete BEFORE DELETE ON access_audit_head "
    "FOR EACH ROW EXECUTE FUNCTION access_audit_append_only()",
    "CREATE OR REPLACE TRIGGER access_audit_head_no_truncate BEFORE TRUNCATE "
    "ON access_audit_head FOR EACH STATEMENT EXECUTE FUNCTION access_audit_append_only()",
)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _SQLITE_GUARDS if sqlite else _PG_GUARDS:
        op.execute(statement)
