"""Turning scores into a decision (approve / review / reject)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Decision(StrEnum):
    """What happens to a comment."""

    approve = "approve"
    review = "review"
    reject = "reject"


@dataclass(frozen=True)
class Policy:
    """Per-label reject thresholds; review happens at the model's own (flag) thresholds."""

    reject: Mapping[str, float] = field(default_factory=dict)
    default_reject: float = 0.97

    def decide(self, scores: Mapping[str, float], flagged: list[str]) -> Decision:
        """Reject when a flagged label reaches its reject threshold, review when anything is flagged."""
        if not flagged:
            return Decision.approve
        if any(scores[label] >= self.reject.get(label, self.default_reject) for label in flagged):
            return Decision.reject
        return Decision.review
