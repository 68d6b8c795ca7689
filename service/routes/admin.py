"""Administration: webhook deliveries, models."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from models.errors import ArtifactError
from service.deps import AdminKey, DatabaseDep, StateDep
from service.errors import ModelRejectedError
from service.schemas import DeliveryOut, ErrorBody, PromoteOut, SiteName
from service.views import delivery_out

router = APIRouter(prefix="/v1/admin", tags=["admin"])

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 422, 429)
}


@router.get("/webhooks/deliveries", response_model=list[DeliveryOut], responses=_ERRORS)
def list_deliveries(
    site: Annotated[SiteName, Query()],
    database: DatabaseDep,
    principal: AdminKey,
    state: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryOut]:
    """A site's webhook deliveries, newest first, with their attempts and last error."""
    with database.transaction() as repo:
        return [delivery_out(row) for row in repo.deliveries(site, limit, state)]


@router.post("/models/{model_id}/promote", response_model=PromoteOut, responses=_ERRORS)
async def promote_model(model_id: str, state: StateDep, principal: AdminKey) -> PromoteOut:
    """Load a model, make it the active one and serve it; requests in flight are not disturbed."""
    try:
        model = await run_in_threadpool(state.registry.load, model_id)
        previous = await run_in_threadpool(state.registry.promote, model_id)
    except ArtifactError as exc:
        raise ModelRejectedError(f"model {model_id} cannot be served: {exc}") from exc
    state.swap_model(model)
    return PromoteOut(model=model.id, previous=previous)
