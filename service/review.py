"""The review queue: listing, claims (leases) and moderators' decisions (no HTTP here).

Claims and decisions lock the comment's row first (FOR UPDATE on PostgreSQL, an exclusive
transaction on SQLite), so two moderators in two processes cannot both win.

A decision needs no claim when nobody else holds one. The first moderator decision is
final unless a later one says `override: true`; automatic decisions can always be replaced.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.auth import Principal, Role
from service.comments import get_comment
from service.errors import InvalidCursorError, ReviewConflictError
from service.policy import Decision, Status
from service.schemas import DecisionRequest
from service.storage.db import Database
from service.storage.repository import QueuePosition, QueueSort
from service.storage.tables import ClaimRow, CommentEventRow, CommentRow, FeedbackRow
from service.webhooks import enqueue_decision

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueResult:
    """A page of the queue with the claims on its comments and the next page's cursor."""

    comments: list[CommentRow]
    claims: dict[int, ClaimRow]
    next_cursor: str | None


def encode_cursor(sort: QueueSort, label: str | None, row: CommentRow) -> str:
    """An opaque cursor positioned after `row`."""
    data = {"s": sort, "l": label, "p": row.priority, "t": row.created_at.isoformat(), "i": row.id}
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: QueueSort, label: str | None) -> QueuePosition:
    """The position a cursor encodes; InvalidCursorError if it was not made for this query."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        position = QueuePosition(
            priority=float(data["p"]), created_at=datetime.fromisoformat(data["t"]), id=int(data["i"])
        )
        same_query = data["s"] == sort and data["l"] == label
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidCursorError("the cursor is not one this service issued") from None
    if not same_query:
        raise InvalidCursorError("the cursor belongs to a query with another sort or label")
    return position


def list_queue(
    database: Database, site: str, *, sort: QueueSort, limit: int, label: str | None, cursor: str | None
) -> QueueResult:
    """One page of the site's queue."""
    after = decode_cursor(cursor, sort, label) if cursor else None
    with database.transaction() as repo:
        rows = repo.queue(site, sort=sort, limit=limit + 1, label=label, after=after)
        page, more = rows[:limit], len(rows) > limit
        claims = repo.claims([row.id for row in page])
    return QueueResult(page, claims, encode_cursor(sort, label, page[-1]) if more and page else None)


def _lease_event(comment: CommentRow, principal: Principal, action: str, now: datetime) -> CommentEventRow:
    """Audit row for taking or giving up a claim (the status does not change)."""
    return CommentEventRow(
        comment_id=comment.id,
        created_at=now,
        actor=principal.actor,
        action=action,
        old_status=comment.status,
        new_status=comment.status,
        override=False,
    )


def _active_claim(claim: ClaimRow | None, now: datetime) -> ClaimRow | None:
    return claim if claim is not None and claim.expires_at > now else None


def claim(
    database: Database, site: str, external_id: str, principal: Principal, ttl: timedelta, now: datetime
) -> tuple[CommentRow, ClaimRow]:
    """Lease a comment under review to this moderator (renewed if they already hold it)."""
    with database.transaction() as repo:
        comment = get_comment(repo, site, external_id, lock=True)
        if not comment.needs_review:
            raise ReviewConflictError(f"comment {external_id!r} is not awaiting review")
        held = _active_claim(repo.get_claim(comment.id), now)
        if held is not None and held.key_id != principal.key_id:
            raise ReviewConflictError(
                f"comment {external_id!r} is claimed by key {held.key_id} until {held.expires_at.isoformat()}"
            )
        row = repo.put_claim(comment.id, principal.key_id, now, ttl)
        if held is None:
            repo.add_event(_lease_event(comment, principal, "claimed", now))
        return comment, row


def release(database: Database, site: str, external_id: str, principal: Principal, now: datetime) -> None:
    """Give up one's own claim (an admin may release anyone's)."""
    with database.transaction() as repo:
        comment = get_comment(repo, site, external_id, lock=True)
        held = _active_claim(repo.get_claim(comment.id), now)
        if held is None:
            return
        if held.key_id != principal.key_id and principal.role is not Role.admin:
            raise ReviewConflictError(f"comment {external_id!r} is claimed by key {held.key_id}")
        repo.delete_claim(comment.id)
        repo.add_event(_lease_event(comment, principal, "released", now))


_STATUS_OF = {"approve": Status.approved, "reject": Status.rejected}


