"""OpenAI-compatible moderation: `POST /v1/moderations`, for clients of OpenAI's moderation endpoint.

A client of OpenAI's moderation API switches by changing its base URL to `<server>/v1` and its
API key to one of ours. Every category of OpenAI's current moderation response is present;
those we have a model for take their score from our labels, the others are always 0.0 / false
(and their `category_applied_input_types` is empty: nothing was assessed). Our own labels that
OpenAI has no category for are added under their own names.

A score combining two labels is their minimum (a fuzzy AND: "hateful *and* threatening" is at most
as likely as either); such a category is flagged when both labels are flagged. Flags follow the
policy of the key's site (the model's thresholds for unscoped keys), as on /v1/moderate.
"""

from __future__ import annotations

import logging
import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from models.errors import InputDataError, ModelNotFoundError
from models.labels import validate_labels
from service.comments import check_text, load_policy
from service.deps import CmsKey, DatabaseDep, ModelDep, StateDep
from service.errors import ErrorInfo, PayloadTooLargeError, error_route_class
from service.policy import Policy
from service.storage.db import Database

logger = logging.getLogger(__name__)

# OpenAI category -> our labels whose minimum is its score (empty: we have no model for it).
OPENAI_CATEGORIES: dict[str, tuple[str, ...]] = {
    "harassment": ("insult",),
    "harassment/threatening": ("threat",),
    "hate": ("identity_attack",),
    "hate/threatening": ("identity_attack", "threat"),
    "illicit": (),
    "illicit/violent": (),
    "self-harm": (),
    "self-harm/intent": (),
    "self-harm/instructions": (),
    "sexual": (),
    "sexual/minors": (),
    "violence": ("threat",),
    "violence/graphic": (),
}
# Our labels that no OpenAI category covers, reported under their own names.
OWN_CATEGORIES: tuple[str, ...] = tuple(
    validate_labels(("toxicity", "profanity", "spam", "misinformation", "conspiracy"))
)
CATEGORIES: dict[str, tuple[str, ...]] = {
    **OPENAI_CATEGORIES,
    **{label: (label,) for label in OWN_CATEGORIES},
}
# Model names an OpenAI client may send; any of them is served by our active model.
OPENAI_MODEL_PREFIXES = ("omni-moderation", "text-moderation")


def _openai_error(exc: Exception, info: ErrorInfo) -> Response:
    """OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`."""
    status = 400 if info.status == 422 else info.status
    if status == 401:
        kind, code = "invalid_request_error", "invalid_api_key"
    elif status == 429:
        kind, code = "requests", "rate_limit_exceeded"
    elif status >= 500:
        kind, code = "server_error", info.code
    else:
        kind, code = "invalid_request_error", info.code
    body = {"error": {"message": info.detail, "type": kind, "param": None, "code": code}}
    return JSONResponse(status_code=status, content=body, headers=info.headers)


router = APIRouter(tags=["compatibility"], route_class=error_route_class(_openai_error))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextInput(_Strict):
    """A text part of a multi-modal input."""

    type: Literal["text"]
    text: str


class ImageUrlInput(BaseModel):
    """An image part of a multi-modal input (refused: this service moderates text)."""

    type: Literal["image_url"]
    image_url: dict[str, Any]


InputPart = Annotated[TextInput | ImageUrlInput, Field(discriminator="type")]


class ModerationsRequest(_Strict):
    """OpenAI's moderation request: one text, a list of texts, or a list of text parts."""

    input: (
        str | Annotated[list[str], Field(min_length=1)] | Annotated[list[InputPart], Field(min_length=1)]
    ) = Field(description="text(s) to classify; 1 to 128 texts (413 beyond), each 1 to 20,000 characters")
    model: str | None = Field(
        default=None,
        description="omni-moderation-* / text-moderation-* (served by the active model) or the active model's id",
    )


