"""Perspective-compatible scoring: `POST /v1alpha1/comments:analyze` and `comments:suggestscore`.

A Perspective client (Coral, CMS plugins, the `perspective` Python package) switches by pointing
its base URL at `<server>/v1alpha1/` and using one of our API keys, sent as `?key=` as
Perspective clients do, or as `Authorization: Bearer`.

Attributes: TOXICITY, INSULT, THREAT, IDENTITY_ATTACK, PROFANITY and SPAM are our labels of those
names, MISINFORMATION and CONSPIRACY ours as well. SEVERE_TOXICITY has no model of its own: it is
min(toxicity, max(insult, threat, identity_attack)), high only for a toxic comment that also
attacks someone, so that profanity alone (which Perspective's SEVERE_TOXICITY is built to ignore)
does not raise it. Any other attribute is refused with 400 naming it.

`spanAnnotations: true` scores each sentence on its own (Perspective's span scores are
per-sentence); otherwise `spanScores` has one span, the whole comment. Offsets count Unicode
code points. `doNotStore: true` guarantees nothing about the comment is kept; analyze never stores
a comment today, so `false` only permits it. `comments:suggestscore` stores the suggested scores
as training feedback (see service/feedback.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from models.errors import InputDataError
from models.scoring import Model
from service.auth import Principal, Role, authorize, bearer_or_query_key
from service.deps import DatabaseDep, ModelDep, StateDep, get_principal
from service.errors import ErrorInfo, PayloadTooLargeError, error_route_class
from service.feedback import store_suggestion

logger = logging.getLogger(__name__)

# Perspective attribute -> our label of the same meaning.
LABEL_OF: dict[str, str] = {
    "TOXICITY": "toxicity",
    "INSULT": "insult",
    "THREAT": "threat",
    "IDENTITY_ATTACK": "identity_attack",
    "PROFANITY": "profanity",
    "SPAM": "spam",
    "MISINFORMATION": "misinformation",
    "CONSPIRACY": "conspiracy",
}
SEVERE_TOXICITY = "SEVERE_TOXICITY"
ATTRIBUTES: tuple[str, ...] = ("TOXICITY", SEVERE_TOXICITY, *(a for a in LABEL_OF if a != "TOXICITY"))
PROBABILITY = "PROBABILITY"
_ERROR_TYPE_URL = "type.googleapis.com/google.commentanalyzer.v1alpha1.Error"
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
}


class PerspectiveRequestError(InputDataError):
    """A request Perspective itself refuses, with Perspective's `errorType`."""

    def __init__(self, message: str, error_type: str, **detail: Any):
        super().__init__(message)
        self.error_type = error_type
        self.detail = detail


def _google_error(exc: Exception, info: ErrorInfo) -> Response:
    """Google's error body: `{"error": {"code", "message", "status", "details"?}}`."""
    status = 400 if info.status in (413, 422) else info.status
    body: dict[str, Any] = {
        "code": status,
        "message": info.detail,
        "status": _GOOGLE_STATUS.get(status, "INTERNAL"),
    }
    error_type = None
    if isinstance(exc, PerspectiveRequestError):
        error_type, extra = exc.error_type, exc.detail
    elif isinstance(exc, PayloadTooLargeError):
        error_type, extra = "COMMENT_TOO_LONG", {}
    if error_type is not None:
        body["details"] = [{"@type": _ERROR_TYPE_URL, "errorType": error_type, **extra}]
    return JSONResponse(status_code=status, content={"error": body}, headers=info.headers)


router = APIRouter(prefix="/v1alpha1", tags=["compatibility"], route_class=error_route_class(_google_error))

_bearer = HTTPBearer(auto_error=False, description="an API key made by `moderation keys create`")
_query_key = APIKeyQuery(
    name="key", auto_error=False, description="the API key, as Perspective clients send it"
)


def perspective_principal(
    state: StateDep,
    database: DatabaseDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    key: Annotated[str | None, Depends(_query_key)],
) -> Principal:
    """The caller of a valid key sent as `Authorization: Bearer` or `?key=`, within its rate limit."""
    secret = bearer_or_query_key(bearer.credentials if bearer else None, key)
    return get_principal(state, database, HTTPAuthorizationCredentials(scheme="Bearer", credentials=secret))


def _role(*roles: Role) -> Callable[[Principal], Principal]:
    allowed = frozenset(roles)

    def check(principal: Annotated[Principal, Depends(perspective_principal)]) -> Principal:
        return authorize(principal, allowed)

    return check


AnalyzeKey = Annotated[Principal, Depends(_role(Role.cms))]
SuggestKey = Annotated[Principal, Depends(_role(Role.cms, Role.moderator))]


