"""Character spans that explain a flagged label.

Occlusion works with any scorer: remove one word at a time, rescore, and keep the words
whose removal lowers the label's score the most. Adjacent kept words merge into a span. A backend
that can tell each word's effect without rescoring (the linear model: its logit is a sum over
n-gram features) gives the same selection those drops directly (`spans_from_drops`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

WORD_RE = re.compile(r"\w[\w'’*-]*", re.UNICODE)
_GAP_RE = re.compile(r"[\s\W]*", re.UNICODE)


@dataclass(frozen=True)
class Span:
    """A character range [start, end) of the text that drove `label`'s score."""

    label: str
    start: int
    end: int
    score: float


ScoreFn = Callable[[Sequence[str]], NDArray[np.float64]]


def text_words(text: str, max_words: int = 200) -> list[tuple[int, int]]:
    """Character ranges of the words spans are made of (the first `max_words`)."""
    return [(m.start(), m.end()) for m in WORD_RE.finditer(text)][:max_words]


def occlusion_spans(
    score_fn: ScoreFn,
    text: str,
    base_scores: NDArray[np.float64],
    label_indices: Sequence[int],
    labels: Sequence[str],
    *,
    max_words: int = 200,
    min_drop: float = 0.2,
    relative: float = 0.3,
) -> list[Span]:
    """Spans for the labels at `label_indices`; `base_scores` are the text's full scores.

    Each word is removed in turn and the text rescored; see `spans_from_drops` for which words
    are kept.
    """
    if not label_indices:
        return []
    words = text_words(text, max_words)
    if len(words) < 2:
        # With a single word, that word is the whole evidence.
        return [
            Span(labels[j], words[0][0], words[0][1], float(base_scores[j])) for j in label_indices if words
        ]
    variants = [text[:s] + " " + text[e:] for s, e in words]
    drops = logit(np.asarray(base_scores, dtype=np.float64))[None, :] - logit(score_fn(variants))
    return spans_from_drops(text, words, drops, label_indices, labels, min_drop=min_drop, relative=relative)


def spans_from_drops(
    text: str,
    words: list[tuple[int, int]],
    drops: NDArray[np.float64],
    label_indices: Sequence[int],
    labels: Sequence[str],
    *,
    min_drop: float = 0.2,
    relative: float = 0.3,
) -> list[Span]:
    """Spans from each word's effect on each label's log-odds, `drops` (n_words, n_labels).

    A word is kept when removing it lowers the label's log-odds by at least `min_drop` and by at
    least `relative` times the largest drop; log-odds keep saturated scores (0.999) informative.
    A span's score is its drop relative to the largest one (1.0 = the most important words).
    """
    spans: list[Span] = []
    for j in label_indices:
        column = drops[:, j]
        top = float(column.max()) if len(column) else 0.0
        cut = max(min_drop, relative * top)
        keep = [i for i, d in enumerate(column) if d >= cut]
        spans.extend(_merge(text, words, keep, column / top if top > 0 else column, labels[j]))
    return spans


def token_spans(
    text: str,
    offsets: NDArray[np.int64],
    probs: NDArray[np.float64],
    threshold: float,
    label: str,
    *,
    max_words: int = 200,
) -> list[Span]:
    """Spans from a token-level head: the words with a sub-word token at or above `threshold`.

    `offsets` (T, 2) are the tokens' character ranges in `text` (special tokens (0, 0)), `probs`
    (T,) their probabilities for `label`. Whole words are kept (annotators mark words), adjacent
    kept words merge, and a span's score is the highest token probability inside it.
    """
    words = text_words(text, max_words)
    if not words or len(offsets) == 0:
        return []
    starts = np.array([s for s, _ in words])
    ends = np.array([e for _, e in words])
    word_score = np.zeros(len(words), dtype=np.float64)
    for (start, end), p in zip(offsets.tolist(), probs.tolist(), strict=True):
        if end <= start:
            continue
        hit = (starts < end) & (ends > start)
        if hit.any():
            word_score[hit] = np.maximum(word_score[hit], p)
    keep = [i for i in range(len(words)) if word_score[i] >= threshold]
    return _merge(text, words, keep, word_score, label)


def logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    """Log-odds of probabilities, clipped away from 0 and 1."""
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.asarray(np.log(p) - np.log1p(-p), dtype=np.float64)


def _merge(
    text: str, words: list[tuple[int, int]], keep: list[int], drops: NDArray[np.float64], label: str
) -> list[Span]:
    merged: list[Span] = []
    for i in keep:
        start, end = words[i]
        score = float(min(1.0, max(0.0, drops[i])))
        if merged and _GAP_RE.fullmatch(text[merged[-1].end : start]) is not None and i - 1 in keep:
            last = merged.pop()
            merged.append(Span(label, last.start, end, max(last.score, score)))
        else:
            merged.append(Span(label, start, end, score))
    return merged
