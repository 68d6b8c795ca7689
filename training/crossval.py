"""Cross-validated conspiracy ROC-AUC on the 250 PRCT YouTube comments (`python -m training.crossval`).

PRCT's test split holds 50 comments, too few for a stable ROC-AUC, so the linear recipe is refitted
k times: each fold's PRCT comments are held out, and the model learns from every corpus's training
rows plus the other folds' PRCT comments (training, validation and test rows alike), with the same
borrowed negatives and settings as `moderation train --kind linear`. The held-out comments are scored
through the served backend (`predict_raw`; calibration is monotone, so ROC-AUC is unaffected).

The fine-tuned transformer is not cross-validated here: each fold would be a fresh fine-tuning
(about 45 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from models.labels import LABEL_NAMES
from training.dataset import add_cross_corpus_negatives, build_dataset
from training.linear import LinearConfig, fit_linear
from training.options import TrainConfig

logger = logging.getLogger(__name__)

CORPUS = "prct_youtube"
LABEL = "conspiracy"


def folds(y: np.ndarray[Any, Any], k: int, seed: int) -> list[np.ndarray[Any, Any]]:
    """Stratified fold indices: each fold gets its share of positives and negatives."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(k)]
    for value in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == value))
        for i, row in enumerate(idx):
            parts[i % k].append(int(row))
    return [np.sort(np.array(p, dtype=np.intp)) for p in parts]


def cross_validate(df: pd.DataFrame, *, k: int = 5, seed: int = 13, C: float = 16.0) -> dict[str, Any]:
    """Per-fold and pooled ROC-AUC of the linear conspiracy head on PRCT, each fold held out."""
    from sklearn.metrics import roc_auc_score

    prct = df.index[(df["corpus"] == CORPUS) & df[LABEL].notna()].to_numpy()
    y = df.loc[prct, LABEL].to_numpy(dtype=np.float64)
    if len(prct) < 2 * k or len(np.unique(y)) < 2:
        raise ValueError(f"{CORPUS} has {len(prct)} labelled rows; too few for {k} folds")
    pooled = np.full(len(prct), np.nan)
    per_fold: list[float] = []
    config = LinearConfig(C=C)
    for i, held in enumerate(folds(y, k, seed)):
        frame = df.copy()
        in_prct = frame["corpus"] == CORPUS
        frame.loc[in_prct, "split"] = "train"
        frame.loc[prct[held], "split"] = "heldout"
        defaults = TrainConfig()
        augmented = add_cross_corpus_negatives(
            frame,
            weight=defaults.negative_weight,
            max_per_corpus=defaults.max_negatives_per_corpus,
            seed=seed,
        )
        train = augmented[augmented["split"] == "train"].reset_index(drop=True)
        backend, _ = fit_linear(train, config, labels=(LABEL,))
        scores = backend.predict_raw(df.loc[prct[held], "text"].tolist())[:, LABEL_NAMES.index(LABEL)]
        pooled[held] = scores
        auc = float(roc_auc_score(y[held], scores))
        per_fold.append(auc)
        logger.info("fold %d/%d: %d held-out comments, ROC-AUC %.3f", i + 1, k, len(held), auc)
    return {
        "corpus": CORPUS,
        "label": LABEL,
        "rows": len(prct),
        "positives": int(y.sum()),
        "folds": k,
        "seed": seed,
        "C": C,
        "roc_auc_per_fold": [round(a, 4) for a in per_fold],
        "roc_auc_mean": round(float(np.mean(per_fold)), 4),
        "roc_auc_std": round(float(np.std(per_fold)), 4),
        "roc_auc_pooled": round(float(roc_auc_score(y, pooled)), 4),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print the cross-validation as JSON; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m training.crossval", description=__doc__)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--C",
        type=float,
        default=16.0,
        help="the conspiracy head's inverse L2 strength (the shipped linear's pick)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.folds < 2:
        print("error: --folds must be at least 2", file=sys.stderr)
        return 2
    result = cross_validate(build_dataset(), k=args.folds, seed=args.seed, C=args.C)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
