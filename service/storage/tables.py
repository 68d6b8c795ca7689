"""The database tables, as SQLAlchemy declarative models.

Timestamps are timezone-aware UTC on every backend (SQLite stores them as naive UTC).
The migrations in service/migrations/ create exactly these tables; a test checks that they agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

COMMENT_STATUSES = ("approved", "pending", "rejected")
DECISIONS = ("approve", "review", "reject")
ROLES = ("cms", "moderator", "admin")
OUTBOX_STATES = ("pending", "delivered", "failed")

JsonType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY.
IdType = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations name constraints the same way."""

    metadata = MetaData(naming_convention=NAMING)


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=f"{column}_valid")


class CommentRow(Base):
    """A submitted comment with its latest scores and decision."""

    __tablename__ = "comments"
    __table_args__ = (
        UniqueConstraint("site", "external_id"),
        Index("ix_comments_queue_priority", "site", "needs_review", "priority", "id"),
        Index("ix_comments_queue_oldest", "site", "needs_review", "created_at", "id"),
        _one_of("status", COMMENT_STATUSES),
        _one_of("decision", DECISIONS),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    thread: Mapped[str | None] = mapped_column(String(200))
    author: Mapped[str | None] = mapped_column(String(200))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JsonType)
    status: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str] = mapped_column(String(16))
    scores: Mapped[dict[str, float] | None] = mapped_column(JsonType)
    flagged: Mapped[list[str]] = mapped_column(JsonType)
    spans: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)
    reasons: Mapped[list[str]] = mapped_column(JsonType)
    model_id: Mapped[str | None] = mapped_column(String(200))
    # The highest flagged score (0 when nothing is flagged): the queue's priority order.
    priority: Mapped[float] = mapped_column(Float)
    # In the review queue: pending comments, and flagged comments published under post-moderation.
    needs_review: Mapped[bool] = mapped_column(Boolean)
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CommentFlagRow(Base):
    """One flagged label of a comment's current scores: what the queue's label filter reads."""

    __tablename__ = "comment_flags"
    __table_args__ = (Index("ix_comment_flags_label", "label", "comment_id"),)

    comment_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    score: Mapped[float] = mapped_column(Float)


class CommentEventRow(Base):
    """The append-only history of a comment (a database trigger refuses updates and deletes)."""

    __tablename__ = "comment_events"
    __table_args__ = (Index("ix_comment_events_comment", "comment_id", "id"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    comment_id: Mapped[int] = mapped_column(IdType, ForeignKey("comments.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    old_status: Mapped[str | None] = mapped_column(String(16))
    new_status: Mapped[str | None] = mapped_column(String(16))
    decision: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    override: Mapped[bool] = mapped_column(Boolean, default=False)
    model_id: Mapped[str | None] = mapped_column(String(200))


class ClaimRow(Base):
    """A moderator's time-limited lease on a comment under review."""

    __tablename__ = "claims"

    comment_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True
    )
    key_id: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FeedbackRow(Base):
    """Labels a moderator says apply to a comment: training data for the next model."""

    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_site_created", "site", "created_at"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    comment_id: Mapped[int] = mapped_column(IdType, ForeignKey("comments.id"))
    site: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str] = mapped_column(String(64))
    labels: Mapped[list[str]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ScoreSuggestionRow(Base):
    """Scores a client suggested for a text (Perspective's comments:suggestscore): training feedback.

    `labels` holds the suggestions mapped onto our labels; `attributes` what the client sent.
    """

    __tablename__ = "score_suggestions"
    __table_args__ = (Index("ix_score_suggestions_created", "created_at"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    site: Mapped[str | None] = mapped_column(String(200))
    key_id: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    labels: Mapped[dict[str, float]] = mapped_column(JsonType)
    attributes: Mapped[dict[str, float]] = mapped_column(JsonType)
    community_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RetrainRunRow(Base):
    """One `moderation retrain` that trained a model: the feedback it saw and what became of it."""

    __tablename__ = "retrain_runs"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The newest feedback the run included: the next run counts new feedback from here.
    feedback_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    feedback_rows: Mapped[int] = mapped_column(Integer)
    model_id: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)


class SitePolicyRow(Base):
    """A site's moderation policy, as the JSON document of service.schemas.PolicyDocument."""

    __tablename__ = "site_policies"

    site: Mapped[str] = mapped_column(String(200), primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(JsonType)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookRow(Base):
    """A site's webhook; the secret signs deliveries, so it is kept in clear."""

    __tablename__ = "webhooks"

    site: Mapped[str] = mapped_column(String(200), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxRow(Base):
    """A webhook delivery, written in the transaction of the decision it reports."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (
        Index("ix_webhook_outbox_due", "state", "next_attempt_at"),
        Index("ix_webhook_outbox_site", "site", "id"),
        _one_of("state", OUTBOX_STATES),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(64))
    comment_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("comments.id"))
    # The exact bytes that are signed and sent (as UTF-8), identical on every retry.
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKeyRow(Base):
    """An API key: only the SHA-256 of the key is stored."""

    __tablename__ = "api_keys"
    __table_args__ = (_one_of("role", ROLES),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    site: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
