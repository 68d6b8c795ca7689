"""The UI's route class: errors become pages (or JSON for the UI's fetch calls), not API bodies.

The API's error handlers answer every error with JSON, which is right for /v1 and wrong for a
browser: here an expired session redirects to the sign-in page, and other errors render an
error page with the same status code the API would use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from models.errors import ModerationError
from service.errors import AuthenticationError, RateLimitedError, error_status
from service.ui.render import secure, url_with, wants_json
from service.ui.session import SessionCodec

logger = logging.getLogger(__name__)

SIGN_IN = "/ui/login"
_TITLES = {
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    409: "Someone else got there first",
    413: "Too large",
    422: "Please check the form",
    429: "Too many requests",
    503: "Service unavailable",
}


def _problem(exc: Exception) -> tuple[int, str, str]:
    if isinstance(exc, RequestValidationError):
        problems = [
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}"
            for err in exc.errors()
        ]
        return 422, "validation_error", "; ".join(problems) or "invalid request"
    assert isinstance(exc, ModerationError)
    status, code = error_status(exc)
    return status, code, str(exc)


def error_page(request: Request, exc: Exception) -> Response:
    """The response to a domain or validation error raised by a UI route."""
    status, code, detail = _problem(exc)
    headers = {}
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
    if isinstance(exc, AuthenticationError):
        if wants_json(request):
            response: Response = JSONResponse(
                {"error": code, "detail": detail, "sign_in": SIGN_IN}, status_code=401
            )
        else:
            back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response = RedirectResponse(
                url_with(SIGN_IN, next=back if request.method == "GET" else None), status_code=303
            )
        SessionCodec.clear_session(response)
        return response
    if wants_json(request):
        return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)
    templates: Jinja2Templates = request.app.state.ui.templates
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "status": status,
            "title": _TITLES.get(status, "Something went wrong"),
            "detail": detail,
            "session": None,
            "csrf_token": "",
            "active": "",
        },
        status_code=status,
        headers=headers,
    )


class UiRoute(APIRoute):
    """An APIRoute whose errors are rendered for people, with the UI's security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except (ModerationError, RequestValidationError) as exc:
                response = error_page(request, exc)
            return secure(response)

        return handle