class _Camel(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class TextEntry(_Camel):
    """A comment (or a context entry): its text and its type."""

    text: str = Field(description="the comment, 1 to 20,000 characters")
    type: Literal["PLAIN_TEXT", "HTML"] | None = Field(default=None, description="PLAIN_TEXT only")


class Context(_Camel):
    """Text around the comment (accepted; our models score the comment alone)."""

    entries: list[TextEntry] = Field(default_factory=list)


class AttributeParameters(_Camel):
    """Options of one requested attribute."""

    score_type: str | None = Field(default=None, description="PROBABILITY (the default and the only one)")
    score_threshold: float | None = Field(
        default=None, ge=0.0, le=1.0, description="leave out scores below this"
    )


class AnalyzeRequest(_Camel):
    """Perspective's AnalyzeComment request."""

    comment: TextEntry
    context: Context | None = None
    requested_attributes: dict[str, AttributeParameters] = Field(
        min_length=1, description=f"attributes to score: {', '.join(ATTRIBUTES)}"
    )
    span_annotations: bool = Field(default=False, description="score each sentence as well")
    languages: list[str] | None = Field(default=None, description="English (en) only")
    do_not_store: bool = Field(default=False, description="true: nothing about the comment is kept")
    client_token: str | None = Field(default=None, max_length=1000, description="echoed in the response")
    session_id: str | None = Field(default=None, max_length=1000)
    community_id: str | None = Field(default=None, max_length=200)


class Score(_Camel):
    """A probability."""

    value: float = Field(ge=0.0, le=1.0)
    type: str = PROBABILITY


class SpanScore(_Camel):
    """The score of the characters [begin, end) of the comment."""

    begin: int = Field(ge=0)
    end: int = Field(ge=0)
    score: Score


class AttributeScores(_Camel):
    """One attribute's score for the whole comment and per span."""

    summary_score: Score
    span_scores: list[SpanScore]


class AnalyzeResponse(_Camel):
    """Perspective's AnalyzeComment response."""

    attribute_scores: dict[str, AttributeScores]
    languages: list[str]
    client_token: str | None = None


class SuggestedScores(_Camel):
    """Scores a client believes right for one attribute (span scores are accepted, not used)."""

    summary_score: Score | None = None
    span_scores: list[SpanScore] | None = None


class SuggestRequest(_Camel):
    """Perspective's SuggestCommentScore request."""

    comment: TextEntry
    context: Context | None = None
    attribute_scores: dict[str, SuggestedScores] = Field(min_length=1)
    languages: list[str] | None = None
    community_id: str | None = Field(default=None, max_length=200)
    client_token: str | None = Field(default=None, max_length=1000)
    session_id: str | None = Field(default=None, max_length=1000)


class SuggestResponse(_Camel):
    """Perspective's SuggestCommentScore response."""

    requested_languages: list[str]
    client_token: str | None = None


class GoogleErrorDetail(BaseModel):
    """What went wrong; `details[0].errorType` names Perspective's error type where there is one."""

    code: int
    message: str
    status: str
    details: list[dict[str, Any]] | None = None


class GoogleErrorBody(BaseModel):
    """Google's error shape."""

    error: GoogleErrorDetail


def severe_toxicity(scores: Mapping[str, float]) -> float:
    """SEVERE_TOXICITY, derived: min(toxicity, max(insult, threat, identity_attack))."""
    return min(scores["toxicity"], max(scores["insult"], scores["threat"], scores["identity_attack"]))


def attribute_score(attribute: str, scores: Mapping[str, float]) -> float:
    """The score of a Perspective attribute from our label scores."""
    return severe_toxicity(scores) if attribute == SEVERE_TOXICITY else scores[LABEL_OF[attribute]]


def check_attributes(names: list[str]) -> None:
    """400 naming the first attribute this service does not score."""
    for name in names:
        if name not in ATTRIBUTES:
            raise PerspectiveRequestError(
                f"Unknown attribute {name}: this service scores {', '.join(ATTRIBUTES)}",
                "ATTRIBUTE_NOT_SUPPORTED",
                attribute=name,
            )


def check_languages(languages: list[str] | None, attributes: list[str]) -> list[str]:
    """The request's languages ("en" when none given); 400 for anything but English."""
    if not languages:
        return ["en"]
    other = [lang for lang in languages if lang.lower().split("-")[0] != "en"]
    if other:
        attribute = attributes[0] if attributes else "TOXICITY"
        raise PerspectiveRequestError(
            f"Attribute {attribute} does not support request languages: {', '.join(other)}",
            "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE",
            languageNotSupportedByAttributeError={"attribute": attribute, "requestedLanguages": languages},
        )
    return languages


def check_comment(comment: TextEntry, limit: int) -> None:
    """400 for an HTML, empty or too long comment, with Perspective's error types."""
    if comment.type == "HTML":
        raise PerspectiveRequestError("comment.type HTML is not supported: send PLAIN_TEXT", "COMMENT_TYPE")
    if not comment.text.strip():
        raise PerspectiveRequestError("Comment must be non-empty.", "COMMENT_EMPTY")
    if len(comment.text) > limit:
        raise PerspectiveRequestError(
            f"Comment text too long: {len(comment.text)} characters; the limit is {limit}",
            "COMMENT_TOO_LONG",
        )


_BOUNDARY = re.compile(r"[.!?]+(?=\s)|\n+")


def sentences(text: str) -> list[tuple[int, int]]:
    """[begin, end) of each sentence: split after . ! ? before whitespace, and at line breaks."""
    bounds: list[tuple[int, int]] = []

    def add(begin: int, end: int) -> None:
        while begin < end and text[begin].isspace():
            begin += 1
        while end > begin and text[end - 1].isspace():
            end -= 1
        if begin < end:
            bounds.append((begin, end))

    begin = 0
    for match in _BOUNDARY.finditer(text):
        add(begin, match.end() if match.group().strip() else match.start())
        begin = match.end()
    add(begin, len(text))
    return bounds or [(0, len(text))]


def _label_scores(model: Model, texts: list[str]) -> list[dict[str, float]]:
    scores = model.score(texts)
    return [{label: float(row[j]) for j, label in enumerate(model.labels)} for row in scores]


def analyze(model: Model, request: AnalyzeRequest) -> dict[str, AttributeScores]:
    """Score the requested attributes of the comment (and of its sentences when asked)."""
    text = request.comment.text
    bounds = sentences(text) if request.span_annotations else [(0, len(text))]
    texts = [text] + ([text[b:e] for b, e in bounds] if request.span_annotations else [])
    scored = _label_scores(model, texts)
    whole = scored[0]
    parts = scored[1:] if request.span_annotations else [whole]
    out: dict[str, AttributeScores] = {}
    for name, options in request.requested_attributes.items():
        threshold = options.score_threshold
        summary = attribute_score(name, whole)
        if threshold is not None and summary < threshold:
            continue  # Perspective leaves out scores below the requested threshold
        spans = []
        for (begin, end), part in zip(bounds, parts, strict=True):
            value = attribute_score(name, part)
            if threshold is None or value >= threshold:
                spans.append(SpanScore(begin=begin, end=end, score=Score(value=value)))
        out[name] = AttributeScores(summary_score=Score(value=summary), span_scores=spans)
    return out


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": GoogleErrorBody} for code in (400, 401, 403, 429, 503)
}


