"""Migration 0002 (score_suggestions, retrain_runs) up and down over existing data, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from service.storage import migrate
from service.storage.db import Database
from service.storage.tables import RetrainRunRow, ScoreSuggestionRow, utcnow
from tests.service.conftest import fresh_postgres_schema

NEW_TABLES = {"score_suggestions", "retrain_runs"}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database with no schema at all: a SQLite file, or a fresh PostgreSQL schema (dropped afterwards)."""
    if request.param == "sqlite":
        database = Database.from_url(f"sqlite:///{tmp_path / 'm.db'}")
        yield database
        database.dispose()
        return
    with fresh_postgres_schema("migration_test") as url:
        database = Database.from_url(url)
        try:
            yield database
        finally:
            database.dispose()


def _tables(database: Database) -> set[str]:
    return set(inspect(database.engine).get_table_names())


def test_0002_up_and_down_keeps_existing_data(empty_database: Database) -> None:
    database = empty_database
    assert migrate.upgrade(database.engine, "0001") == "0001"
    assert not NEW_TABLES & _tables(database)
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO site_policies (site, policy, updated_by, updated_at) "
                "VALUES ('s', '{}', 'key:a', :now)"
            ),
            {"now": utcnow()},
        )

    assert migrate.upgrade(database.engine) == "0002" == migrate.head_revision()
    assert _tables(database) >= NEW_TABLES
    now = utcnow()
    with database.transaction() as repo:
        repo.add_suggestion(
            ScoreSuggestionRow(
                site="s",
                key_id="k",
                text="t",
                labels={"spam": 0.5},
                attributes={"SPAM": 0.5},
                community_id=None,
                created_at=now,
            )
        )
        repo.add_retrain(
            RetrainRunRow(
                started_at=now,
                finished_at=now,
                feedback_until=now,
                feedback_rows=1,
                model_id=None,
                outcome="refused",
                detail=None,
            )
        )
        assert repo.get_policy("s") is not None
    with database.transaction() as repo:
        last = repo.last_retrain()
        assert last is not None and last.feedback_until == now and last.outcome == "refused"
        assert [row.labels for row in repo.suggestions()] == [{"spam": 0.5}]

    migrate.downgrade(database.engine, "0001")
    assert migrate.current_revision(database.engine) == "0001"
    assert not NEW_TABLES & _tables(database)
    with database.transaction() as repo:
        assert repo.get_policy("s") is not None
    migrate.upgrade(database.engine)
    assert migrate.is_current(database.engine)