class OpenAIModeration(BaseModel):
    """One input's result, in OpenAI's shape."""

    flagged: bool = Field(description="whether any category is flagged")
    categories: dict[str, bool] = Field(
        description="every OpenAI category (harassment, harassment/threatening, hate, hate/threatening, "
        "illicit, illicit/violent, self-harm, self-harm/intent, self-harm/instructions, sexual, "
        "sexual/minors, violence, violence/graphic) plus toxicity, profanity, spam, misinformation, "
        "conspiracy"
    )
    category_scores: dict[str, float] = Field(description="the same keys: scores in 0..1")
    category_applied_input_types: dict[str, list[Literal["text"]]] = Field(
        description='the same keys: ["text"] where a model assessed the text, [] where we have none'
    )


class ModerationsResponse(BaseModel):
    """OpenAI's moderation response; `model` is the id of the model that scored."""

    id: str
    model: str
    results: list[OpenAIModeration]


class OpenAIErrorDetail(BaseModel):
    """What went wrong."""

    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIErrorBody(BaseModel):
    """OpenAI's error shape."""

    error: OpenAIErrorDetail


def input_texts(value: str | list[str] | list[TextInput | ImageUrlInput]) -> list[str]:
    """The texts of a request's `input`; InputDataError for image parts."""
    if isinstance(value, str):
        return [value]
    texts = []
    for part in value:
        if isinstance(part, ImageUrlInput):
            raise InputDataError("image inputs are not supported: this service moderates text")
        texts.append(part if isinstance(part, str) else part.text)
    return texts


def check_model_name(requested: str | None, served: str) -> None:
    """Accept OpenAI's moderation model names and the served model's id; 404 otherwise."""
    if requested is None or requested == served or requested.startswith(OPENAI_MODEL_PREFIXES):
        return
    raise ModelNotFoundError(
        f"the model {requested!r} does not exist here; send no model, an omni-moderation-* or "
        f"text-moderation-* name, or {served!r}"
    )


def openai_result(scores: dict[str, float], flagged: list[str]) -> OpenAIModeration:
    """Map one text's label scores and flagged labels onto OpenAI's categories."""
    categories: dict[str, bool] = {}
    category_scores: dict[str, float] = {}
    applied: dict[str, list[Literal["text"]]] = {}
    for name, labels in CATEGORIES.items():
        category_scores[name] = min(scores[label] for label in labels) if labels else 0.0
        categories[name] = bool(labels) and all(label in flagged for label in labels)
        applied[name] = ["text"] if labels else []
    return OpenAIModeration(
        flagged=any(categories.values()),
        categories=categories,
        category_scores=category_scores,
        category_applied_input_types=applied,
    )


def _policy(database: Database, site: str | None) -> Policy:
    if site is None:
        return Policy()
    with database.transaction() as repo:
        return load_policy(repo, site)


@router.post(
    "/v1/moderations",
    response_model=ModerationsResponse,
    responses={code: {"model": OpenAIErrorBody} for code in (400, 401, 403, 404, 413, 429, 503)},
)
async def create_moderation(
    body: ModerationsRequest, state: StateDep, model: ModelDep, database: DatabaseDep, principal: CmsKey
) -> ModerationsResponse:
    """OpenAI-compatible moderation of 1 to 128 texts (cms or admin key); nothing is stored."""
    texts = input_texts(body.input)
    if len(texts) > state.settings.max_batch:
        raise PayloadTooLargeError(f"{len(texts)} inputs; the limit is {state.settings.max_batch}")
    for i, text in enumerate(texts):
        check_text(text, state.settings.max_text_chars, name="input" if len(texts) == 1 else f"input[{i}]")
    check_model_name(body.model, model.id)
    policy = await run_in_threadpool(_policy, database, principal.site)
    predictions = await run_in_threadpool(model.predict, texts, spans=False)
    logger.debug("scored %d texts for an OpenAI-compatible client", len(texts))
    results = [openai_result(p.scores, policy.flagged(p.scores, p.flagged)) for p in predictions]
    return ModerationsResponse(id=f"modr-{secrets.token_hex(12)}", model=model.id, results=results)
