"""Stateless scoring."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from models.errors import InputDataError
from service.deps import ModelDep, StateDep
from service.schemas import ErrorBody, ModerateRequest, ModerateResponse, ModerationResult, SpanOut

logger = logging.getLogger(__name__)
router = APIRouter(tags=["scoring"])


@router.post(
    "/v1/moderate",
    response_model=ModerateResponse,
    responses={422: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def moderate(body: ModerateRequest, state: StateDep, model: ModelDep) -> ModerateResponse:
    """Score 1 to 128 comments: labels, scores, spans and a decision; nothing is stored."""
    limit = state.settings.max_text_chars
    for i, text in enumerate(body.texts):
        if not text.strip():
            raise InputDataError(f"texts[{i}] is empty")
        if len(text) > limit:
            raise InputDataError(f"texts[{i}] has {len(text)} characters; the limit is {limit}")
    predictions = await run_in_threadpool(model.predict, body.texts)
    logger.debug("scored %d texts", len(body.texts))
    return ModerateResponse(
        model=model.id,
        results=[
            ModerationResult(
                scores=p.scores,
                flagged=p.flagged,
                decision=state.policy.decide(p.scores, p.flagged),
                spans=[SpanOut(label=s.label, start=s.start, end=s.end, score=s.score) for s in p.spans],
            )
            for p in predictions
        ],
    )
