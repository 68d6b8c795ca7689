"""Cross-validated conspiracy ROC-AUC on the 250 PRCT YouTube comments (`python -m training.crossval`).

PRCT's test split holds 50 comments, too few for a stable ROC-AUC, so the linear recipe is refitted
k times: each fold's PRCT comments are held out, and the model learns from every corpus's training
rows plus the other folds' PRCT comments (training, validation and test rows alike), with the same
borrowed negatives and settings as `moderation train --kind linear`. The held-out comments are scored
through the served backend (`predict_raw`; calibration is monotone, so ROC-AUC is unaffected).

The fine-tuned transformer is not fine-tuned here (each fold is a fresh fine-tuning: 45-60 minutes
on 2 CPU cores, under a minute on a GPU). `--transformer-scores FILE [FILE ...]` takes the held-out
scores of such per-fold fine-tunings made elsewhere on the same folds (JSON: "index", the PRCT rows'
dataset index, and "folds", each with "held" positions and the transformer's conspiracy "scores";
`training/experiments/gpu_job.py` writes it) and adds the transformer's cross-validated ROC-AUC and
that of the ensemble's logit blend with this linear head (`models.ensemble.blend`, transformer
weight `--blend-weight`, by default the shipped default ensemble's conspiracy weight). Folds that
also name their "fold" (0-based) may come as a subset, when the fine-tunings of the others were lost
or are still to run: the transformer's and the blend's figures then cover those folds only, and
have no pooled AUC. Several files (e.g. one fold fine-tuned per run) are merged: they must hold the
same rows, and no fold may come twice.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.ensemble import ENSEMBLE_FILE, read_weights
from models.labels import LABEL_NAMES
from models.registry import SHIPPED_DIR
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


def cross_validate(
    df: pd.DataFrame,
    *,
    k: int = 5,
    seed: int = 13,
    C: float = 16.0,
    transformer: dict[str, Any] | None = None,
    blend_weight: float = 0.3,
) -> dict[str, Any]:
    """Per-fold and pooled ROC-AUC of the linear conspiracy head on PRCT, each fold held out.

    With `transformer` (held-out scores of per-fold fine-tunings on the same folds), the transformer's
    and the blend's figures too.
    """
    from sklearn.metrics import roc_auc_score

    from models.ensemble import blend

    prct = df.index[(df["corpus"] == CORPUS) & df[LABEL].notna()].to_numpy()
    y = df.loc[prct, LABEL].to_numpy(dtype=np.float64)
    if len(prct) < 2 * k or len(np.unique(y)) < 2:
        raise ValueError(f"{CORPUS} has {len(prct)} labelled rows; too few for {k} folds")
    pooled = np.full(len(prct), np.nan)
    per_fold: list[float] = []
    config = LinearConfig(C=C)
    splits = folds(y, k, seed)
    if transformer is not None:
        _check_transformer_scores(transformer, prct, splits)
    for i, held in enumerate(splits):
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
    result: dict[str, Any] = {
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
    if transformer is not None:
        tf_scores = np.full(len(prct), np.nan)
        for part in transformer["folds"]:
            tf_scores[np.asarray(part["held"], dtype=np.intp)] = np.asarray(part["scores"], dtype=np.float64)
        present = [i for i, held in enumerate(splits) if not np.isnan(tf_scores[held]).any()]
        mixed = blend(tf_scores[:, None], pooled[:, None], np.array([blend_weight]))[:, 0]
        for name, scores in (("transformer", tf_scores), ("ensemble", mixed)):
            aucs = [float(roc_auc_score(y[splits[i]], scores[splits[i]])) for i in present]
            complete = len(present) == len(splits)
            result[name] = {
                "folds_scored": present,
                "roc_auc_per_fold": [round(a, 4) for a in aucs],
                "roc_auc_mean": round(float(np.mean(aucs)), 4),
                "roc_auc_std": round(float(np.std(aucs)), 4),
                "roc_auc_pooled": round(float(roc_auc_score(y, scores)), 4) if complete else None,
            }
        result["ensemble"]["blend_weight"] = blend_weight
        result["linear_on_folds_scored"] = round(float(np.mean([per_fold[i] for i in present])), 4)
    return result


def _check_transformer_scores(
    transformer: dict[str, Any], prct: np.ndarray[Any, Any], splits: list[np.ndarray[Any, Any]]
) -> None:
    """The scores must come from the same rows and the same folds.

    Folds without a "fold" number are taken in order and must all be there; numbered ones may be
    any subset, each at most once.
    """
    if list(transformer.get("index", [])) != prct.tolist():
        raise ValueError("transformer scores: their PRCT rows are not this dataset's")
    parts = transformer.get("folds", [])
    numbered = [part.get("fold") for part in parts]
    if all(n is None for n in numbered):
        if len(parts) != len(splits):
            raise ValueError(f"transformer scores: {len(parts)} folds, expected {len(splits)}")
        numbered = list(range(len(parts)))
    elif any(type(n) is not int or not 0 <= n < len(splits) for n in numbered):
        raise ValueError(
            f"transformer scores: fold numbers {numbered} must all be within 0..{len(splits) - 1}"
        )
    elif len(set(numbered)) != len(numbered):
        raise ValueError(f"transformer scores: fold numbers {numbered} repeat")
    for i, part in zip(numbered, parts, strict=True):
        held = splits[i]
        if list(part.get("held", [])) != held.tolist() or len(part.get("scores", [])) != len(held):
            raise ValueError(f"transformer scores: fold {i} holds out other rows than this split")


def merge_transformer_scores(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One set of held-out scores from several files (their folds together; the same PRCT rows)."""
    if not parts:
        raise ValueError("transformer scores: no files")
    index = parts[0].get("index")
    for n, part in enumerate(parts[1:], start=2):
        if part.get("index") != index:
            raise ValueError(f"transformer scores: file {n} holds other PRCT rows than file 1")
    if len(parts) > 1 and any(f.get("fold") is None for part in parts for f in part.get("folds", [])):
        raise ValueError('transformer scores: merged files must number their folds ("fold")')
    return {"index": index, "folds": [f for part in parts for f in part.get("folds", [])]}


