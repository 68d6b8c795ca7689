"""Request and response models of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from models.labels import validate_labels
from service.policy import DEFAULT_REJECT, Decision, Mode, Policy, Status

# Site names and comment ids appear in URL paths: no slash, no whitespace or control characters.
SiteName = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[^/\s\x00-\x1f]+$", description="site name")
]
CommentId = Annotated[
    str,
    Field(min_length=1, max_length=200, pattern=r"^[^/\s\x00-\x1f]+$", description="the CMS's comment id"),
]
Threshold = Annotated[float, Field(ge=0.0, le=1.0)]
Term = Annotated[str, Field(min_length=1, max_length=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- scoring ------------------------------------------------------------------------------


class ModerateRequest(_Strict):
    """Texts to score; nothing is stored."""

    texts: list[str] = Field(min_length=1, description="1 to 128 comments (413 beyond)")
    site: SiteName | None = Field(default=None, description="site whose policy applies")


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
    reasons: list[str] = Field(default_factory=list)


class ModerateResponse(BaseModel):
    """Results in the order of the request's texts."""

    model: str
    results: list[ModerationResult]


# ---- comments -----------------------------------------------------------------------------


class CommentCreate(_Strict):
    """A comment submitted by the CMS; (site, id) identifies it."""

    site: SiteName
    id: CommentId
    text: str = Field(description="the comment; 1 to 20,000 characters (413 beyond)")
    thread: str | None = Field(default=None, max_length=200, description="article or thread id")
    author: str | None = Field(default=None, max_length=200, description="author id in the CMS")
    metadata: dict[str, Any] = Field(default_factory=dict, description="anything the CMS wants kept")


class CommentOut(BaseModel):
    """A stored comment's decision (the text is not echoed)."""

    id: str
    site: str
    status: Status
    decision: Decision
    scores: dict[str, float] | None
    flagged: list[str]
    spans: list[SpanOut]
    reasons: list[str]
    model: str | None
    created_at: datetime
    updated_at: datetime


class EventOut(BaseModel):
    """One entry of a comment's history."""

    at: datetime
    actor: str
    action: str
    old_status: Status | None
    new_status: Status | None
    decision: Decision | None
    reason: str | None
    override: bool
    model: str | None


class ClaimOut(BaseModel):
    """A moderator's lease on a comment."""

    id: str
    site: str
    claimed_by: str
    claimed_at: datetime
    expires_at: datetime


class CommentDetail(CommentOut):
    """A comment with its text, current claim and full history."""

    text: str
    thread: str | None
    author: str | None
    metadata: dict[str, Any]
    reviewed_by: str | None
    reviewed_at: datetime | None
    claim: ClaimOut | None
    history: list[EventOut]


# ---- review queue -------------------------------------------------------------------------


class QueueItem(CommentOut):
    """A comment awaiting review, with its text and who holds it."""

    text: str
    thread: str | None
    author: str | None
    priority: float
    claimed_by: str | None
    claim_expires_at: datetime | None


class QueuePage(BaseModel):
    """One page of the queue; pass `next_cursor` back as `cursor` for the next one."""

    items: list[QueueItem]
    next_cursor: str | None


class DecisionRequest(_Strict):
    """A moderator's decision."""

    decision: Literal["approve", "reject"]
    reason: str | None = Field(default=None, max_length=2000, description="why (kept in the history)")
    labels: list[str] | None = Field(
        default=None, description="the labels that really apply (stored as training feedback)"
    )
    override: bool = Field(default=False, description="replace an earlier moderator's decision")

    @field_validator("labels")
    @classmethod
    def _known_labels(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else sorted(set(validate_labels(value)))


# ---- policies -----------------------------------------------------------------------------


class PolicyDocument(_Strict):
    """A site's moderation policy.

    `review[label]`: score at which the label is flagged (default: the model's threshold);
    `reject[label]`: score at which the comment is rejected (default: `default_reject`).
    `mode` pre: flagged comments are held pending until a moderator decides; post: they are
    published (approved) and still enter the review queue. Banned words reject, suspect words
    send to review; both match whole words, case-insensitively.
    """

    mode: Mode = Mode.pre
    review: dict[str, Threshold] = Field(default_factory=dict)
    reject: dict[str, Threshold] = Field(default_factory=dict)
    default_reject: Threshold = DEFAULT_REJECT
    banned_words: list[Term] = Field(default_factory=list, max_length=1000)
    suspect_words: list[Term] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _consistent(self) -> PolicyDocument:
        validate_labels([*self.review, *self.reject])
        for label, review in self.review.items():
            reject = self.reject.get(label, self.default_reject)
            if review > reject:
                raise ValueError(
                    f"review threshold of {label} ({review}) is above its reject threshold ({reject})"
                )
        for term in [*self.banned_words, *self.suspect_words]:
            if not any(ch.isalnum() for ch in term):
                raise ValueError("every banned or suspect term needs at least one letter or digit")
        return self

    def to_policy(self) -> Policy:
        """The decision logic for this document."""
        return Policy(
            mode=self.mode,
            review=dict(self.review),
            reject=dict(self.reject),
            default_reject=self.default_reject,
            banned_words=tuple(self.banned_words),
            suspect_words=tuple(self.suspect_words),
        )


class PolicyOut(BaseModel):
    """The policy that applies to a site; `source` default: the site has none of its own."""

    site: str
    source: Literal["site", "default"]
    policy: PolicyDocument
    updated_by: str | None = None
    updated_at: datetime | None = None


# ---- webhooks -----------------------------------------------------------------------------


class WebhookIn(_Strict):
    """Where a site's decisions are POSTed; the secret is generated when not given."""

    url: AnyHttpUrl
    secret: str | None = Field(default=None, min_length=16, max_length=200)


class WebhookOut(BaseModel):
    """A site's webhook; `secret` only in the answer that set it."""

    site: str
    url: str
    created_at: datetime
    updated_at: datetime
    secret: str | None = None


class DeliveryOut(BaseModel):
    """One webhook delivery and its attempts."""

    id: int
    site: str
    event: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


# ---- operations ---------------------------------------------------------------------------


class PromoteRequest(_Strict):
    """Options of a promotion: `force` (with a `reason`, kept in the registry) overrides the gate."""

    force: bool = Field(default=False, description="promote even if the gate refuses or cannot compare")
    reason: str | None = Field(default=None, max_length=2000, description="why; required with force")

    @model_validator(mode="after")
    def _reason_with_force(self) -> PromoteRequest:
        if self.force and not (self.reason or "").strip():
            raise ValueError("force needs a reason (it is recorded in the registry's history)")
        return self


class PromoteOut(BaseModel):
    """The model now served, the one it replaced, and what the gate said."""

    model: str
    previous: str | None
    gate: Literal["passed", "forced", "no_active_model"] = "passed"
    regressions: list[str] = Field(default_factory=list, description="what got worse (forced promotions)")


class Health(BaseModel):
    """Liveness or readiness status."""

    status: str
    model: str | None = None
    detail: str | None = None


class ErrorBody(BaseModel):
    """Every error response."""

    error: str
    detail: str
