"""${message}

Revision ${up_revision}, after ${down_revision | comma,n}. Written with `dialer db revision`.
Runs on SQLite and PostgreSQL inside one transaction: for a column change on SQLite use
``op.batch_alter_table``; move or fill data with SQL here too, so an upgraded database
keeps every row (tests/migrations checks it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}
