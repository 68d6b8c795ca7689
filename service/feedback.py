"""Moderators' judgments and suggested scores as labelled examples for the next model (no HTTP here).

Three sources, each example with its site, time and the moderator (key) who gave it:

- a moderator's decision with corrected `labels`: every label is known, 1 for the labels given
  and 0 for the others;
- a decision without labels judges only what the model had flagged: approve says those labels
  were wrong (0), reject that they were right (1); the other labels stay unknown;
- scores suggested through the Perspective-compatible `comments:suggestscore`: each suggested
  value for its label (a soft target; values of 0.5 and above count as positive).

A decision counts until a later one replaces it (override), it is undone, or the comment's text
changes (the decision was about the old text). `FeedbackExample.to_json` is the record format of
the feedback corpus that `training.feedback` reads; deduplication and the split into training
and held-out rows happen there, next to the corpora they are checked against.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from models.labels import LABEL_NAMES
from service.auth import Principal
from service.storage.db import Database
from service.storage.repository import MODERATOR_ACTIONS
from service.storage.tables import CommentEventRow, CommentRow, FeedbackRow, ScoreSuggestionRow

Source = Literal["moderator", "suggestion"]


@dataclass(frozen=True)
class FeedbackExample:
    """One labelled text: `labels` maps the labels it judges to a value in 0..1 (others unknown)."""

    id: str
    source: Source
    site: str | None
    created_at: datetime
    moderator: str
    text: str
    labels: dict[str, float]
    decision: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The record written to the feedback corpus (JSON Lines)."""
        return {
            "id": self.id,
            "source": self.source,
            "site": self.site,
            "created_at": self.created_at.isoformat(),
            "moderator": self.moderator,
            "decision": self.decision,
            "labels": self.labels,
            "text": self.text,
        }


def decision_labels(decision: str, flagged: list[str], corrected: list[str] | None) -> dict[str, float]:
    """What a moderator's decision says about each label (see the module docstring)."""
    if corrected is not None:
        return {label: 1.0 if label in corrected else 0.0 for label in LABEL_NAMES}
    value = 1.0 if decision == "reject" else 0.0
    return {label: value for label in LABEL_NAMES if label in flagged}


def _standing_judgments(
    events: list[tuple[CommentEventRow, CommentRow]],
) -> list[tuple[CommentEventRow, CommentRow]]:
    """Per comment, its latest moderator decision, unless re-scoring or an undo came after it."""
    standing: dict[int, tuple[CommentEventRow, CommentRow] | None] = {}
    for event, comment in events:  # ordered by comment, then history order
        standing[comment.id] = (event, comment) if event.action in MODERATOR_ACTIONS else None
    return [judgment for judgment in standing.values() if judgment is not None]


def moderator_examples(
    events: list[tuple[CommentEventRow, CommentRow]], corrections: list[FeedbackRow]
) -> list[FeedbackExample]:
    """Examples from the standing decisions; a decision's corrected labels are those stored with it."""
    by_decision = {(row.comment_id, row.created_at): list(row.labels) for row in corrections}
    examples = []
    for event, comment in _standing_judgments(events):
        corrected = by_decision.get((comment.id, event.created_at))
        labels = decision_labels(event.decision or "", list(comment.flagged), corrected)
        if not labels:
            continue  # approved or rejected with nothing flagged and no labels: says nothing per label
        examples.append(
            FeedbackExample(
                id=f"decision-{comment.id}",
                source="moderator",
                site=comment.site,
                created_at=event.created_at,
                moderator=event.actor,
                text=comment.text,
                labels=labels,
                decision=event.decision,
            )
        )
    return examples


def suggestion_example(row: ScoreSuggestionRow) -> FeedbackExample:
    """The example of one stored suggestion."""
    return FeedbackExample(
        id=f"suggestion-{row.id}",
        source="suggestion",
        site=row.site,
        created_at=row.created_at,
        moderator=f"key:{row.key_id}",
        text=row.text,
        labels={label: float(value) for label, value in row.labels.items()},
    )


def collect_feedback(database: Database, site: str | None = None) -> list[FeedbackExample]:
    """Every labelled example the service holds (all sites unless `site`), oldest first."""
    with database.transaction() as repo:
        examples = moderator_examples(repo.judgment_events(site), repo.all_feedback(site))
        examples += [suggestion_example(row) for row in repo.suggestions(site)]
    return sorted(examples, key=lambda e: (e.created_at, e.id))


def store_suggestion(
    database: Database,
    principal: Principal,
    *,
    text: str,
    labels: Mapping[str, float],
    attributes: Mapping[str, float],
    community_id: str | None,
    now: datetime,
) -> int:
    """Keep scores a client suggested for a text; returns the stored row's id.

    The site is the key's site, else the Perspective communityId (which is kept as well).
    """
    row = ScoreSuggestionRow(
        site=principal.site or community_id,
        key_id=principal.key_id,
        text=text,
        labels=dict(labels),
        attributes=dict(attributes),
        community_id=community_id,
        created_at=now,
    )
    with database.transaction() as repo:
        repo.add_suggestion(row)
    return row.id


def newest_feedback_at(database: Database) -> datetime | None:
    """When the newest moderator decision or suggestion was made (None: there is none)."""
    with database.transaction() as repo:
        return repo.newest_feedback_at()


def count_new_feedback(database: Database, since: datetime | None) -> int:
    """Moderator decisions and suggestions made after `since` (all of them when None)."""
    with database.transaction() as repo:
        return repo.count_feedback_since(since)