def decide(
    database: Database,
    site: str,
    external_id: str,
    principal: Principal,
    request: DecisionRequest,
    now: datetime,
    hold: timedelta | None = None,
) -> CommentRow:
    """Record a moderator's decision, its audit row, feedback and webhook delivery in one transaction.

    `hold` delays the webhook delivery, so that `undo` can still take the decision back.
    """
    with database.transaction() as repo:
        comment = get_comment(repo, site, external_id, lock=True)
        held = _active_claim(repo.get_claim(comment.id), now)
        if held is not None and held.key_id != principal.key_id:
            raise ReviewConflictError(
                f"comment {external_id!r} is claimed by key {held.key_id} until {held.expires_at.isoformat()}"
            )
        overriding = comment.reviewed_at is not None
        if overriding and not request.override:
            raise ReviewConflictError(
                f"comment {external_id!r} was already decided by a moderator "
                f"({comment.decision}, {comment.reviewed_at.isoformat() if comment.reviewed_at else ''}); "
                "send override: true to replace that decision"
            )
        old_status = comment.status
        comment.status = _STATUS_OF[request.decision].value
        comment.decision = Decision(request.decision).value
        comment.needs_review = False
        comment.reviewed_by = principal.key_id
        comment.reviewed_at = now
        comment.updated_at = now
        repo.delete_claim(comment.id)
        repo.add_event(
            CommentEventRow(
                comment_id=comment.id,
                created_at=now,
                actor=principal.actor,
                action="overridden" if overriding else "decided",
                old_status=old_status,
                new_status=comment.status,
                decision=comment.decision,
                reason=request.reason,
                override=overriding,
                model_id=comment.model_id,
            )
        )
        if request.labels is not None:
            repo.add_feedback(
                FeedbackRow(
                    comment_id=comment.id,
                    site=site,
                    key_id=principal.key_id,
                    labels=request.labels,
                    created_at=now,
                )
            )
        enqueue_decision(
            repo,
            comment,
            source="moderator",
            actor=principal.actor,
            override=overriding,
            now=now,
            not_before=now + hold if hold else None,
        )
    logger.info(
        "comment %s/%s %s by key %s%s",
        site,
        external_id,
        comment.decision,
        principal.key_id,
        " (override)" if overriding else "",
    )
    return comment


def undo(
    database: Database,
    site: str,
    external_id: str,
    principal: Principal,
    window: timedelta,
    claim_ttl: timedelta,
    now: datetime,
) -> CommentRow:
    """Take back one's own decision within `window` of making it.

    The comment gets the status and decision it had before, goes back into the queue (claimed by
    this moderator), the decision's labels are forgotten and its webhook delivery, held back by
    `decide(hold=...)`, is cancelled; an `undone` entry is appended to the history. Refused
    (ReviewConflictError) once the window has passed, after anything else happened to the
    comment, or once the site may have been told.
    """
    with database.transaction() as repo:
        comment = get_comment(repo, site, external_id, lock=True)
        history = repo.history(comment.id)
        last = history[-1] if history else None
        if last is None or last.action != "decided" or last.actor != principal.actor:
            raise ReviewConflictError(f"the latest change to comment {external_id!r} is not your decision")
        if now - last.created_at > window:
            raise ReviewConflictError(
                f"the decision on comment {external_id!r} can no longer be undone "
                f"(only within {window.total_seconds():g} s)"
            )
        deadline = last.created_at + window
        for delivery in repo.undelivered(comment.id, last.created_at):
            if delivery.attempts > 0 or not now < delivery.next_attempt_at <= deadline:
                raise ReviewConflictError(
                    f"the decision on comment {external_id!r} is already being reported to the site"
                )
            repo.cancel_delivery(delivery.id, f"cancelled: the decision was undone by {principal.actor}")
        repo.delete_feedback(comment.id, principal.key_id, last.created_at)
        before = next((e.decision for e in reversed(history[:-1]) if e.decision), Decision.review.value)
        decided_status = comment.status
        comment.status = last.old_status or Status.pending.value
        comment.decision = before
        # Only the automatic decision "review" puts a comment in the queue (see policy.evaluate).
        comment.needs_review = before == Decision.review.value
        comment.reviewed_by = comment.reviewed_at = None
        comment.updated_at = now
        if comment.needs_review:
            repo.put_claim(comment.id, principal.key_id, now, claim_ttl)
        repo.add_event(
            CommentEventRow(
                comment_id=comment.id,
                created_at=now,
                actor=principal.actor,
                action="undone",
                old_status=decided_status,
                new_status=comment.status,
                decision=comment.decision,
                reason=f"undid the {last.decision} decision of {last.created_at.isoformat()}",
                override=False,
                model_id=comment.model_id,
            )
        )
    logger.info("comment %s/%s: decision undone by key %s", site, external_id, principal.key_id)
    return comment
