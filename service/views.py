"""Stored rows to response schemas."""

from __future__ import annotations

from service.policy import Decision, Status
from service.schemas import (
    ClaimOut,
    CommentDetail,
    CommentOut,
    DeliveryOut,
    EventOut,
    QueueItem,
    SpanOut,
    WebhookOut,
)
from service.storage.tables import ClaimRow, CommentEventRow, CommentRow, OutboxRow, WebhookRow


def comment_out(row: CommentRow) -> CommentOut:
    """The public view of a stored comment (no text)."""
    return CommentOut(
        id=row.external_id,
        site=row.site,
        status=Status(row.status),
        decision=Decision(row.decision),
        scores=row.scores,
        flagged=row.flagged,
        spans=[SpanOut.model_validate(span) for span in row.spans],
        reasons=row.reasons,
        model=row.model_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def claim_out(comment: CommentRow, claim: ClaimRow) -> ClaimOut:
    """A claim on a comment."""
    return ClaimOut(
        id=comment.external_id,
        site=comment.site,
        claimed_by=claim.key_id,
        claimed_at=claim.claimed_at,
        expires_at=claim.expires_at,
    )


def event_out(row: CommentEventRow) -> EventOut:
    """One history entry."""
    return EventOut(
        at=row.created_at,
        actor=row.actor,
        action=row.action,
        old_status=Status(row.old_status) if row.old_status else None,
        new_status=Status(row.new_status) if row.new_status else None,
        decision=Decision(row.decision) if row.decision else None,
        reason=row.reason,
        override=row.override,
        model=row.model_id,
    )


def comment_detail(row: CommentRow, claim: ClaimRow | None, history: list[CommentEventRow]) -> CommentDetail:
    """A comment with text, claim and history (for moderators and the CMS)."""
    return CommentDetail(
        **comment_out(row).model_dump(),
        text=row.text,
        thread=row.thread,
        author=row.author,
        metadata=row.meta,
        reviewed_by=row.reviewed_by,
        reviewed_at=row.reviewed_at,
        claim=claim_out(row, claim) if claim else None,
        history=[event_out(event) for event in history],
    )


def queue_item(row: CommentRow, claim: ClaimRow | None) -> QueueItem:
    """A queue entry."""
    return QueueItem(
        **comment_out(row).model_dump(),
        text=row.text,
        thread=row.thread,
        author=row.author,
        priority=row.priority,
        claimed_by=claim.key_id if claim else None,
        claim_expires_at=claim.expires_at if claim else None,
    )


def webhook_out(row: WebhookRow, *, with_secret: bool = False) -> WebhookOut:
    """A site's webhook; the secret only when asked."""
    return WebhookOut(
        site=row.site,
        url=row.url,
        created_at=row.created_at,
        updated_at=row.updated_at,
        secret=row.secret if with_secret else None,
    )


def delivery_out(row: OutboxRow) -> DeliveryOut:
    """One outbox entry."""
    return DeliveryOut(
        id=row.id,
        site=row.site,
        event=row.event,
        state=row.state,  # type: ignore[arg-type]  # the CHECK constraint keeps it one of three
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.state == "pending" else None,
        last_status=row.last_status,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
    )
