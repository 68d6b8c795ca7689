"""Sign-in and sign-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from service.auth import Role, authenticate, authorize
from service.deps import DatabaseDep
from service.errors import AuthenticationError, PermissionDeniedError
from service.ui.deps import PostSessionDep, UiDep
from service.ui.render import safe_next
from service.ui.routing import UiRoute
from service.ui.session import SessionCodec

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)


@router.get("")
def home() -> Response:
    """The queue is the home page."""
    return RedirectResponse("/ui/queue", status_code=303)


def _sign_in_page(
    request: Request, ui: UiDep, next_url: str, error: str | None = None, status: int = 200
) -> Response:
    token, cookie = ui.codec.sign_in_token(request)
    response = ui.page(
        request,
        "login.html",
        {"next": next_url, "error": error, "sign_in_token": token},
        session=None,
        status=status,
    )
    if cookie is not None:
        ui.codec.set_sign_in(response, request, cookie)
    return response


@router.get("/login")
def sign_in_form(request: Request, ui: UiDep, next: Annotated[str | None, Query()] = None) -> Response:
    """The sign-in form."""
    return _sign_in_page(request, ui, safe_next(next))


@router.post("/login")
def sign_in(
    request: Request,
    ui: UiDep,
    database: DatabaseDep,
    key: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Check the key (moderator or admin), then start a session."""
    ui.codec.check_sign_in(request, csrf_token)
    target = safe_next(next)
    try:
        with database.transaction() as repo:
            principal = authenticate(repo, key.strip())
            authorize(principal, frozenset({Role.moderator}))
            row = repo.get_key(principal.key_id)
            assert row is not None
            key_hash = row.key_hash
    except AuthenticationError:
        return _sign_in_page(request, ui, target, "This key is unknown or was revoked.", 401)
    except PermissionDeniedError:
        return _sign_in_page(
            request, ui, target, "Only moderator and admin keys can sign in; this is a CMS key.", 403
        )
    response = RedirectResponse(target, status_code=303)
    ui.codec.set_session(response, request, ui.codec.new_session(principal.key_id, key_hash))
    return response


@router.post("/logout")
def sign_out(session: PostSessionDep) -> Response:
    """End the session."""
    response = RedirectResponse("/ui/login", status_code=303)
    SessionCodec.clear_session(response)
    return response