@router.post(
    "/comments:analyze",
    response_model=AnalyzeResponse,
    response_model_exclude_none=True,
    responses=_ERRORS,
)
async def analyze_comment(
    body: AnalyzeRequest, state: StateDep, model: ModelDep, principal: AnalyzeKey
) -> AnalyzeResponse:
    """Perspective-compatible AnalyzeComment (cms or admin key; `?key=` accepted); nothing is stored."""
    names = list(body.requested_attributes)
    check_attributes(names)
    for name, options in body.requested_attributes.items():
        if options.score_type not in (None, PROBABILITY):
            raise PerspectiveRequestError(
                f"requestedAttributes.{name}.scoreType {options.score_type} is not supported: use {PROBABILITY}",
                "INVALID_SCORE_TYPE",
            )
    languages = check_languages(body.languages, names)
    check_comment(body.comment, state.settings.max_text_chars)
    scores = await run_in_threadpool(analyze, model, body)
    return AnalyzeResponse(attribute_scores=scores, languages=languages, client_token=body.client_token)


@router.post(
    "/comments:suggestscore",
    response_model=SuggestResponse,
    response_model_exclude_none=True,
    responses=_ERRORS,
)
async def suggest_score(
    body: SuggestRequest, state: StateDep, database: DatabaseDep, principal: SuggestKey
) -> SuggestResponse:
    """Perspective-compatible SuggestCommentScore: the scores are stored as training feedback (cms, moderator)."""
    names = list(body.attribute_scores)
    check_attributes(names)
    languages = check_languages(body.languages, names)
    check_comment(body.comment, state.settings.max_text_chars)
    attributes: dict[str, float] = {}
    for name, suggested in body.attribute_scores.items():
        if suggested.summary_score is None:
            raise PerspectiveRequestError(
                f"attributeScores.{name}.summaryScore is required", "INVALID_ARGUMENT", attribute=name
            )
        attributes[name] = suggested.summary_score.value
    # SEVERE_TOXICITY is derived here, not a label of its own: it is kept but trains nothing.
    labels = {LABEL_OF[name]: value for name, value in attributes.items() if name in LABEL_OF}
    row_id = await run_in_threadpool(
        lambda: store_suggestion(
            database,
            principal,
            text=body.comment.text,
            labels=labels,
            attributes=attributes,
            community_id=body.community_id,
            now=state.clock(),
        )
    )
    logger.info("stored score suggestion %d (%s) from key %s", row_id, ", ".join(names), principal.key_id)
    return SuggestResponse(requested_languages=languages, client_token=body.client_token)
