"""Alembic environment: runs on the connection service.storage.migrate hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from service.storage.tables import Base


def run_online(connection: Connection) -> None:
    """Run the migrations on `connection`, inside the caller's transaction."""
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if _connection is None:
    raise RuntimeError("run migrations through `moderation db upgrade` (service.storage.migrate)")
run_online(_connection)
