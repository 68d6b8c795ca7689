"""Property-based API tests: generated requests against the app's own OpenAPI schema, in-process.

The schema comes from an app that is never started (building it touches no file or database);
each operation's examples go to a started app on its own SQLite database, through schemathesis's
ASGI client, with an admin key. (`schemathesis.pytest.from_fixture` does not work with pytest 9.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python.asgi import ASGIClient, get_client, shutdown_lifespans

from models.registry import Registry
from service.app import create_app
from service.auth import Role
from service.settings import Settings
from tests.service.servers import make_keys


def _settings(data_dir: Path, database_url: str | None = None) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        webhooks_enabled=False,
        model_watch_seconds=0,
        rate_limit_per_second=0,
    )


schema = schemathesis.openapi.from_dict(
    create_app(_settings(Path("unused")), registry=Registry(Path("unused"), shipped_dir=None)).openapi()
)


@pytest.fixture
def admin_key(sqlite_url: str) -> str:
    """An admin key in the test's database."""
    return make_keys(sqlite_url, {"admin": (Role.admin, None)})["admin"]


@pytest.fixture
def client(tmp_path: Path, registry: Registry, tiny_model_id: str, sqlite_url: str) -> Iterator[ASGIClient]:
    """A started app (SQLite, tiny model, no webhooks, no rate limit)."""
    app = create_app(_settings(tmp_path, sqlite_url), registry=registry)
    try:
        with get_client(app) as started:
            yield started
    finally:
        shutdown_lifespans()


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_api_conforms_to_its_schema(case: schemathesis.Case, client: ASGIClient, admin_key: str) -> None:
    case.call_and_validate(
        base_url=client.base_url,
        session=client,
        headers={"Authorization": f"Bearer {admin_key}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
