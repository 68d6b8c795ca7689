"""Fitting the linear baseline: TF-IDF word + char n-grams, one masked logistic head per label."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray

from models.labels import LABEL_NAMES
from models.linear import LinearBackend
from training.dataset import native_mask

logger = logging.getLogger(__name__)


NB_WEIGHTING = ("off", "on", "auto")
# Added to each class's feature sums before the NB log-count ratio (Laplace smoothing).
NB_ALPHA = 1.0


@dataclass
class LinearConfig:
    """Hyper-parameters of the linear baseline."""

    word_max_features: int = field(default=60_000, metadata={"help": "word 1-2-gram vocabulary size"})
    char_max_features: int = field(default=120_000, metadata={"help": "char 2-5-gram vocabulary size"})
    C: float = field(default=4.0, metadata={"help": "inverse L2 strength when no validation data is given"})
    C_grid: tuple[float, ...] = field(
        default=(0.5, 1.0, 4.0, 16.0),
        metadata={"help": "per-label choices of C, picked by validation ROC-AUC on native rows"},
    )
    rare_positive_boost: float = field(
        default=4.0, metadata={"help": "max weight multiplier for positives of labels with few positives"}
    )
    nb_weighting: str = field(
        default="off",
        metadata={
            "help": "Naive Bayes log-count-ratio feature weights (NB-LR): off, on, or auto (each label"
            " keeps NB or plain features, whichever scores better on its native validation rows)"
        },
    )

    def __post_init__(self) -> None:
        if self.word_max_features < 1 or self.char_max_features < 1:
            raise ValueError("vocabulary sizes must be positive")
        if self.C <= 0 or any(c <= 0 for c in self.C_grid):
            raise ValueError("C must be positive")
        if self.rare_positive_boost < 1:
            raise ValueError("rare_positive_boost must be >= 1")
        if self.nb_weighting not in NB_WEIGHTING:
            raise ValueError(
                f"nb_weighting must be one of {', '.join(NB_WEIGHTING)}, got {self.nb_weighting!r}"
            )


def _vectorizers(config: LinearConfig) -> tuple[Any, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    word = TfidfVectorizer(
        lowercase=True,
        ngram_range=(1, 2),
        min_df=2,
        max_df=0.5,
        max_features=config.word_max_features,
        sublinear_tf=True,
        token_pattern=r"(?u)\b\w[\w'*]*\b",
        dtype=np.float32,
    )
    char = TfidfVectorizer(
        lowercase=True,
        analyzer="char_wb",
        ngram_range=(2, 5),
        min_df=3,
        max_features=config.char_max_features,
        sublinear_tf=True,
        dtype=np.float32,
    )
    return word, char


def label_rows(
    df: pd.DataFrame, label: str, boost: float
) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
    """Row indices, targets and weights for one head; soft targets become a weighted pos/neg pair."""
    y = df[label].to_numpy(dtype=np.float64)
    w = df[f"weight_{label}"].to_numpy(dtype=np.float64)
    soft = df[f"soft_{label}"].to_numpy(dtype=np.float64)
    known = (w > 0) & ~np.isnan(y)
    idx = np.flatnonzero(known)
    p = np.where(np.isnan(soft[idx]), y[idx], soft[idx])
    # Rare labels (threat, profanity) get their positives up-weighted, capped at `boost`.
    pos_mass = float((p * w[idx]).sum())
    neg_mass = float(((1 - p) * w[idx]).sum())
    pos_boost = float(np.clip(neg_mass / max(pos_mass, 1e-9) / 4.0, 1.0, boost))
    rows = np.concatenate([idx, idx])
    targets = np.concatenate([np.ones(len(idx)), np.zeros(len(idx))])
    weights = np.concatenate([p * w[idx] * pos_boost, (1 - p) * w[idx]])
    keep = weights > 0
    return rows[keep], targets[keep], weights[keep]


def nb_ratio(
    features: sp.csr_matrix,
    targets: NDArray[np.float64],
    weights: NDArray[np.float64],
    alpha: float = NB_ALPHA,
) -> NDArray[np.float32]:
    """Each feature's log-count ratio between weighted positive and negative rows (Wang & Manning, 2012).

    NB-LR fits the logistic head on `features * r`; since `(x * r) . w == x . (r * w)`, the fitted
    head folds into an ordinary linear one (`coef = r * w`) and serving needs nothing new.
    """
    pos = np.asarray(features.T @ (weights * (targets == 1))).ravel() + alpha
    neg = np.asarray(features.T @ (weights * (targets == 0))).ravel() + alpha
    ratio: NDArray[np.float32] = np.log((pos / pos.sum()) / (neg / neg.sum())).astype(np.float32)
    return ratio


def _auc(y: NDArray[np.float64], p: NDArray[np.float64]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def fit_linear(
    train: pd.DataFrame,
    config: LinearConfig,
    validation: pd.DataFrame | None = None,
    labels: Sequence[str] = LABEL_NAMES,
) -> tuple[LinearBackend, dict[str, dict[str, Any]]]:
    """Fit vectorizers and one logistic head per label; returns the backend and each head's choices.

    With `validation`, each label's C is picked from `config.C_grid` by ROC-AUC on the label's
    native validation rows (toxicity-style labels want more regularisation than spam or
    misinformation, whose corpora are small and distinctive), and with `nb_weighting="auto"` so is
    the choice between plain and NB-weighted features; without validation, "auto" means plain.
    Only `labels` get a head (the others stay at 0.5), for experiments that need one. The choices
    come back per label as `{"C": ..., "nb": ...}`.
    """
    from sklearn.linear_model import LogisticRegression

    texts = train["text"].tolist()
    word, char = _vectorizers(config)
    probe = LinearBackend(word, char, np.zeros((1, 1), np.float32), np.zeros(1, np.float32))
    word.fit(texts)
    char.fit(texts)
    features = probe.features(texts)
    logger.info("linear features: %d rows x %d columns", features.shape[0], features.shape[1])
    val_features = probe.features(validation["text"].tolist()) if validation is not None else None
    coef = np.zeros((len(LABEL_NAMES), features.shape[1]), dtype=np.float32)
    intercept = np.zeros(len(LABEL_NAMES), dtype=np.float32)
    chosen: dict[str, dict[str, Any]] = {}
    grid = config.C_grid if val_features is not None else (config.C,)
    nb_options = {
        "off": (False,),
        "on": (True,),
        "auto": (False, True) if val_features is not None else (False,),
    }
    for j, label in enumerate(LABEL_NAMES):
        if label not in labels:
            continue
        rows, targets, weights = label_rows(train, label, config.rare_positive_boost)
        if len(np.unique(targets)) < 2:
            logger.warning("label %s has a single class in training; its head stays at 0.5", label)
            continue
        # A label without validation rows keeps the first candidate.
        x_val, y_val = None, None
        if val_features is not None and validation is not None:
            native = native_mask(validation, label)
            if native.any():
                x_val, y_val = val_features[native], validation.loc[native, label].to_numpy(dtype=np.float64)
        x = features[rows]
        best: tuple[float, float, bool, NDArray[np.float32], float] | None = None
        for nb in nb_options[config.nb_weighting]:
            ratio = nb_ratio(x, targets, weights) if nb else None
            x_fit = x @ sp.diags(ratio) if ratio is not None else x
            for c in grid:
                head = LogisticRegression(C=c, solver="liblinear", max_iter=200)
                head.fit(x_fit, targets, sample_weight=weights)
                w = (head.coef_[0] * ratio if ratio is not None else head.coef_[0]).astype(np.float32)
                score = 0.0
                if x_val is not None and y_val is not None:
                    score = _auc(y_val, x_val @ w)
                    score = -1.0 if np.isnan(score) else score
                if best is None or score > best[0]:
                    best = (score, c, nb, w, float(head.intercept_[0]))
        assert best is not None
        score, c, nb, coef[j], intercept[j] = best
        chosen[label] = {"C": c, "nb": nb}
        logger.info(
            "label %s: C=%g, %s features (validation AUC %.3f), %d rows",
            label,
            c,
            "NB-weighted" if nb else "plain",
            score,
            len(rows),
        )
    return LinearBackend(word, char, coef, intercept), chosen
