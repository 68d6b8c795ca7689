"""Comment submission: score, decide by the site's policy, store, report (no HTTP here).

Scoring runs outside any transaction (it is the slow part); the write that follows re-reads
the row under a lock, so concurrent submissions of one (site, id) store it once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from models.errors import InputDataError
from models.scoring import Model
from service.auth import Principal
from service.batching import Batcher
from service.errors import CommentNotFoundError, PayloadTooLargeError
from service.policy import Outcome, Policy
from service.schemas import CommentCreate, PolicyDocument
from service.storage.db import Database
from service.storage.repository import Repository
from service.storage.tables import CommentEventRow, CommentRow
from service.webhooks import enqueue_decision

logger = logging.getLogger(__name__)

SYSTEM = "system"


@dataclass(frozen=True)
class Scored:
    """What the model said about one text; `scores` None when it could not score."""

    scores: dict[str, float] | None
    flagged: list[str]
    spans: list[dict[str, Any]]
    model_id: str | None
    error: str | None = None


@dataclass(frozen=True)
class Submission:
    """A stored comment, and whether this request created or re-scored it."""

    comment: CommentRow
    created: bool
    changed: bool


def check_text(text: str, limit: int, name: str = "text") -> None:
    """422 for an empty text, 413 for one over `limit` characters."""
    if not text.strip():
        raise InputDataError(f"{name} is empty")
    if len(text) > limit:
        raise PayloadTooLargeError(f"{name} has {len(text)} characters; the limit is {limit}")


def load_policy(repo: Repository, site: str) -> Policy:
    """The site's policy, or the default one."""
    row = repo.get_policy(site)
    return PolicyDocument.model_validate(row.policy).to_policy() if row else Policy()


def score(model: Model | None, unavailable: str | None, text: str, batcher: Batcher | None = None) -> Scored:
    """Score one text (through `batcher` when given); never raises: a failure becomes Scored(None, error=...)."""
    if model is None:
        return Scored(None, [], [], None, f"model_unavailable: {unavailable or 'no model is loaded'}")
    try:
        prediction = (batcher.predict(model, [text]) if batcher is not None else model.predict([text]))[0]
    except Exception as exc:
        # The exception's message could quote the text: log only its type above DEBUG.
        logger.error("model %s failed to score a comment: %s", model.id, type(exc).__name__)
        logger.debug("scoring failure", exc_info=exc)
        return Scored(None, [], [], model.id, f"model_error: {type(exc).__name__}")
    return Scored(prediction.scores, prediction.flagged, [asdict(s) for s in prediction.spans], model.id)


def _apply(row: CommentRow, scored: Scored, outcome: Outcome) -> None:
    row.status = outcome.status.value
    row.decision = outcome.decision.value
    row.scores = scored.scores
    row.flagged = outcome.flagged
    row.spans = [s for s in scored.spans if s["label"] in outcome.flagged]
    row.reasons = outcome.reasons
    row.model_id = scored.model_id
    row.priority = outcome.priority
    row.needs_review = outcome.needs_review


def _write(
    repo: Repository, body: CommentCreate, scored: Scored, policy: Policy, actor: str, now: datetime
) -> Submission:
    row = repo.get_comment(body.site, body.id, lock=True)
    if row is not None and row.text == body.text:
        return Submission(row, created=False, changed=False)
    outcome = policy.evaluate(body.text, scored.scores, scored.flagged, unscored_reason=scored.error or "")
    created = row is None
    old_status = None if row is None else row.status
    if row is None:
        row = CommentRow(site=body.site, external_id=body.id, created_at=now)
    row.text, row.thread, row.author, row.meta = body.text, body.thread, body.author, body.metadata
    row.updated_at = now
    # A moderator's decision was about the old text; the new one is decided afresh.
    row.reviewed_by = row.reviewed_at = None
    _apply(row, scored, outcome)
    if created:
        repo.add_comment(row)
    else:
        repo.save_scores(row)
    repo.add_event(
        CommentEventRow(
            comment_id=row.id,
            created_at=now,
            actor=actor,
            action="submitted" if created else "rescored",
            old_status=old_status,
            new_status=row.status,
            decision=row.decision,
            reason="; ".join(outcome.reasons) if created else "; ".join(["text changed", *outcome.reasons]),
            override=False,
            model_id=scored.model_id,
        )
    )
    enqueue_decision(repo, row, source="auto", actor=SYSTEM, override=False, now=now)
    return Submission(row, created=created, changed=True)


def submit(
    database: Database,
    model: Model | None,
    unavailable: str | None,
    body: CommentCreate,
    principal: Principal,
    clock: Callable[[], datetime],
    batcher: Batcher | None = None,
) -> Submission:
    """Store a comment with its decision; a resubmission with the same text changes nothing."""
    with database.transaction() as repo:
        existing = repo.get_comment(body.site, body.id)
        if existing is not None and existing.text == body.text:
            return Submission(existing, created=False, changed=False)
        policy = load_policy(repo, body.site)
    scored = score(model, unavailable, body.text, batcher)
    for attempt in (1, 2):
        try:
            with database.transaction() as repo:
                result = _write(repo, body, scored, policy, principal.actor, clock())
        except IntegrityError:
            # A concurrent first submission of the same (site, id) won the insert: read it again.
            if attempt == 2:
                raise
            continue
        if result.changed:
            logger.info(
                "comment %s/%s %s: %s",
                body.site,
                body.id,
                "stored" if result.created else "re-scored",
                result.comment.decision,
            )
        return result
    raise AssertionError("unreachable")


def get_comment(repo: Repository, site: str, external_id: str, *, lock: bool = False) -> CommentRow:
    """The comment, or CommentNotFoundError."""
    row = repo.get_comment(site, external_id, lock=lock)
    if row is None:
        raise CommentNotFoundError(f"no comment {external_id!r} on site {site!r}")
    return row
