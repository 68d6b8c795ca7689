"""Alembic migrations, configured in code (no alembic.ini): upgrade, current and head revisions."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    """An Alembic config pointing at service/migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest revision in service/migrations."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "service/migrations has no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: not migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_current(engine: Engine) -> bool:
    """Whether the database is at the head revision."""
    return current_revision(engine) == head_revision()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Apply migrations up to `revision` in one transaction; returns the revision reached."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    reached = current_revision(engine)
    logger.info("database at revision %s", reached)
    return reached


def downgrade(engine: Engine, revision: str) -> None:
    """Revert migrations down to `revision` ('base': an empty database)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def prepare(engine: Engine, auto_migrate: bool) -> str | None:
    """Migrate (when `auto_migrate`) or check the schema; returns what is wrong, or None when ready."""
    try:
        if auto_migrate:
            upgrade(engine)
            return None
        current = current_revision(engine)
    except Exception as exc:
        logger.error("database not ready: %s", exc)
        return f"database unavailable: {type(exc).__name__}"
    if current != head_revision():
        return f"database schema is at {current or 'nothing'}, not {head_revision()}: run `moderation db upgrade`"
    return None
