"""The service's named domain errors, and the one place that maps errors to HTTP.

Every error response is a JSON object `{"error": code, "detail": message}`, FastAPI's own
request-validation errors and unknown routes included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.errors import (
    ArtifactError,
    InputDataError,
    ModelNotFoundError,
    ModerationError,
    NoActiveModelError,
    UnknownLabelError,
)
from models.gate import IncomparableReportsError, PromotionRefusedError

logger = logging.getLogger(__name__)


class NotFoundError(ModerationError, LookupError):
    """Something the request names does not exist."""


class CommentNotFoundError(NotFoundError):
    """No comment with this (site, id)."""


class WebhookNotFoundError(NotFoundError):
    """The site has no webhook."""


class ApiKeyNotFoundError(NotFoundError):
    """No API key with this id."""


class ReviewConflictError(ModerationError):
    """Another moderator holds the claim, or the comment was already decided."""


class AuthenticationError(ModerationError):
    """No API key, or one that is unknown or revoked."""


class PermissionDeniedError(ModerationError):
    """The key's role or site does not allow this request."""


class RateLimitedError(ModerationError):
    """The key sent more requests than its rate limit allows."""

    def __init__(self, retry_after: float):
        super().__init__(f"rate limit exceeded; retry after {retry_after:.1f} s")
        self.retry_after = retry_after


class PayloadTooLargeError(ModerationError):
    """A text or batch longer than the service accepts."""


class InvalidCursorError(ModerationError, ValueError):
    """A pagination cursor this service did not issue (or issued for another query)."""


class ModelRejectedError(ModerationError):
    """A model that cannot be promoted (it does not load)."""


class DatabaseUnavailableError(ModerationError):
    """The database does not answer."""


_STATUS: dict[type[ModerationError], tuple[int, str]] = {
    NoActiveModelError: (503, "model_unavailable"),
    ArtifactError: (503, "model_unavailable"),
    DatabaseUnavailableError: (503, "database_unavailable"),
    ModelNotFoundError: (404, "model_not_found"),
    CommentNotFoundError: (404, "comment_not_found"),
    WebhookNotFoundError: (404, "webhook_not_found"),
    ApiKeyNotFoundError: (404, "key_not_found"),
    NotFoundError: (404, "not_found"),
    ReviewConflictError: (409, "review_conflict"),
    AuthenticationError: (401, "unauthenticated"),
    PermissionDeniedError: (403, "forbidden"),
    RateLimitedError: (429, "rate_limited"),
    PayloadTooLargeError: (413, "payload_too_large"),
    UnknownLabelError: (422, "unknown_label"),
    InvalidCursorError: (422, "invalid_cursor"),
    ModelRejectedError: (422, "model_rejected"),
    PromotionRefusedError: (409, "promotion_refused"),
    IncomparableReportsError: (409, "reports_not_comparable"),
    InputDataError: (422, "invalid_input"),
}

_HTTP_CODES = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_status(exc: ModerationError) -> tuple[int, str]:
    """HTTP status and error code of a domain error."""
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 400, "bad_request"


def error_response(
    status: int, code: str, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The JSON error body every error uses."""
    return JSONResponse(status_code=status, content={"error": code, "detail": detail}, headers=headers)


@dataclass(frozen=True)
class ErrorInfo:
    """What the API answers for an error: status, code, one-line message and extra headers."""

    status: int
    code: str
    detail: str
    headers: dict[str, str] = field(default_factory=dict)


def _location(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc) or "request"


def describe_error(exc: Exception) -> ErrorInfo | None:
    """The answer to a domain, validation or HTTP error; None for an unexpected one (a 500)."""
    if isinstance(exc, ModerationError):
        status, code = error_status(exc)
        headers: dict[str, str] = {}
        if isinstance(exc, RateLimitedError):
            headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
        elif isinstance(exc, AuthenticationError):
            headers["WWW-Authenticate"] = "Bearer"
        return ErrorInfo(status, code, str(exc), headers)
    if isinstance(exc, RequestValidationError):
        # Pydantic's messages name the field and the rule; they never echo the input value.
        problems = [f"{_location(err.get('loc', ()))}: {err.get('msg', 'invalid')}" for err in exc.errors()]
        return ErrorInfo(422, "validation_error", "; ".join(problems) or "invalid request")
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode at all (not UTF-8): the same 422 as for
            # malformed JSON, which is what every route documents.
            return ErrorInfo(
                422, "validation_error", "body: the request body could not be parsed (not UTF-8 JSON)"
            )
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return ErrorInfo(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))
    return None


async def _known_error(request: Request, exc: Exception) -> JSONResponse:
    info = describe_error(exc)
    if info is None:
        return await _unexpected_error(request, exc)
    return error_response(info.status, info.code, info.detail, info.headers)


ErrorFormatter = Callable[[Exception, ErrorInfo], Response]


def error_route_class(formatter: ErrorFormatter) -> type[APIRoute]:
    """A route class whose known errors are answered by `formatter` instead of the usual body.

    For the compatibility routes, whose clients (OpenAI's, Perspective's) expect their vendor's
    error shape; unexpected errors still reach the app's 500 handler.
    """

    class FormattedErrorRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def formatted(request: Request) -> Response:
                try:
                    return await handler(request)
                except Exception as exc:
                    info = describe_error(exc)
                    if info is None:
                        raise
                    return formatter(exc, info)

            return formatted

    return FormattedErrorRoute


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error; the incident was logged")


def install_error_handlers(app: FastAPI) -> None:
    """Register the error handlers on `app`."""
    app.add_exception_handler(ModerationError, _known_error)
    app.add_exception_handler(RequestValidationError, _known_error)
    app.add_exception_handler(StarletteHTTPException, _known_error)
    app.add_exception_handler(Exception, _unexpected_error)
