"""FastAPI dependencies as Annotated aliases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from models.errors import NoActiveModelError
from models.scoring import Model
from service.auth import Principal, Role, authenticate, authorize
from service.errors import AuthenticationError, DatabaseUnavailableError, RateLimitedError
from service.state import AppState
from service.storage.db import Database

_bearer = HTTPBearer(auto_error=False, description="an API key made by `moderation keys create`")


def get_state(request: Request) -> AppState:
    """The AppState the app factory stored on the app."""
    state: AppState = request.app.state.moderation
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_model(state: StateDep) -> Model:
    """The served model; 503 (via the error handler) while none is loaded."""
    model = state.model
    if model is None:
        raise NoActiveModelError(state.load_error or "no model is loaded")
    return model


def get_database(state: StateDep) -> Database:
    """The database; 503 while it is not open or not migrated."""
    if state.database is None or not state.check_database():
        raise DatabaseUnavailableError(state.database_error or "the database is not open")
    return state.database


ModelDep = Annotated[Model, Depends(get_model)]
DatabaseDep = Annotated[Database, Depends(get_database)]


def get_principal(
    state: StateDep,
    database: DatabaseDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller of a valid `Authorization: Bearer` key, within its rate limit."""
    if credentials is None:
        raise AuthenticationError("missing Authorization: Bearer <API key> header")
    with database.transaction() as repo:
        principal = authenticate(repo, credentials.credentials)
    wait = state.limiter.acquire(principal.key_id)
    if wait > 0:
        raise RateLimitedError(wait)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that admits keys with one of `roles` (and admin keys)."""
    allowed = frozenset(roles)

    def check(principal: PrincipalDep) -> Principal:
        return authorize(principal, allowed)

    return check


CmsKey = Annotated[Principal, Depends(require(Role.cms))]
ReaderKey = Annotated[Principal, Depends(require(Role.cms, Role.moderator))]
ModeratorKey = Annotated[Principal, Depends(require(Role.moderator))]
AdminKey = Annotated[Principal, Depends(require(Role.admin))]
