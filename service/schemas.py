"""Request and response models of the HTTP API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from service.policy import Decision


class ModerateRequest(BaseModel):
    """Texts to score; nothing is stored."""

    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(min_length=1, max_length=128, description="1 to 128 comments")
    site: str | None = Field(default=None, max_length=200, description="site whose policy applies")


class SpanOut(BaseModel):
    """A character range [start, end) that drove a label's score."""

    label: str
    start: int
    end: int
    score: float


class ModerationResult(BaseModel):
    """Scores, flags, decision and spans for one text."""

    scores: dict[str, float]
    flagged: list[str]
    decision: Decision
    spans: list[SpanOut]


class ModerateResponse(BaseModel):
    """Results in the order of the request's texts."""

    model: str
    results: list[ModerationResult]


class Health(BaseModel):
    """Liveness or readiness status."""

    status: str
    model: str | None = None
    detail: str | None = None


class ErrorBody(BaseModel):
    """Every error response."""

    error: str
    detail: str
