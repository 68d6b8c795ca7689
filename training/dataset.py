"""The one training table: every corpus with its committed split, deduplicated, plus borrowed negatives.

`build_dataset` returns the columns of `training.corpora.COLUMNS`; `add_cross_corpus_negatives`
adds a `weight_<label>` column per label for training.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from models.errors import InputDataError
from models.labels import LABEL_NAMES
from training.corpora import (
    BIAS_MADLIBS,
    COLUMNS,
    CORPORA,
    DEFAULT_DATA_DIR,
    SOFT_COLUMNS,
    SPLITS,
    load_bias_madlibs,
    load_corpus,
)
from training.splits import SPLIT_PRIORITY, apply_splits

__all__ = [
    "DEFAULT_DATA_DIR",
    "NEGATIVE_SOURCES",
    "NEGATIVE_SOURCE_FILTERS",
    "WEIGHT_COLUMNS",
    "add_cross_corpus_negatives",
    "build_dataset",
    "dataset_hash",
    "deduplicate",
    "load_bias_madlibs",
    "native_mask",
    "negative_source_mask",
    "normalize_text",
    "text_hash",
]

logger = logging.getLogger(__name__)

WEIGHT_COLUMNS: tuple[str, ...] = tuple(f"weight_{label}" for label in LABEL_NAMES)

# Corpora whose rows are safe negatives for a label they do not judge. Misinformation and
# conspiracy are not borrowed from the conspiracy corpora / each other's positives: conspiracy
# posts often carry misinformation, and fake-news posts may be conspiratorial.
# The toxicity family is judged only on comments and tweets that are mostly (67%) toxic; fact-based
# news posts (CONSTRAINT "real") and YouTube music-video comments are neutral in register and teach
# those heads that ordinary text is not toxic, which the corpora's toxic-heavy base rate hides.
_NEUTRAL_REGISTER = ("constraint", "tubespam")
_TOXICITY_FAMILY = ("toxicity", "insult", "threat", "identity_attack", "profanity")
NEGATIVE_SOURCES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(_TOXICITY_FAMILY, _NEUTRAL_REGISTER),
    "spam": tuple(c for c in CORPORA if c != "tubespam"),
    "misinformation": ("civil_comments", "davidson", "olid", "tubespam"),
    "conspiracy": ("civil_comments", "davidson", "olid", "tubespam", "constraint"),
}
# (label, source corpus) -> (column, value) a source row must have to be borrowed.
NEGATIVE_SOURCE_FILTERS: dict[tuple[str, str], tuple[str, float]] = {
    ("conspiracy", "constraint"): ("misinformation", 0.0),
    **{(label, "constraint"): ("misinformation", 0.0) for label in _TOXICITY_FAMILY},
}

_URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION_RE = re.compile(r"@\w+")
_INVISIBLE_RE = re.compile("[\u200b-\u200d\u2060\ufeff]")


def normalize_text(text: str) -> str:
    """Dedup key: NFKC, lowercase, URLs -> "url", @mentions -> "@user", whitespace collapsed and stripped."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE_RE.sub("", text).lower()
    text = _URL_RE.sub("url", text)
    text = _MENTION_RE.sub("@user", text)
    return " ".join(text.split())


def text_hash(text: str) -> str:
    """sha256 hex digest of the exact text (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def deduplicate(df: pd.DataFrame, reference_texts: Iterable[str] = ()) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop empty texts, repeats within a corpus, cross-split leaks and overlap with `reference_texts`.

    Returns the kept rows (original order) and the number of rows each rule removed.
    """
    norm = df["text"].fillna("").astype(str).map(normalize_text)
    priority = df["split"].map(SPLIT_PRIORITY)
    if priority.isna().any():
        raise ValueError("every row needs a split (train, validation or test) before dedup")
    work = pd.DataFrame(
        {"corpus": df["corpus"].to_numpy(), "norm": norm.to_numpy(), "priority": priority.to_numpy()},
        index=pd.RangeIndex(len(df)),
    )
    removed: dict[str, int] = {}

    empty = work["norm"] == ""
    removed["empty_text"] = int(empty.sum())
    work = work[~empty]

    # Within a corpus keep one copy, the one in the highest-priority split, then the first.
    ordered = work.sort_values("priority", ascending=False, kind="stable")
    repeat = ordered.duplicated(["corpus", "norm"], keep="first")
    removed["within_corpus_duplicate"] = int(repeat.sum())
    work = work.drop(index=ordered.index[repeat.to_numpy()])

    # Across corpora and splits: a text seen in a higher-priority split wins (test > validation > train).
    best = work.groupby("norm")["priority"].transform("max")
    leak = work["priority"] < best
    removed["cross_split_leak"] = int(leak.sum())
    work = work[~leak]

    reference = {normalize_text(t) for t in reference_texts}
    overlap = work["norm"].isin(reference) & (work["priority"] < SPLIT_PRIORITY["test"])
    removed["reference_overlap"] = int(overlap.sum())
    work = work[~overlap]

    kept = df.iloc[work.index.sort_values()].reset_index(drop=True)
    return kept, removed


