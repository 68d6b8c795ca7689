"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from service.deps import StateDep
from service.errors import DatabaseUnavailableError
from service.metrics import CONTENT_TYPE
from service.schemas import Health

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(state: StateDep) -> Health | JSONResponse:
    """Ready once the active model is loaded and the database answers at the current schema."""
    problems = []
    if state.model is None:
        problems.append(state.load_error or "model not loaded")
    if not await run_in_threadpool(state.check_database) or state.database is None:
        problems.append(state.database_error or "database not open")
    else:
        try:
            await run_in_threadpool(state.database.ping)
        except DatabaseUnavailableError as exc:
            problems.append(str(exc))
    model_id = state.model.id if state.model is not None else None
    if problems:
        body = Health(status="unavailable", model=model_id, detail="; ".join(problems))
        return JSONResponse(status_code=503, content=body.model_dump())
    return Health(status="ok", model=model_id)


@router.get("/metrics", response_class=Response)
async def metrics(state: StateDep) -> Response:
    """Prometheus metrics (serve on an internal network only: it is not authenticated)."""
    body = await run_in_threadpool(state.metrics.render)
    return Response(content=body, media_type=CONTENT_TYPE)
