"""Revision 0002: identity and access (``identity/``).

People sign in with a password (``access_users.password_hash``, scrypt; empty for users
who only use API tokens), login sessions (``access_sessions``, by the SHA-256 of their id)
and the lock-out counters of failed sign-ins (``access_sign_in_failures``, per user name
and per client address). Existing users and tokens are kept as they are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("access_users", sa.Column("password_hash", sa.String(200), nullable=True))
    op.add_column(
        "access_users", sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "access_sessions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("session_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", BigId, sa.ForeignKey("access_users.id"), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_access_sessions_user_id", "access_sessions", ["user_id"])
    op.create_table(
        "access_sign_in_failures",
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("scope", "key", name="pk_access_sign_in_failures"),
    )
