from __future__ import annotations

import pytest

from models.errors import InputDataError
from service.auth import (
    Principal,
    Role,
    authenticate,
    authorize,
    create_key,
    hash_key,
    parse_bearer,
    revoke_key,
)
from service.errors import ApiKeyNotFoundError, AuthenticationError, PermissionDeniedError
from service.storage.db import Database
from tests.service.conftest import Api


def test_keys_are_stored_hashed_and_authenticate(database: Database) -> None:
    with database.transaction() as repo:
        key = create_key(repo, Role.cms, site="example", name="cms of example")
    assert key.secret.startswith(f"mk_{key.id}_") and len(key.secret) > 40
    with database.transaction() as repo:
        row = repo.get_key(key.id)
        assert row is not None and row.key_hash == hash_key(key.secret) and key.secret not in row.key_hash
        assert authenticate(repo, key.secret) == Principal(key.id, Role.cms, "example")
        with pytest.raises(AuthenticationError):
            authenticate(repo, key.secret + "x")
        revoke_key(repo, key.id)
    with database.transaction() as repo, pytest.raises(AuthenticationError, match="revoked"):
        authenticate(repo, key.secret)
    with database.transaction() as repo, pytest.raises(ApiKeyNotFoundError):
        revoke_key(repo, "nope")


def test_admin_keys_cannot_be_site_scoped(database: Database) -> None:
    with database.transaction() as repo, pytest.raises(InputDataError):
        create_key(repo, Role.admin, site="example")


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "Bearer"])
def test_parse_bearer_refuses_other_headers(header: str | None) -> None:
    with pytest.raises(AuthenticationError):
        parse_bearer(header)


def test_parse_bearer() -> None:
    assert parse_bearer("bearer  mk_x ") == "mk_x"


def test_roles_and_site_scope() -> None:
    cms = Principal("k", Role.cms, site="example")
    assert authorize(cms, frozenset({Role.cms})) is cms
    with pytest.raises(PermissionDeniedError):
        authorize(cms, frozenset({Role.moderator}))
    admin = Principal("a", Role.admin)
    assert authorize(admin, frozenset({Role.moderator})) is admin
    cms.check_site("example")
    with pytest.raises(PermissionDeniedError):
        cms.check_site("elsewhere")
    admin.check_site("anything")


def test_unauthenticated_requests_get_401_with_challenge(api: Api) -> None:
    r = api.client.get("/v1/queue?site=example")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json() == {
        "error": "unauthenticated",
        "detail": "missing Authorization: Bearer <API key> header",
    }
    r = api.client.get("/v1/queue?site=example", headers={"Authorization": "Bearer mk_forged_key"})
    assert r.status_code == 401 and r.json()["detail"] == "invalid or revoked API key"
