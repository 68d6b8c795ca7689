"""The one place that maps domain errors to HTTP status codes and JSON bodies."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from models.errors import (
    ArtifactError,
    InputDataError,
    ModelNotFoundError,
    ModerationError,
    NoActiveModelError,
    UnknownLabelError,
)

_STATUS: dict[type[ModerationError], tuple[int, str]] = {
    NoActiveModelError: (503, "model_unavailable"),
    ArtifactError: (503, "model_unavailable"),
    ModelNotFoundError: (404, "model_not_found"),
    UnknownLabelError: (422, "unknown_label"),
    InputDataError: (422, "invalid_input"),
}


def _lookup(exc: ModerationError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 400, "bad_request"


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ModerationError)
    status, code = _lookup(exc)
    return JSONResponse(status_code=status, content={"error": code, "detail": str(exc)})


def install_error_handlers(app: FastAPI) -> None:
    """Register the domain-error handler on `app`."""
    app.add_exception_handler(ModerationError, _handle)
