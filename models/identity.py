"""Identity mentions, and the stricter cuts an artifact may apply to comments that make them.

A model trained on toxic-heavy corpora learns that naming a group ("gay", "muslim", "black") is
itself a sign of toxicity, and flags neutral comments about identities. Training can choose, on
validation, a higher cut for the comments that name one (at most a set share of the non-toxic ones
flagged) while every other comment keeps the label's F1 cut: a per-group threshold, as in
false-positive-rate post-processing (Hardt et al., 2016; Fairlearn's ThresholdOptimizer). The
group is read off the text itself, so the service needs nothing but the comment.

The terms are those of identity-bias audits (Dixon et al., 2018). An artifact stores the list it
was fitted with, so a later change to this default never moves a stored model's cuts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

# The identity terms of the conversationai madlibs generator (bias_madlibs_data/
# adjectives_people.txt as used for the 77k set; the later animal-rights additions do not occur).
IDENTITY_TERMS: tuple[str, ...] = (
    "lesbian", "gay", "bisexual", "transgender", "trans", "queer", "lgbt", "lgbtq", "homosexual",
    "straight", "heterosexual", "male", "female", "nonbinary", "african", "african american", "black",
    "white", "european", "hispanic", "latino", "latina", "latinx", "mexican", "canadian", "american",
    "asian", "indian", "middle eastern", "chinese", "japanese", "christian", "muslim", "jewish",
    "buddhist", "catholic", "protestant", "sikh", "taoist", "old", "older", "young", "younger",
    "teenage", "millenial", "middle aged", "elderly", "blind", "deaf", "paralyzed",
)  # fmt: skip


@lru_cache(maxsize=8)
def identity_pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    """One case-insensitive, whole-word pattern for `terms` (longer, multi-word terms first)."""
    if not terms:
        raise ValueError("identity terms must not be empty")
    # Multi-word and longer terms first, so "african american" wins over "african".
    ordered = sorted(terms, key=lambda t: (-len(t.split()), -len(t), t))
    return re.compile(r"\b(" + "|".join(re.escape(t) for t in ordered) + r")\b", re.IGNORECASE)


def find_identity(text: str, pattern: re.Pattern[str]) -> str | None:
    """The last identity term `text` mentions, lower-cased (madlibs templates end with the identity slot)."""
    matches = pattern.findall(text)
    return str(matches[-1]).lower() if matches else None


def mentions_identity(texts: Sequence[str], terms: tuple[str, ...] = IDENTITY_TERMS) -> NDArray[np.bool_]:
    """Boolean per text: does it name any of `terms`?"""
    pattern = identity_pattern(tuple(terms))
    return np.array([pattern.search(t) is not None for t in texts], dtype=bool)


@dataclass(frozen=True)
class IdentityCut:
    """Per-label cuts for comments that mention an identity term; other comments keep the label's cut."""

    terms: tuple[str, ...]
    thresholds: Mapping[str, float]

    def to_json(self) -> dict[str, Any]:
        """The meta.json form."""
        return {"terms": list(self.terms), "thresholds": {k: float(v) for k, v in self.thresholds.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IdentityCut:
        """Parse the meta.json form; raises ValueError when malformed."""
        terms = tuple(str(t) for t in data["terms"])
        if not terms or any(not t.strip() for t in terms):
            raise ValueError("identity_cut.terms must be non-empty strings")
        thresholds = {str(k): float(v) for k, v in dict(data["thresholds"]).items()}
        bad = [k for k, v in thresholds.items() if not 0.0 <= v <= 1.0]
        if bad:
            raise ValueError(f"identity_cut thresholds outside 0..1 for {', '.join(bad)}")
        return cls(terms=terms, thresholds=thresholds)