def build_dataset(data_dir: Path = DEFAULT_DATA_DIR, corpora: Sequence[str] | None = None) -> pd.DataFrame:
    """The training corpora (default all of `CORPORA`) as one deduplicated table with committed splits."""
    names = list(corpora) if corpora is not None else list(CORPORA)
    unknown = [c for c in names if c not in CORPORA]
    if unknown:
        hint = " (bias_madlibs is evaluation only)" if BIAS_MADLIBS in unknown else ""
        raise InputDataError(
            f"unknown corpus {', '.join(unknown)}{hint}; known corpora: {', '.join(CORPORA)}"
        )
    if not names:
        raise InputDataError("no corpora selected")
    frames = [apply_splits(load_corpus(name, data_dir), data_dir) for name in dict.fromkeys(names)]
    df = pd.concat(frames, ignore_index=True)[list(COLUMNS)]
    madlibs = load_bias_madlibs(data_dir)["text"]
    df, removed = deduplicate(df, madlibs)
    logger.info(
        "dedup removed: %d empty, %d repeated within a corpus, %d leaking into a higher split, "
        "%d train/validation rows also in bias_madlibs",
        removed["empty_text"],
        removed["within_corpus_duplicate"],
        removed["cross_split_leak"],
        removed["reference_overlap"],
    )
    counts = df.groupby(["corpus", "split"]).size().reset_index(name="n")
    for row in counts.itertuples(index=False):
        logger.info("dataset: %s %s %d rows", row.corpus, row.split, row.n)
    return df


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else repr(value)


def dataset_hash(df: pd.DataFrame) -> str:
    """sha256 over the rows sorted by id: id, split, every label/soft/weight value, spans and text hash."""
    value_cols = [c for c in (*LABEL_NAMES, *SOFT_COLUMNS, *WEIGHT_COLUMNS) if c in df.columns]
    ordered = df.sort_values("id", kind="stable")
    digest = hashlib.sha256()
    digest.update(("\t".join(["id", "split", *value_cols, "spans", "text"]) + "\n").encode())
    values = ordered[value_cols].to_numpy(dtype=np.float64) if value_cols else np.empty((len(ordered), 0))
    spans = ordered["spans"] if "spans" in ordered.columns else pd.Series([[]] * len(ordered))
    for row_id, split, row_values, row_spans, text in zip(
        ordered["id"], ordered["split"], values, spans, ordered["text"], strict=True
    ):
        fields = [str(row_id), str(split), *(_fmt(float(v)) for v in row_values)]
        fields += [json.dumps(row_spans, sort_keys=True), text_hash(str(text))]
        digest.update(("\t".join(fields) + "\n").encode())
    return digest.hexdigest()


def native_mask(df: pd.DataFrame, label: str) -> NDArray[np.bool_]:
    """Rows whose corpus judges `label` itself (known, and not a borrowed negative)."""
    known = df[label].notna().to_numpy()
    weight_col = f"weight_{label}"
    if weight_col in df.columns:
        # Borrowed negatives carry a weight below 1 (see add_cross_corpus_negatives).
        return np.asarray(known & (df[weight_col].to_numpy(dtype=np.float64) == 1.0), dtype=bool)
    return np.asarray(known, dtype=bool)


def negative_source_mask(df: pd.DataFrame, label: str) -> NDArray[np.bool_]:
    """Rows that are safe negatives for `label`: from a NEGATIVE_SOURCES corpus, label not judged natively."""
    sources = NEGATIVE_SOURCES.get(label, ())
    mask = df["corpus"].isin(sources).to_numpy() & ~native_mask(df, label)
    for (filtered_label, corpus), (column, value) in NEGATIVE_SOURCE_FILTERS.items():
        if filtered_label == label:
            in_corpus = (df["corpus"] == corpus).to_numpy()
            mask &= ~in_corpus | (df[column] == value).to_numpy()
    return mask


def _rng(seed: int, *parts: str) -> np.random.Generator:
    # Seeded per (label, corpus, split), so the choice does not depend on which other corpora are loaded.
    return np.random.default_rng([seed, *(zlib.crc32(p.encode()) for p in parts)])


def add_cross_corpus_negatives(
    df: pd.DataFrame, weight: float = 0.3, max_per_corpus: int | None = 4000, seed: int = 0
) -> pd.DataFrame:
    """Copy of `df` with weight_<label> columns and seeded borrowed negatives (label 0.0, weight `weight`)."""
    if not 0.0 < weight < 1.0:
        raise ValueError(f"weight must be in (0, 1) so that borrowed rows stay distinguishable, got {weight}")
    if max_per_corpus is not None and max_per_corpus < 0:
        raise ValueError(f"max_per_corpus must be >= 0 or None, got {max_per_corpus}")
    out = df.copy()
    corpus = df["corpus"].to_numpy(dtype=str)
    split = df["split"].to_numpy(dtype=str)
    for label in LABEL_NAMES:
        known = native_mask(df, label)
        values = np.where(known, df[label].to_numpy(dtype=np.float64), np.nan)
        weights = known.astype(np.float64)
        if label in NEGATIVE_SOURCES:
            eligible = negative_source_mask(df, label)
            for source in NEGATIVE_SOURCES[label]:
                for split_name in SPLITS:
                    rows = np.flatnonzero(eligible & (corpus == source) & (split == split_name))
                    if max_per_corpus is not None and len(rows) > max_per_corpus:
                        rows = np.sort(
                            _rng(seed, label, source, split_name).choice(rows, max_per_corpus, replace=False)
                        )
                    values[rows] = 0.0
                    weights[rows] = weight
        out[label] = values
        out[f"weight_{label}"] = weights
    return out
