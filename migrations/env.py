"""Alembic's environment: runs the revisions on the connection ``migrations`` hands over.

Migrations are run through ``migrations.upgrade`` (``dialer db upgrade``), which opens the
connection, takes the write lock and passes it in ``config.attributes["connection"]``;
the whole upgrade is one transaction.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `dialer db upgrade` (migrations.upgrade)")
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
