"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.deps import StateDep
from service.schemas import Health

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(state: StateDep) -> Health | JSONResponse:
    """Ready once the active model is loaded."""
    if state.model is None:
        body = Health(status="unavailable", detail=state.load_error or "model not loaded")
        return JSONResponse(status_code=503, content=body.model_dump())
    return Health(status="ok", model=state.model.id)
