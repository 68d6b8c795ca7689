"""The web UI's dependencies as Annotated aliases: its context, the session, CSRF checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from service.auth import Role, authorize
from service.deps import DatabaseDep, StateDep
from service.errors import RateLimitedError
from service.ui.session import CSRF_FIELD, CSRF_HEADER, Session, SessionCodec, check_token


@dataclass
class UiContext:
    """What the UI adds to the app: its templates and the session codec."""

    templates: Jinja2Templates
    codec: SessionCodec

    def page(
        self,
        request: Request,
        name: str,
        context: dict[str, Any],
        *,
        session: Session | None,
        status: int = 200,
    ) -> Response:
        """Render a page; every page gets the session (None on the sign-in page)."""
        values = {"session": session, "csrf_token": session.csrf if session else "", "active": "", **context}
        return self.templates.TemplateResponse(request, name, values, status_code=status)


def get_ui(request: Request) -> UiContext:
    """The UiContext install_ui stored on the app."""
    ui: UiContext = request.app.state.ui
    return ui


UiDep = Annotated[UiContext, Depends(get_ui)]


def get_session(request: Request, ui: UiDep, state: StateDep, database: DatabaseDep) -> Session:
    """The signed-in moderator or admin (the key is checked on every request), within its rate limit."""
    with database.transaction() as repo:
        session = ui.codec.read_session(request, repo)
    wait = state.limiter.acquire(session.principal.key_id)
    if wait > 0:
        raise RateLimitedError(wait)
    return session


SessionDep = Annotated[Session, Depends(get_session)]


async def check_csrf(request: Request, session: SessionDep) -> Session:
    """The session, once the request carries its CSRF token (header or form field)."""
    token = request.headers.get(CSRF_HEADER)
    if token is None:
        value = (await request.form()).get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    check_token(session.csrf, token)
    return session


PostSessionDep = Annotated[Session, Depends(check_csrf)]


def require_admin(session: SessionDep) -> Session:
    """The session of an admin key; 403 for a moderator."""
    authorize(session.principal, frozenset({Role.admin}))
    return session


def require_admin_post(session: PostSessionDep) -> Session:
    """An admin's session on a POST with a valid CSRF token."""
    return require_admin(session)


AdminDep = Annotated[Session, Depends(require_admin)]
AdminPostDep = Annotated[Session, Depends(require_admin_post)]
