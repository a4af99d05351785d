"""Revision 0006: ``lead_lists``, the list each lead came with (``leads import --list``),
read by the reports. New table only."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lead_lists",
        sa.Column("campaign", sa.String(length=128), nullable=False),
        sa.Column("number_key", sa.String(length=32), nullable=False),
        sa.Column("list_name", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("campaign", "number_key"),
    )
