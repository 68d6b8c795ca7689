"""Comment-length windows of PAN's long Telegram posts, labelled from the gold narrative spans.

PAN 2024 posts are 115 words on average (up to 900); reader comments are one to three sentences.
A post-level label does not hold for every sentence of the post, so a window inherits it only where
the annotation supports it:

* a window of a CRITICAL post is a conspiracy negative (the post as a whole is not conspiratorial);
* a window of a CONSPIRACY post is a positive when it overlaps the narrative spans of at least
  `min_roles` roles, one of them the conspiring AGENT (who is behind it);
* other windows of CONSPIRACY posts are left out: unannotated text there is ambiguous.

Only training rows are windowed; validation and test keep whole posts, so PAN figures stay
comparable with the shared task (post-level).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.labels import LABEL_NAMES
from training.corpora import COLUMNS

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class WindowConfig:
    """How PAN posts are cut into comment-length windows."""

    max_words: int = 45
    max_windows_per_post: int = 4
    min_roles: int = 2
    min_post_words: int = 50  # shorter posts already are comment-length; they are not windowed


def _sentences(text: str) -> list[tuple[int, int]]:
    """Character ranges of the sentences of `text` (end exclusive)."""
    ranges, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.start() > start:
            ranges.append((start, match.start()))
        start = match.end()
    if start < len(text) and text[start:].strip():
        ranges.append((start, len(text)))
    return ranges


def _windows(text: str, max_words: int) -> list[tuple[int, int]]:
    """Consecutive sentences grouped into windows of at most `max_words` words (a longer sentence alone)."""
    out: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    words = 0
    for start, end in _sentences(text):
        n = len(text[start:end].split())
        if current is not None and words + n > max_words:
            out.append(current)
            current, words = None, 0
        current = (current[0], end) if current is not None else (start, end)
        words += n
    if current is not None:
        out.append(current)
    return out


def _roles_in(spans: list[tuple[str, int, int]], start: int, end: int) -> set[str]:
    return {role for role, s, e in spans if s < end and e > start}


def pan_windows(
    train: pd.DataFrame,
    roles: dict[str, list[tuple[str, int, int]]],
    config: WindowConfig | None = None,
    seed: int = 13,
) -> pd.DataFrame:
    """Window rows for the long PAN posts among `train` (same columns; ids `<post>#w<k>`).

    `roles` maps a CONSPIRACY post id to its (role, start, end) spans (`corpora.load_pan_roles`).
    """
    config = config or WindowConfig()
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    posts = train[(train["corpus"] == "pan2024") & train["conspiracy"].notna()]
    for _, post in posts.iterrows():
        text = str(post["text"])
        if len(text.split()) < config.min_post_words:
            continue
        positive = float(post["conspiracy"]) >= 0.5
        spans = roles.get(str(post["id"]), [])
        picked: list[tuple[int, int, float]] = []
        for start, end in _windows(text, config.max_words):
            if positive:
                found = _roles_in(spans, start, end)
                if "AGENT" not in found or len(found) < config.min_roles:
                    continue
                picked.append((start, end, 1.0))
            else:
                picked.append((start, end, 0.0))
        if len(picked) > config.max_windows_per_post:
            keep = rng.choice(len(picked), size=config.max_windows_per_post, replace=False)
            picked = [picked[i] for i in sorted(keep)]
        for k, (start, end, label) in enumerate(picked):
            row: dict[str, object] = {column: post[column] for column in COLUMNS if column in post.index}
            for name in LABEL_NAMES:
                row[name] = np.nan
                row[f"soft_{name}"] = np.nan
            row.update(
                id=f"{post['id']}#w{k}",
                text=text[start:end].strip(),
                conspiracy=label,
                spans=[],
            )
            for column in post.index:
                if column.startswith("weight_"):
                    row[column] = post[column]
            rows.append(row)
    return pd.DataFrame(rows, columns=train.columns) if rows else train.iloc[0:0].copy()
