from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from cli.main import main
from cli.service_cmd import ROLES
from service.auth import Role, authenticate
from service.storage import migrate
from service.storage.db import Database
from service.storage.tables import ROLES as TABLE_ROLES
from tests.service.conftest import POSTGRES_URL


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODERATION_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MODERATION_DATABASE_URL", raising=False)
    return tmp_path


def test_keys_create_prints_the_key_alone(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--role", "cms", "--site", "example", "--name", "cms"]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert out == key + "\n" and key.startswith("mk_") and "created cms key" in err
    database = Database.from_url(f"sqlite:///{data_dir / 'moderation.db'}")
    with database.transaction() as repo:
        principal = authenticate(repo, key)
    database.dispose()
    assert (principal.role, principal.site) == (Role.cms, "example")

    assert main(["keys", "list"]) == 0
    (listed,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed["id"] == principal.key_id and listed["revoked_at"] is None and key not in json.dumps(listed)
    assert main(["keys", "revoke", principal.key_id]) == 0
    capsys.readouterr()
    assert main(["keys", "list"]) == 0
    assert json.loads(capsys.readouterr().out)["revoked_at"] is not None


def test_role_names_agree() -> None:
    assert set(ROLES) == set(TABLE_ROLES) == {role.value for role in Role}


def test_keys_errors(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--role", "admin", "--site", "example"]) == 2
    assert "cannot be limited to a site" in capsys.readouterr().err
    assert main(["keys", "revoke", "nope"]) == 2
    with pytest.raises(SystemExit):
        main(["keys", "create", "--role", "root"])


def test_db_upgrade_and_current_on_sqlite(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "current"]) == 1
    assert capsys.readouterr().out.startswith("none")
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out.startswith(migrate.head_revision())


@pytest.fixture
def empty_postgres_schema() -> Iterator[str]:
    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    schema = f"moderation_cli_{secrets.token_hex(4)}"
    try:
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except SQLAlchemyError as exc:
        engine.dispose()
        pytest.skip(f"PostgreSQL does not answer at {POSTGRES_URL}: {type(exc).__name__}")
    yield f"{POSTGRES_URL}?options={quote(f'-csearch_path={schema}')}"
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def test_db_upgrade_on_postgres(empty_postgres_schema: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = ["--database-url", empty_postgres_schema]
    # PostgreSQL is never migrated implicitly.
    assert main(["keys", *url, "create", "--role", "admin"]) == 2
    assert "moderation db upgrade" in capsys.readouterr().err
    assert main(["db", *url, "upgrade"]) == 0
    assert main(["db", *url, "current"]) == 0
    capsys.readouterr()
    assert main(["keys", *url, "create", "--role", "admin"]) == 0
    assert capsys.readouterr().out.startswith("mk_")
