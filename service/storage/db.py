"""Engine and transactions.

SQLite: one file, WAL journal, foreign keys on, and every transaction starts with
BEGIN IMMEDIATE, so read-modify-write sequences (claims, decisions) are serialised across
threads and processes; the busy timeout makes the others wait instead of failing.
PostgreSQL: row locks (SELECT ... FOR UPDATE [SKIP LOCKED]) in the repository do that job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from service.errors import DatabaseUnavailableError
from service.storage.repository import Repository

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 30


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN instead of the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_engine(url: str) -> Engine:
    """An engine for a sqlite:// or postgresql:// URL, set up as described above."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


class Database:
    """The engine plus a transaction scope that hands out a Repository."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str) -> Database:
        """Create the engine for `url`."""
        return cls(make_engine(url))

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Repository]:
        """One transaction: committed when the block exits cleanly, rolled back otherwise."""
        try:
            with self._sessions() as session, session.begin():
                yield Repository(session)
        except SQLAlchemyError as exc:
            if _is_connection_error(exc):
                logger.error("database unavailable: %s", type(exc).__name__)
                raise DatabaseUnavailableError("the database is unavailable") from exc
            raise

    def session(self) -> Session:
        """A bare session (tests and migrations)."""
        return self._sessions()

    def ping(self) -> None:
        """Raise DatabaseUnavailableError unless the database answers."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise DatabaseUnavailableError(f"the database does not answer ({type(exc).__name__})") from exc

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()


def _is_connection_error(exc: SQLAlchemyError) -> bool:
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError)
