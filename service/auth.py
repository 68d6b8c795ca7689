"""API keys: generation, hashing, roles and site scope.

A key is `mk_<id>_<secret>`: the id names the key in logs and audit rows, the secret is 256 random
bits. Only the SHA-256 of the whole key is stored; a fast hash is enough for a key of this entropy.

Roles: `cms` submits comments and reads them (and scores with /v1/moderate), `moderator` works the
review queue, `admin` may do everything, including policies, webhooks, keys and models.
A key may be scoped to one site (cms and moderator keys only): it then acts on that site alone.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from models.errors import InputDataError
from service.errors import ApiKeyNotFoundError, AuthenticationError, PermissionDeniedError
from service.storage.repository import Repository
from service.storage.tables import ApiKeyRow, utcnow

KEY_PREFIX = "mk_"


class Role(StrEnum):
    """What a key may do."""

    cms = "cms"
    moderator = "moderator"
    admin = "admin"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    key_id: str
    role: Role
    site: str | None = None

    def check_site(self, site: str) -> None:
        """Raise PermissionDeniedError if the key is scoped to another site."""
        if self.site is not None and self.site != site:
            raise PermissionDeniedError(f"key {self.key_id} is limited to site {self.site!r}")

    @property
    def actor(self) -> str:
        """How the audit trail names this caller."""
        return f"key:{self.key_id}"


@dataclass(frozen=True)
class NewKey:
    """A freshly created key: `secret` is shown once and never stored."""

    id: str
    secret: str
    role: Role
    site: str | None
    created_at: datetime


def hash_key(key: str) -> str:
    """SHA-256 hex digest of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(repo: Repository, role: Role, site: str | None = None, name: str | None = None) -> NewKey:
    """Generate, store (hashed) and return a new key."""
    if site is not None and role is Role.admin:
        raise InputDataError("admin keys cannot be limited to a site")
    if site is not None and not site.strip():
        raise InputDataError("site must not be empty")
    key_id = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    now = utcnow()
    repo.add_key(
        ApiKeyRow(id=key_id, key_hash=hash_key(secret), role=role.value, site=site, name=name, created_at=now)
    )
    return NewKey(id=key_id, secret=secret, role=role, site=site, created_at=now)


def revoke_key(repo: Repository, key_id: str) -> ApiKeyRow:
    """Revoke a key (it stays listed, for the audit trail)."""
    row = repo.get_key(key_id)
    if row is None:
        raise ApiKeyNotFoundError(f"no API key {key_id!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def parse_bearer(header: str | None) -> str:
    """The key of an `Authorization: Bearer KEY` header."""
    if not header:
        raise AuthenticationError("missing Authorization: Bearer <API key> header")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationError("the Authorization header must be 'Bearer <API key>'")
    return value.strip()


def bearer_or_query_key(bearer: str | None, query_key: str | None) -> str:
    """The key of a request to the Perspective-compatible routes: the Bearer key, else `?key=`.

    Perspective clients can only send the key in the query string. Only those routes accept it
    there (a URL ends up in proxy and access logs, so the header stays the recommended way).
    """
    if bearer and bearer.strip():
        return bearer.strip()
    if query_key and query_key.strip():
        return query_key.strip()
    raise AuthenticationError("missing API key: send Authorization: Bearer <API key> or ?key=<API key>")


def authenticate(repo: Repository, key: str) -> Principal:
    """The principal of a valid key; AuthenticationError for an unknown or revoked one."""
    row = repo.key_by_hash(hash_key(key)) if key.startswith(KEY_PREFIX) else None
    if row is None or row.revoked_at is not None:
        raise AuthenticationError("invalid or revoked API key")
    return Principal(key_id=row.id, role=Role(row.role), site=row.site)


def authorize(principal: Principal, roles: frozenset[Role]) -> Principal:
    """Raise PermissionDeniedError unless the principal has one of `roles` (admin always has)."""
    if principal.role is not Role.admin and principal.role not in roles:
        allowed = ", ".join(sorted(r.value for r in roles | {Role.admin}))
        raise PermissionDeniedError(f"this request needs a key with role {allowed}")
    return principal
