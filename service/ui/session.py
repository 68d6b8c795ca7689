"""The web UI's sign-in session and CSRF tokens.

The session is a cookie signed with itsdangerous (HMAC-SHA256 with a key derived from the session
secret; timestamped, so it expires after `session_max_age_seconds`). It holds the API key's id,
the first characters of the key's stored hash and a CSRF token, never the key itself. Every
request looks the key up again, so a revoked key stops working on its next request.

CSRF: every POST carries the session's token, as the form field `csrf_token` or the
`X-CSRF-Token` header (fetch), compared in constant time: a double-submit token bound to the
signed session. The sign-in form, which has no session yet, gets the same protection from a
short-lived signed cookie of its own. Both cookies are HttpOnly and SameSite=Lax.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from service.auth import Principal, Role, authorize
from service.errors import AuthenticationError, PermissionDeniedError
from service.settings import Settings
from service.storage.repository import Repository

logger = logging.getLogger(__name__)

SESSION_COOKIE = "moderation_session"
SIGN_IN_COOKIE = "moderation_sign_in"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SECRET_FILE = "session_secret"
SIGN_IN_MAX_AGE = 3600
UI_ROLES = frozenset({Role.moderator})  # and admin, which authorize() always admits


class SignInRequiredError(AuthenticationError):
    """No session, an expired or forged one, or one whose key was revoked."""


class CsrfError(PermissionDeniedError):
    """A POST without the session's CSRF token."""


@dataclass(frozen=True)
class Session:
    """A signed-in moderator or admin."""

    principal: Principal
    name: str | None
    csrf: str

    @property
    def is_admin(self) -> bool:
        """Whether the admin pages are open to this session."""
        return self.principal.role is Role.admin

    @property
    def display(self) -> str:
        """How the UI names the signed-in key."""
        key = f"key {self.principal.key_id}"
        return f"{self.name} ({key})" if self.name else key


def load_secret(settings: Settings) -> str:
    """MODERATION_SESSION_SECRET, else the secret kept in data_dir, created on first use.

    Creation is atomic (O_EXCL), so processes sharing a data dir agree on one secret.
    """
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value()
    path = Path(settings.data_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
        logger.info("created the web UI session secret %s", path)
    for _ in range(50):  # another process may be between its open() and its write()
        secret = path.read_text(encoding="utf-8").strip()
        if len(secret) >= 32:
            return secret
        time.sleep(0.05)
    raise RuntimeError(f"{path} does not hold a session secret; delete it or set MODERATION_SESSION_SECRET")


class SessionCodec:
    """Signs and reads the session and sign-in cookies; the secret is read on first use."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._serializer: URLSafeTimedSerializer | None = None
        self._lock = threading.Lock()

    @property
    def serializer(self) -> URLSafeTimedSerializer:
        with self._lock:
            if self._serializer is None:
                self._serializer = URLSafeTimedSerializer(
                    load_secret(self.settings),
                    salt="moderation-ui",
                    signer_kwargs={"digest_method": hashlib.sha256},
                )
            return self._serializer

    def _dump(self, kind: str, data: dict[str, Any]) -> str:
        return str(self.serializer.dumps({"kind": kind, **data}))

    def _load(self, kind: str, value: str | None, max_age: int) -> dict[str, Any] | None:
        if not value:
            return None
        try:
            data = self.serializer.loads(value, max_age=max_age)
        except BadSignature:  # also expired (SignatureExpired)
            return None
        return data if isinstance(data, dict) and data.get("kind") == kind else None

    # ---- the session -----------------------------------------------------------------------

    def new_session(self, key_id: str, key_hash: str) -> str:
        """A session cookie value for a key that just signed in (with a fresh CSRF token)."""
        return self._dump("session", {"k": key_id, "h": key_hash[:16], "c": secrets.token_urlsafe(32)})

    def read_session(self, request: Request, repo: Repository) -> Session:
        """The request's session; SignInRequiredError unless it is valid and its key still is."""
        data = self._load(
            "session", request.cookies.get(SESSION_COOKIE), self.settings.session_max_age_seconds
        )
        if data is None:
            raise SignInRequiredError("sign in with a moderator or admin API key")
        row = repo.get_key(str(data.get("k")))
        if row is None or row.revoked_at is not None or not row.key_hash.startswith(str(data.get("h"))):
            raise SignInRequiredError("the API key of this session was revoked; sign in again")
        principal = Principal(key_id=row.id, role=Role(row.role), site=row.site)
        try:
            authorize(principal, UI_ROLES)
        except PermissionDeniedError:
            raise SignInRequiredError("this key may not use the review UI") from None
        return Session(principal=principal, name=row.name, csrf=str(data["c"]))

    def set_session(self, response: Response, request: Request, value: str) -> None:
        """Store the session cookie."""
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=self.settings.session_max_age_seconds,
            path="/ui",
            httponly=True,
            secure=request.url.scheme == "https",
            samesite="lax",
        )

    @staticmethod
    def clear_session(response: Response) -> None:
        """Delete the session cookie (sign-out)."""
        response.delete_cookie(SESSION_COOKIE, path="/ui", httponly=True, samesite="lax")

    # ---- the sign-in form's CSRF token ------------------------------------------------------

    def sign_in_token(self, request: Request) -> tuple[str, str | None]:
        """(token, new cookie value or None): the sign-in form's token, reusing a valid cookie."""
        data = self._load("sign-in", request.cookies.get(SIGN_IN_COOKIE), SIGN_IN_MAX_AGE)
        if data is not None:
            return str(data["c"]), None
        token = secrets.token_urlsafe(32)
        return token, self._dump("sign-in", {"c": token})

    def set_sign_in(self, response: Response, request: Request, value: str) -> None:
        """Store the sign-in form's cookie."""
        response.set_cookie(
            SIGN_IN_COOKIE,
            value,
            max_age=SIGN_IN_MAX_AGE,
            path="/ui/login",
            httponly=True,
            secure=request.url.scheme == "https",
            samesite="lax",
        )

    def check_sign_in(self, request: Request, token: str | None) -> None:
        """CsrfError unless `token` is the one of the sign-in cookie."""
        data = self._load("sign-in", request.cookies.get(SIGN_IN_COOKIE), SIGN_IN_MAX_AGE)
        check_token(str(data["c"]) if data else None, token)


def check_token(expected: str | None, given: str | None) -> None:
    """CsrfError unless `given` equals `expected` (constant time)."""
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise CsrfError("the form's security token is missing or out of date; reload the page and try again")
