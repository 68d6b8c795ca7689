"""Turning scores and word rules into a decision: pure logic, no I/O.

A site's policy has two moderation modes:

- **pre** (pre-moderation, the default): a comment is published only once approved. Flagged
  comments (and comments the model could not score) are held as `pending` in the review queue
  until a moderator decides.
- **post** (post-moderation): comments are published first. A flagged comment is `approved`
  (visible) but still enters the review queue, where a moderator may reject it afterwards.

In both modes a score at or above a label's reject threshold, or a banned word, rejects the
comment outright, and a comment the model could not score is held `pending`, never approved.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property


class Decision(StrEnum):
    """What happens to a comment."""

    approve = "approve"
    review = "review"
    reject = "reject"


class Mode(StrEnum):
    """Pre-moderation holds flagged comments; post-moderation publishes them and reviews afterwards."""

    pre = "pre"
    post = "post"


class Status(StrEnum):
    """Whether a stored comment is visible on the site."""

    approved = "approved"
    pending = "pending"
    rejected = "rejected"


DEFAULT_REJECT = 0.97


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def compile_terms(terms: Sequence[str]) -> re.Pattern[str] | None:
    """A regex matching any term as whole words, case-insensitively (Unicode casefolding)."""
    parts = []
    for term in terms:
        words = _normalise(term).split()
        if words:
            parts.append(r"\s+".join(re.escape(w) for w in words))
    if not parts:
        return None
    # Longest first, so "fake news" wins over "fake" when both are listed.
    parts.sort(key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.UNICODE)


@dataclass(frozen=True)
class Outcome:
    """A decision with the status and queue membership it implies, and its reasons."""

    decision: Decision
    status: Status
    needs_review: bool
    flagged: list[str]
    reasons: list[str]
    priority: float


@dataclass(frozen=True)
class Policy:
    """A site's thresholds, mode and word lists.

    `review[label]` is the score at which a label is flagged (default: the model's own threshold);
    `reject[label]` the score at which the comment is rejected (default: `default_reject`).
    """

    mode: Mode = Mode.pre
    review: Mapping[str, float] = field(default_factory=dict)
    reject: Mapping[str, float] = field(default_factory=dict)
    default_reject: float = DEFAULT_REJECT
    banned_words: tuple[str, ...] = ()
    suspect_words: tuple[str, ...] = ()

    @cached_property
    def _banned(self) -> re.Pattern[str] | None:
        return compile_terms(self.banned_words)

    @cached_property
    def _suspect(self) -> re.Pattern[str] | None:
        return compile_terms(self.suspect_words)

    def reject_threshold(self, label: str) -> float:
        """Score at which `label` rejects a comment."""
        return self.reject.get(label, self.default_reject)

    def flagged(self, scores: Mapping[str, float], model_flagged: Sequence[str]) -> list[str]:
        """Labels at or above their review threshold, in the scores' order."""
        return [
            label
            for label, score in scores.items()
            if (score >= self.review[label] if label in self.review else label in model_flagged)
        ]

    def decide(self, scores: Mapping[str, float], flagged: Sequence[str]) -> Decision:
        """Reject when a label reaches its reject threshold, review when anything is flagged."""
        return self.evaluate("", scores, flagged).decision

    def word_matches(self, text: str) -> tuple[list[str], list[str]]:
        """The banned and the suspect terms found in `text` (normalised, each once)."""
        normalised = _normalise(text) if (self._banned or self._suspect) else ""
        found: list[list[str]] = []
        for pattern in (self._banned, self._suspect):
            hits = [] if pattern is None else pattern.findall(normalised)
            found.append(sorted({" ".join(hit.split()) for hit in hits}))
        return found[0], found[1]

    def evaluate(
        self,
        text: str,
        scores: Mapping[str, float] | None,
        model_flagged: Sequence[str],
        *,
        unscored_reason: str = "model_unavailable",
    ) -> Outcome:
        """Decide on one comment; `scores` is None when the model could not score it."""
        reasons: list[str] = []
        banned, suspect = self.word_matches(text)
        reasons += [f"banned_word:{term}" for term in banned]
        reasons += [f"suspect_word:{term}" for term in suspect]
        flagged = self.flagged(scores, model_flagged) if scores is not None else []
        priority = max((scores[label] for label in flagged), default=0.0) if scores else 0.0
        rejecting = [
            label for label in flagged if scores is not None and scores[label] >= self.reject_threshold(label)
        ]
        reasons += [f"score:{label}>={self.reject_threshold(label):g}" for label in rejecting]
        reasons += [f"flagged:{label}" for label in flagged if label not in rejecting]
        if scores is None:
            reasons.append(unscored_reason)

        if banned or rejecting:
            return Outcome(Decision.reject, Status.rejected, False, flagged, reasons, priority)
        if scores is None:
            # Whatever the mode, a comment nobody scored is never published automatically.
            return Outcome(Decision.review, Status.pending, True, flagged, reasons, priority)
        if flagged or suspect:
            status = Status.approved if self.mode is Mode.post else Status.pending
            return Outcome(Decision.review, status, True, flagged, reasons, priority)
        return Outcome(Decision.approve, Status.approved, False, flagged, reasons, priority)
