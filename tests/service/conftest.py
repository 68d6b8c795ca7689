"""Database and app fixtures for the service tests.

`database_url` runs a test against SQLite and against the real PostgreSQL: SQLite gets a copy of
a database migrated once per session; PostgreSQL gets one uniquely named schema per session
(created, migrated, and dropped at the end), emptied before each test. PostgreSQL tests are
skipped, with the reason, only when no server answers at MODERATION_TEST_POSTGRES_URL
(default postgresql+psycopg://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from models.registry import Registry
from service.app import create_app
from service.auth import Role, create_key
from service.settings import Settings
from service.state import AppState
from service.storage import migrate
from service.storage.db import Database
from service.storage.tables import Base

POSTGRES_URL = os.environ.get(
    "MODERATION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database file migrated to head, copied by each test that needs one."""
    path = tmp_path_factory.mktemp("sqlite-template") / "moderation.db"
    database = Database.from_url(f"sqlite:///{path}")
    migrate.upgrade(database.engine)
    database.dispose()
    return path


@contextlib.contextmanager
def fresh_postgres_schema(prefix: str) -> Iterator[str]:
    """A URL whose search_path is a new, empty schema, dropped on exit; skips when no server answers."""
    admin = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL does not answer at {POSTGRES_URL}: {type(exc).__name__}")
    schema = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A URL whose search_path is a fresh, migrated schema; the schema is dropped afterwards."""
    with fresh_postgres_schema("moderation_test") as url:
        database = Database.from_url(url)
        migrate.upgrade(database.engine)
        database.dispose()
        yield url


def _empty_postgres(url: str) -> None:
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


def _sqlite_copy(template: Path, directory: Path) -> str:
    path = directory / "moderation.db"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """An empty, migrated database: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        return _sqlite_copy(sqlite_template, tmp_path)
    url: str = request.getfixturevalue("postgres_url")
    _empty_postgres(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """An empty, migrated SQLite database (for tests that need not run twice)."""
    return _sqlite_copy(sqlite_template, tmp_path)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A Database on `database_url`."""
    db = Database.from_url(database_url)
    yield db
    db.dispose()


SITE = "example"
OTHER_SITE = "elsewhere"


@dataclass
class Api:
    """A running app with one key per role."""

    client: TestClient
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> AppState:
        state: AppState = self.client.app.state.moderation  # type: ignore[attr-defined]
        return state

    def auth(self, who: str) -> dict[str, str]:
        """Headers for the key named `who` (cms, cms_site, moderator, moderator2, admin)."""
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def submit(self, comment_id: str, text: str, site: str = SITE, **extra: Any) -> dict[str, Any]:
        """POST /v1/comments as the cms key; asserts success."""
        body = {"site": site, "id": comment_id, "text": text, **extra}
        response = self.client.post("/v1/comments", json=body, headers=self.auth("cms"))
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result


def _make_keys(url: str) -> dict[str, str]:
    database = Database.from_url(url)
    specs = {
        "cms": (Role.cms, None),
        "cms_site": (Role.cms, SITE),
        "moderator": (Role.moderator, None),
        "moderator2": (Role.moderator, None),
        "moderator_other": (Role.moderator, OTHER_SITE),
        "admin": (Role.admin, None),
    }
    with database.transaction() as repo:
        keys = {name: create_key(repo, role, site).secret for name, (role, site) in specs.items()}
    database.dispose()
    return keys


ApiFactory = Callable[..., Api]


@pytest.fixture
def make_api(tmp_path: Path, registry: Registry, tiny_model_id: str, sqlite_url: str) -> Iterator[ApiFactory]:
    """Start apps serving the tiny model: make_api(database_url=..., **settings)."""
    stack: list[TestClient] = []

    def factory(database_url: str | None = None, registry_: Registry | None = None, **overrides: Any) -> Api:
        url = database_url or sqlite_url
        options: dict[str, Any] = {
            "data_dir": tmp_path,
            "database_url": url,
            "max_text_chars": 200,
            "webhooks_enabled": False,
            "rate_limit_per_second": 1000.0,
            "rate_limit_burst": 1000,
            **overrides,
        }
        keys = _make_keys(url)
        client = TestClient(create_app(Settings(**options), registry=registry_ or registry))
        client.__enter__()
        stack.append(client)
        return Api(client=client, keys=keys)

    yield factory
    for client in reversed(stack):
        client.__exit__(None, None, None)


@pytest.fixture
def api(make_api: ApiFactory) -> Api:
    """An app on SQLite."""
    return make_api()


@pytest.fixture
def api_both(make_api: ApiFactory, database_url: str) -> Api:
    """An app on SQLite, then on PostgreSQL."""
    return make_api(database_url=database_url)
