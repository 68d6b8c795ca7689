from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from service.errors import DatabaseUnavailableError
from service.storage import migrate
from service.storage.db import Database, make_engine
from service.storage.tables import Base, CommentEventRow, CommentRow, utcnow


def test_migrations_create_exactly_the_tables(database: Database) -> None:
    assert migrate.is_current(database.engine)
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    database = Database.from_url(f"sqlite:///{tmp_path / 'm.db'}")
    assert migrate.current_revision(database.engine) is None
    assert migrate.upgrade(database.engine) == migrate.head_revision()
    migrate.downgrade(database.engine, "base")
    assert set(inspect(database.engine).get_table_names()) == {"alembic_version"}
    migrate.upgrade(database.engine)
    assert migrate.is_current(database.engine)
    database.dispose()


def _comment(site: str = "s", external_id: str = "c") -> CommentRow:
    now = utcnow()
    return CommentRow(
        site=site,
        external_id=external_id,
        text="t",
        meta={},
        status="pending",
        decision="review",
        scores=None,
        flagged=[],
        spans=[],
        reasons=[],
        priority=0.0,
        needs_review=True,
        created_at=now,
        updated_at=now,
    )


def test_history_is_append_only(database: Database) -> None:
    with database.transaction() as repo:
        row = repo.add_comment(_comment())
        repo.add_event(
            CommentEventRow(
                comment_id=row.id, created_at=utcnow(), actor="system", action="submitted", override=False
            )
        )
    for statement in ("UPDATE comment_events SET actor = 'x'", "DELETE FROM comment_events"):
        with pytest.raises(DBAPIError, match="append-only"), database.transaction() as repo:
            repo.session.execute(text(statement))
    with database.transaction() as repo:
        assert [e.actor for e in repo.history(row.id)] == ["system"]


def test_timestamps_come_back_in_utc(database: Database) -> None:
    with database.transaction() as repo:
        row = repo.add_comment(_comment())
        created = row.created_at
    with database.transaction() as repo:
        again = repo.get_comment("s", "c")
        assert again is not None and again.created_at == created and again.created_at.utcoffset() is not None


def test_sqlite_transactions_are_exclusive(sqlite_url: str) -> None:
    database = Database.from_url(sqlite_url)
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    database.dispose()


def test_ping_reports_an_unreachable_database() -> None:
    database = Database(make_engine("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"))
    with pytest.raises(DatabaseUnavailableError, match="does not answer"):
        database.ping()
    with pytest.raises(DatabaseUnavailableError), database.transaction() as repo:
        repo.get_comment("s", "c")
    database.dispose()
