"""Stateless scoring."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from service.comments import check_text, load_policy
from service.deps import CmsKey, DatabaseDep, ModelDep, StateDep
from service.errors import PayloadTooLargeError
from service.policy import Policy
from service.schemas import ErrorBody, ModerateRequest, ModerateResponse, ModerationResult, SpanOut
from service.storage.db import Database

logger = logging.getLogger(__name__)
router = APIRouter(tags=["scoring"])


def _site_policy(database: Database, site: str | None) -> Policy:
    if site is None:
        return Policy()
    with database.transaction() as repo:
        return load_policy(repo, site)


@router.post(
    "/v1/moderate",
    response_model=ModerateResponse,
    responses={code: {"model": ErrorBody} for code in (401, 403, 413, 422, 429, 503)},
)
async def moderate(
    body: ModerateRequest, state: StateDep, model: ModelDep, database: DatabaseDep, principal: CmsKey
) -> ModerateResponse:
    """Score 1 to 128 comments: labels, scores, spans and a decision; nothing is stored (cms or admin key)."""
    site = body.site or principal.site
    if site is not None:
        principal.check_site(site)
    if len(body.texts) > state.settings.max_batch:
        raise PayloadTooLargeError(f"{len(body.texts)} texts; the limit is {state.settings.max_batch}")
    for i, text in enumerate(body.texts):
        check_text(text, state.settings.max_text_chars, name=f"texts[{i}]")
    policy = await run_in_threadpool(_site_policy, database, site)
    # Concurrent requests share forward passes (service.batching); the event loop is not blocked.
    predictions = await asyncio.wrap_future(state.batcher.submit(model, body.texts))
    logger.debug("scored %d texts", len(body.texts))
    results = []
    for text, p in zip(body.texts, predictions, strict=True):
        outcome = policy.evaluate(text, p.scores, p.flagged)
        results.append(
            ModerationResult(
                scores=p.scores,
                flagged=outcome.flagged,
                decision=outcome.decision,
                spans=[
                    SpanOut(label=s.label, start=s.start, end=s.end, score=s.score)
                    for s in p.spans
                    if s.label in outcome.flagged
                ],
                reasons=outcome.reasons,
            )
        )
    return ModerateResponse(model=model.id, results=results)
