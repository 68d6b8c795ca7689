"""Counterfactual identity-term augmentation (`moderation train --identity-swap`).

A classifier learns that "gay" or "muslim" predicts toxicity when the training comments that name
those groups are mostly attacks on them; it then flags "I am a gay person". Counterfactual data
augmentation (Garg et al., "Counterfactual Fairness in Text Classification through Robustness",
AIES 2019; Park et al., EMNLP 2018, for gender) adds, for every training comment with a toxicity
label that names an identity, a copy with each identity term replaced by another one, with the same
labels: the label then no longer depends on which group is named, and the terms
that mostly occur in attacks also occur in the neutral comments about other groups.

The terms are the single-word identity terms of the bias audit's list
(`models.identity.IDENTITY_TERMS`), as in Garg et al.; no bias_madlibs sentence is used.
Character spans are moved with the text. Only training rows are augmented, never validation or test.

A copy keeps only the labels that are about how a comment treats a group or a person
(`SWAP_LABELS`: toxicity, insult, identity_attack); its other labels are masked (weight 0). The
counterfactual is meant for the identity bias of those heads; for the others it is either not
known to hold (a misinformation label of "Indian health ministry reports ..." is not one of
"Sikh health ministry reports ...") or not wanted: without the mask, threat lost about 0.01
ROC-AUC in all three runs with the swap (training/EXPERIMENTS.md). With it, the rows that train
the threat, profanity, spam, misinformation and conspiracy heads are those of a run without the swap.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from models.identity import IDENTITY_TERMS
from models.labels import LABEL_NAMES

# Age words and "straight" / "trans" are too often not about people ("old news", "straight away").
_EXCLUDED = frozenset({"old", "older", "young", "younger", "straight", "trans"})
# The labels a swapped copy keeps; the rest are masked in the copy.
SWAP_LABELS: tuple[str, ...] = ("toxicity", "insult", "identity_attack")
SWAP_TERMS: tuple[str, ...] = tuple(t for t in IDENTITY_TERMS if " " not in t and t not in _EXCLUDED)
_PATTERN = re.compile(
    r"\b(" + "|".join(re.escape(t) for t in sorted(SWAP_TERMS, key=len, reverse=True)) + r")(s?)\b",
    re.IGNORECASE,
)


def _match_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def swap_identities(text: str, rng: np.random.Generator) -> tuple[str, list[tuple[int, int, int]]] | None:
    """`text` with each identity term replaced by another one (the same replacement for the same term).

    Returns the new text and the edits as (old start, old end, new length), or None when the text
    names no identity.
    """
    matches = list(_PATTERN.finditer(text))
    if not matches:
        return None
    chosen: dict[str, str] = {}
    parts: list[str] = []
    edits: list[tuple[int, int, int]] = []
    last = 0
    for m in matches:
        term = m.group(1).lower()
        if term not in chosen:
            others = [t for t in SWAP_TERMS if t != term and t not in chosen.values()]
            chosen[term] = str(rng.choice(others))
        new = _match_case(chosen[term], m.group(1)) + m.group(2)  # "muslims" -> "sikhs"
        parts.append(text[last : m.start()])
        parts.append(new)
        edits.append((m.start(), m.end(), len(new)))
        last = m.end()
    parts.append(text[last:])
    return "".join(parts), edits


def _move(position: int, edits: list[tuple[int, int, int]], *, end: bool) -> int:
    """Where a character boundary of the old text lands in the new one."""
    shift = 0
    for start, stop, length in edits:
        if position >= stop:
            shift += length - (stop - start)
        elif position > start:  # inside a replaced term: snap to the new term's edge
            return start + shift + (length if end else 0)
        else:
            break
    return position + shift


def _move_spans(spans: Any, edits: list[tuple[int, int, int]]) -> list[dict[str, Any]]:
    moved = []
    for span in list(spans) if spans is not None else []:
        start, stop = _move(int(span["start"]), edits, end=False), _move(int(span["end"]), edits, end=True)
        if stop > start:
            moved.append({**span, "start": start, "end": stop})
    return moved


def add_identity_swaps(train: pd.DataFrame, seed: int) -> pd.DataFrame:
    """`train` plus one counterfactual copy of each row with a toxicity label that names an identity.

    The copies keep the `SWAP_LABELS` only; their other labels are masked.

    That includes the neutral-register rows borrowed as toxicity negatives (CONSTRAINT's real news,
    TubeSpam): "Indian health ministry reports ..." becomes a neutral sentence about another group.
    """
    rng = np.random.default_rng([seed, 7919])
    rows = train[train["toxicity"].notna() & (train["weight_toxicity"] > 0)]
    copies: list[dict[str, Any]] = []
    for record in rows.to_dict("records"):
        swapped = swap_identities(str(record["text"]), rng)
        if swapped is None:
            continue
        text, edits = swapped
        copy: dict[str, Any] = {str(k): v for k, v in record.items()}
        copy["text"] = text
        copy["id"] = f"{record['id']}#swap"
        if "spans" in copy:
            copy["spans"] = _move_spans(record["spans"], edits)
        for label in LABEL_NAMES:
            if label not in SWAP_LABELS:
                copy[label] = np.nan
                copy[f"weight_{label}"] = 0.0
                if f"soft_{label}" in copy:
                    copy[f"soft_{label}"] = np.nan
        copies.append(copy)
    if not copies:
        return train
    return pd.concat([train, pd.DataFrame(copies, columns=train.columns)], ignore_index=True)
