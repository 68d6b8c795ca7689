"""Administration: webhook deliveries, models."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from models.errors import ArtifactError
from models.gate import GateError, PromotionRefusedError, compare_stored
from service.deps import AdminKey, DatabaseDep, StateDep
from service.errors import ModelRejectedError
from service.schemas import DeliveryOut, ErrorBody, PromoteOut, PromoteRequest, SiteName
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


@router.post(
    "/models/{model_id}/promote",
    response_model=PromoteOut,
    responses={**_ERRORS, 409: {"model": ErrorBody, "description": "refused by the promotion gate"}},
)
async def promote_model(
    model_id: str, state: StateDep, principal: AdminKey, body: PromoteRequest | None = None
) -> PromoteOut:
    """Gate, load, activate and serve a model; requests in flight are not disturbed.

    The gate compares the artifacts' stored evaluation reports (see models/gate.py); `force` with a
    `reason` promotes anyway and records both.
    """
    options = body or PromoteRequest()
    try:
        model = await run_in_threadpool(state.registry.load, model_id)
    except ArtifactError as exc:
        raise ModelRejectedError(f"model {model_id} cannot be served: {exc}") from exc
    refusal: GateError | None = None
    try:
        result = await run_in_threadpool(compare_stored, state.registry, model_id)
        if result is not None and not result.passed:
            raise PromotionRefusedError(result)
    except GateError as exc:
        if not options.force:
            raise
        refusal = exc
    regressions: list[str] = []
    if isinstance(refusal, PromotionRefusedError):
        regressions = refusal.result.regression_lines()
    elif refusal is not None:
        regressions = [str(refusal)]
    try:
        previous = await run_in_threadpool(
            lambda: state.registry.promote(
                model_id,
                actor=principal.actor,
                forced=refusal is not None,
                reason=options.reason,
                regressions=regressions,
            )
        )
    except ArtifactError as exc:
        raise ModelRejectedError(f"model {model_id} cannot be served: {exc}") from exc
    state.swap_model(model)
    gate: Literal["passed", "forced", "no_active_model"] = "passed"
    if refusal is not None:
        gate = "forced"
    elif previous is None:
        gate = "no_active_model"
    return PromoteOut(model=model.id, previous=previous, gate=gate, regressions=regressions)
