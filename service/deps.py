"""FastAPI dependencies as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from models.errors import NoActiveModelError
from models.scoring import Model
from service.state import AppState


def get_state(request: Request) -> AppState:
    """The AppState the lifespan stored on the app."""
    state: AppState = request.app.state.moderation
    return state


def get_model(state: Annotated[AppState, Depends(get_state)]) -> Model:
    """The served model; 503 (via the error handler) while none is loaded."""
    if state.model is None:
        raise NoActiveModelError(state.load_error or "no model is loaded")
    return state.model


StateDep = Annotated[AppState, Depends(get_state)]
ModelDep = Annotated[Model, Depends(get_model)]
