"""All queries, behind one class that works inside a transaction (see Database.transaction).

Rows that are changed after being read are read with `lock=True`: SELECT ... FOR UPDATE on
PostgreSQL (ignored by SQLite, whose transactions are already exclusive, see db.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, case, delete, exists, func, or_, select, union, update
from sqlalchemy.orm import Session

from service.storage.tables import (
    ApiKeyRow,
    ClaimRow,
    CommentEventRow,
    CommentFlagRow,
    CommentRow,
    FeedbackRow,
    OutboxRow,
    RetrainRunRow,
    ScoreSuggestionRow,
    SitePolicyRow,
    WebhookRow,
)

QueueSort = Literal["priority", "oldest"]
MODERATOR_ACTIONS = ("decided", "overridden")
AUTOMATIC_ACTIONS = ("submitted", "rescored")


@dataclass(frozen=True)
class QueuePosition:
    """Where a queue page ends: the sort key of its last row."""

    priority: float
    created_at: datetime
    id: int


class Repository:
    """Reads and writes inside one session/transaction."""

    def __init__(self, session: Session):
        self.session = session

    # ---- comments -------------------------------------------------------------------------

    def get_comment(self, site: str, external_id: str, *, lock: bool = False) -> CommentRow | None:
        """The comment (site, external_id), or None."""
        query = select(CommentRow).where(CommentRow.site == site, CommentRow.external_id == external_id)
        if lock:
            query = query.with_for_update()
        return self.session.scalars(query).one_or_none()

    def add_comment(self, row: CommentRow) -> CommentRow:
        """Insert a comment (flush, so it has an id) and its flag rows."""
        self.session.add(row)
        self.session.flush()
        self._write_flags(row)
        return row

    def save_scores(self, row: CommentRow) -> None:
        """Flush a changed comment and rewrite its flag rows."""
        self.session.flush()
        self.session.execute(delete(CommentFlagRow).where(CommentFlagRow.comment_id == row.id))
        self._write_flags(row)

    def _write_flags(self, row: CommentRow) -> None:
        scores = row.scores or {}
        self.session.add_all(
            CommentFlagRow(comment_id=row.id, label=label, score=scores.get(label, 0.0))
            for label in row.flagged
        )
        self.session.flush()

    def add_event(self, row: CommentEventRow) -> None:
        """Append to a comment's history."""
        self.session.add(row)
        self.session.flush()

    def history(self, comment_id: int) -> list[CommentEventRow]:
        """A comment's history, oldest first."""
        query = (
            select(CommentEventRow)
            .where(CommentEventRow.comment_id == comment_id)
            .order_by(CommentEventRow.id)
        )
        return list(self.session.scalars(query))

    def queue(
        self,
        site: str,
        *,
        sort: QueueSort,
        limit: int,
        label: str | None = None,
        after: QueuePosition | None = None,
    ) -> list[CommentRow]:
        """Comments awaiting review, by priority (highest flagged score first) or oldest first."""
        query = select(CommentRow).where(CommentRow.site == site, CommentRow.needs_review.is_(True))
        if label is not None:
            query = query.where(
                exists().where(CommentFlagRow.comment_id == CommentRow.id, CommentFlagRow.label == label)
            )
        if sort == "priority":
            if after is not None:
                query = query.where(
                    or_(
                        CommentRow.priority < after.priority,
                        and_(CommentRow.priority == after.priority, CommentRow.id > after.id),
                    )
                )
            query = query.order_by(CommentRow.priority.desc(), CommentRow.id)
        else:
            if after is not None:
                query = query.where(
                    or_(
                        CommentRow.created_at > after.created_at,
                        and_(CommentRow.created_at == after.created_at, CommentRow.id > after.id),
                    )
                )
            query = query.order_by(CommentRow.created_at, CommentRow.id)
        return list(self.session.scalars(query.limit(limit)))

    def queue_depths(self) -> dict[str, int]:
        """Number of comments awaiting review, per site."""
        query = (
            select(CommentRow.site, func.count())
            .where(CommentRow.needs_review.is_(True))
            .group_by(CommentRow.site)
        )
        return {site: int(count) for site, count in self.session.execute(query)}

    # ---- claims ---------------------------------------------------------------------------

    def claims(self, comment_ids: Sequence[int]) -> dict[int, ClaimRow]:
        """The claims on these comments (expired ones included)."""
        if not comment_ids:
            return {}
        query = select(ClaimRow).where(ClaimRow.comment_id.in_(comment_ids))
        return {row.comment_id: row for row in self.session.scalars(query)}

    def get_claim(self, comment_id: int) -> ClaimRow | None:
        """The claim on a comment (possibly expired), or None."""
        return self.session.get(ClaimRow, comment_id)

    def put_claim(self, comment_id: int, key_id: str, now: datetime, ttl: timedelta) -> ClaimRow:
        """Create or replace the claim on a comment (the caller holds the comment's row lock)."""
        row = self.session.get(ClaimRow, comment_id)
        if row is None:
            row = ClaimRow(comment_id=comment_id, key_id=key_id, claimed_at=now, expires_at=now + ttl)
            self.session.add(row)
        else:
            if row.key_id != key_id:
                row.claimed_at = now
            row.key_id = key_id
            row.expires_at = now + ttl
        self.session.flush()
        return row

    def delete_claim(self, comment_id: int) -> None:
        """Release the claim on a comment, if any."""
        self.session.execute(delete(ClaimRow).where(ClaimRow.comment_id == comment_id))

    # ---- feedback -------------------------------------------------------------------------

    def add_feedback(self, row: FeedbackRow) -> None:
        """Store corrected labels."""
        self.session.add(row)
        self.session.flush()

    def feedback(self, site: str | None = None, limit: int = 1000) -> list[FeedbackRow]:
        """Corrected labels, oldest first."""
        query = select(FeedbackRow).order_by(FeedbackRow.id).limit(limit)
        if site is not None:
            query = query.where(FeedbackRow.site == site)
        return list(self.session.scalars(query))

    def judgment_events(self, site: str | None = None) -> list[tuple[CommentEventRow, CommentRow]]:
        """History rows that make or unmake a moderator's judgment, with their comment, in order.

        Decisions, and what invalidates them: a re-scoring (new text) or an undo.
        """
        query = (
            select(CommentEventRow, CommentRow)
            .join(CommentRow, CommentRow.id == CommentEventRow.comment_id)
            .where(CommentEventRow.action.in_((*MODERATOR_ACTIONS, "rescored", "undone")))
            .order_by(CommentEventRow.comment_id, CommentEventRow.id)
        )
        if site is not None:
            query = query.where(CommentRow.site == site)
        return [(event, comment) for event, comment in self.session.execute(query)]

    def all_feedback(self, site: str | None = None) -> list[FeedbackRow]:
        """Every stored label correction, oldest first."""
        query = select(FeedbackRow).order_by(FeedbackRow.id)
        if site is not None:
            query = query.where(FeedbackRow.site == site)
        return list(self.session.scalars(query))

    def add_suggestion(self, row: ScoreSuggestionRow) -> None:
        """Store scores suggested for a text."""
        self.session.add(row)
        self.session.flush()

    def suggestions(self, site: str | None = None) -> list[ScoreSuggestionRow]:
        """Every suggestion, oldest first."""
        query = select(ScoreSuggestionRow).order_by(ScoreSuggestionRow.id)
        if site is not None:
            query = query.where(ScoreSuggestionRow.site == site)
        return list(self.session.scalars(query))

    def count_feedback_since(self, since: datetime | None) -> int:
        """Moderator decisions and score suggestions made after `since` (all when None)."""
        decisions = select(func.count()).where(CommentEventRow.action.in_(MODERATOR_ACTIONS))
        suggested = select(func.count()).select_from(ScoreSuggestionRow)
        if since is not None:
            decisions = decisions.where(CommentEventRow.created_at > since)
            suggested = suggested.where(ScoreSuggestionRow.created_at > since)
        return int(self.session.scalar(decisions) or 0) + int(self.session.scalar(suggested) or 0)

    def newest_feedback_at(self) -> datetime | None:
        """The time of the newest moderator decision or suggestion."""
        decided = self.session.scalar(
            select(func.max(CommentEventRow.created_at)).where(CommentEventRow.action.in_(MODERATOR_ACTIONS))
        )
        suggested = self.session.scalar(select(func.max(ScoreSuggestionRow.created_at)))
        times = [t for t in (decided, suggested) if t is not None]
        return max(times) if times else None

    def last_retrain(self) -> RetrainRunRow | None:
        """The latest recorded retraining run."""
        query = select(RetrainRunRow).order_by(RetrainRunRow.id.desc()).limit(1)
        return self.session.scalars(query).one_or_none()

    def add_retrain(self, row: RetrainRunRow) -> None:
        """Record a retraining run."""
        self.session.add(row)
        self.session.flush()

    # ---- site policies --------------------------------------------------------------------

    def get_policy(self, site: str) -> SitePolicyRow | None:
        """A site's stored policy, or None (the default applies)."""
        return self.session.get(SitePolicyRow, site)

    def put_policy(self, site: str, policy: dict[str, Any], by: str, now: datetime) -> SitePolicyRow:
        """Create or replace a site's policy."""
        row = self.session.get(SitePolicyRow, site, with_for_update=True)
        if row is None:
            row = SitePolicyRow(site=site, policy=policy, updated_by=by, updated_at=now)
            self.session.add(row)
        else:
            row.policy, row.updated_by, row.updated_at = policy, by, now
        self.session.flush()
        return row

    # ---- webhooks and the outbox ----------------------------------------------------------

    def get_webhook(self, site: str) -> WebhookRow | None:
        """A site's webhook, or None."""
        return self.session.get(WebhookRow, site)

    def put_webhook(self, site: str, url: str, secret: str, now: datetime) -> WebhookRow:
        """Create or replace a site's webhook."""
        row = self.session.get(WebhookRow, site, with_for_update=True)
        if row is None:
            row = WebhookRow(site=site, url=url, secret=secret, created_at=now, updated_at=now)
            self.session.add(row)
        else:
            row.url, row.secret, row.updated_at = url, secret, now
        self.session.flush()
        return row

    def delete_webhook(self, site: str) -> bool:
        """Remove a site's webhook; False if it had none."""
        result = self.session.execute(delete(WebhookRow).where(WebhookRow.site == site))
        return bool(getattr(result, "rowcount", 0))

    def enqueue(self, row: OutboxRow) -> None:
        """Add a delivery to the outbox (in the caller's transaction)."""
        self.session.add(row)
        self.session.flush()

    def lease_due(self, now: datetime, limit: int, lease: timedelta) -> list[OutboxRow]:
        """Pending deliveries that are due, pushed `lease` into the future so no other worker takes them.

        SKIP LOCKED lets several processes lease disjoint batches at the same time on PostgreSQL.
        """
        query = (
            select(OutboxRow)
            .where(OutboxRow.state == "pending", OutboxRow.next_attempt_at <= now)
            .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = list(self.session.scalars(query))
        for row in rows:
            row.next_attempt_at = now + lease
        self.session.flush()
        return rows

    def record_delivery(
        self,
        outbox_id: int,
        *,
        now: datetime,
        delivered: bool,
        status: int | None,
        error: str | None,
        next_attempt_at: datetime | None,
    ) -> None:
        """Count one attempt; `next_attempt_at` None on a failure means give up."""
        values: dict[str, Any] = {
            "attempts": OutboxRow.attempts + 1,
            "last_status": status,
            "last_error": error,
        }
        if delivered:
            values.update(state="delivered", delivered_at=now)
        elif next_attempt_at is None:
            values.update(state="failed")
        else:
            values.update(next_attempt_at=next_attempt_at)
        self.session.execute(update(OutboxRow).where(OutboxRow.id == outbox_id).values(**values))

    def deliveries(self, site: str, limit: int, state: str | None = None) -> list[OutboxRow]:
        """A site's deliveries, newest first."""
        query = select(OutboxRow).where(OutboxRow.site == site)
        if state is not None:
            query = query.where(OutboxRow.state == state)
        return list(self.session.scalars(query.order_by(OutboxRow.id.desc()).limit(limit)))

    # ---- API keys -------------------------------------------------------------------------

    def add_key(self, row: ApiKeyRow) -> None:
        """Store a new key (its hash)."""
        self.session.add(row)
        self.session.flush()

    def key_by_hash(self, key_hash: str) -> ApiKeyRow | None:
        """The key with this hash, revoked or not."""
        return self.session.scalars(select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash)).one_or_none()

    def api_keys(self) -> list[ApiKeyRow]:
        """All keys, oldest first."""
        return list(self.session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)))

    def get_key(self, key_id: str) -> ApiKeyRow | None:
        """A key by id."""
        return self.session.get(ApiKeyRow, key_id)

    # ---- the web UI: undo, review context and dashboard figures ----------------------------

    def undelivered(self, comment_id: int, created_at: datetime) -> list[OutboxRow]:
        """The pending deliveries a decision wrote for a comment at `created_at`, locked."""
        query = (
            select(OutboxRow)
            .where(
                OutboxRow.comment_id == comment_id,
                OutboxRow.created_at == created_at,
                OutboxRow.state == "pending",
            )
            .with_for_update()
        )
        return list(self.session.scalars(query))

    def cancel_delivery(self, outbox_id: int, reason: str) -> None:
        """Stop a delivery that must not be sent; it stays listed as failed with `reason`."""
        self.session.execute(
            update(OutboxRow).where(OutboxRow.id == outbox_id).values(state="failed", last_error=reason)
        )

    def comment_deliveries(self, comment_id: int, limit: int = 100) -> list[OutboxRow]:
        """A comment's webhook deliveries, newest first."""
        query = select(OutboxRow).where(OutboxRow.comment_id == comment_id).order_by(OutboxRow.id.desc())
        return list(self.session.scalars(query.limit(limit)))

    def delete_feedback(self, comment_id: int, key_id: str, created_at: datetime) -> None:
        """Forget the labels a decision stored (the decision was undone)."""
        self.session.execute(
            delete(FeedbackRow).where(
                FeedbackRow.comment_id == comment_id,
                FeedbackRow.key_id == key_id,
                FeedbackRow.created_at == created_at,
            )
        )

    def author_counts(self, site: str, authors: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Per author on a site: (rejected comments, all comments)."""
        if not authors:
            return {}
        rejected = func.sum(case((CommentRow.status == "rejected", 1), else_=0))
        query = (
            select(CommentRow.author, rejected, func.count())
            .where(CommentRow.site == site, CommentRow.author.in_(set(authors)))
            .group_by(CommentRow.author)
        )
        return {str(author): (int(r or 0), int(n)) for author, r, n in self.session.execute(query)}

    def sites(self) -> list[str]:
        """Every site with comments, a policy or a webhook, sorted."""
        query = union(select(CommentRow.site).distinct(), select(SitePolicyRow.site), select(WebhookRow.site))
        return sorted(str(site) for site in self.session.scalars(query))

    def keys_by_id(self, key_ids: Sequence[str]) -> dict[str, ApiKeyRow]:
        """The keys with these ids."""
        if not key_ids:
            return {}
        query = select(ApiKeyRow).where(ApiKeyRow.id.in_(set(key_ids)))
        return {row.id: row for row in self.session.scalars(query)}

    def _day(self, column: Any) -> ColumnElement[str]:
        """A UTC timestamp column as 'YYYY-MM-DD'."""
        if self.session.get_bind().dialect.name == "postgresql":
            return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
        return func.strftime("%Y-%m-%d", column)

    def decisions_per_day(self, since: datetime, site: str | None = None) -> list[tuple[str, str, str, int]]:
        """(day, action, decision, count) of decisions since `since` (all sites unless `site`)."""
        day = self._day(CommentEventRow.created_at)
        query = (
            select(day, CommentEventRow.action, CommentEventRow.decision, func.count())
            .where(
                CommentEventRow.created_at >= since,
                CommentEventRow.action.in_(MODERATOR_ACTIONS + AUTOMATIC_ACTIONS + ("undone",)),
            )
            .group_by(day, CommentEventRow.action, CommentEventRow.decision)
        )
        if site is not None:
            query = query.join(CommentRow, CommentRow.id == CommentEventRow.comment_id).where(
                CommentRow.site == site
            )
        return [(str(d), str(a), str(dec), int(n)) for d, a, dec, n in self.session.execute(query)]

    def flag_counts(self, since: datetime, site: str | None = None) -> tuple[int, dict[str, int]]:
        """Comments submitted since `since`, and how many of them each label flagged."""
        scope = [CommentRow.created_at >= since] + ([CommentRow.site == site] if site is not None else [])
        total = self.session.scalar(select(func.count()).select_from(CommentRow).where(*scope)) or 0
        query = (
            select(CommentFlagRow.label, func.count())
            .join(CommentRow, CommentRow.id == CommentFlagRow.comment_id)
            .where(*scope)
            .group_by(CommentFlagRow.label)
        )
        return int(total), {str(label): int(n) for label, n in self.session.execute(query)}

    def reviewed(
        self, since: datetime, site: str | None = None
    ) -> list[tuple[str, list[str], list[str] | None]]:
        """Comments a moderator decided since `since`: (decision, flagged labels, corrected labels or None)."""
        scope = [CommentRow.reviewed_at >= since] + ([CommentRow.site == site] if site is not None else [])
        decided = select(CommentRow.id).where(*scope)
        labels: dict[int, list[str]] = {}
        for comment_id, corrected in self.session.execute(
            select(FeedbackRow.comment_id, FeedbackRow.labels)
            .where(FeedbackRow.comment_id.in_(decided))
            .order_by(FeedbackRow.id)
        ):
            labels[comment_id] = list(corrected)  # the latest correction wins
        query = select(CommentRow.id, CommentRow.decision, CommentRow.flagged).where(*scope)
        return [
            (str(decision), list(flagged), labels.get(comment_id))
            for comment_id, decision, flagged in self.session.execute(query)
        ]