def shipped_blend_weight(shipped_dir: Path = SHIPPED_DIR) -> float | None:
    """The conspiracy weight of the shipped default model's blend; None when it is no ensemble."""
    default = shipped_dir / "DEFAULT"
    if not default.is_file():
        return None
    folder = shipped_dir / default.read_text(encoding="utf-8").strip()
    if not (folder / ENSEMBLE_FILE).is_file():
        return None
    return read_weights(folder, (LABEL,))[0]


def _read_scores(path: Path) -> dict[str, Any]:
    """One file of held-out scores (a gpu_job results file, or its "cv" object alone)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    scores = data.get("cv", data) if isinstance(data, dict) else None
    if not isinstance(scores, dict):
        raise ValueError(f"{path}: not a JSON object of held-out scores")
    return scores


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
    parser.add_argument(
        "--transformer-scores",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="held-out transformer scores of per-fold fine-tunings on the same folds (JSON, see above;"
        " several files are merged)",
    )
    parser.add_argument(
        "--blend-weight",
        type=float,
        help="the transformer's weight in the conspiracy blend (default: the shipped default ensemble's)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.folds < 2:
        print("error: --folds must be at least 2", file=sys.stderr)
        return 2
    if args.blend_weight is not None and not 0.0 <= args.blend_weight <= 1.0:
        print("error: --blend-weight must be within 0..1", file=sys.stderr)
        return 2
    transformer = None
    weight = args.blend_weight
    if args.transformer_scores is not None:
        try:
            transformer = merge_transformer_scores([_read_scores(f) for f in args.transformer_scores])
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        weight = weight if weight is not None else shipped_blend_weight()
        if weight is None:
            print("error: the shipped default model is no ensemble: give --blend-weight", file=sys.stderr)
            return 2
    try:
        result = cross_validate(
            build_dataset(),
            k=args.folds,
            seed=args.seed,
            C=args.C,
            transformer=transformer,
            blend_weight=0.0 if weight is None else weight,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
