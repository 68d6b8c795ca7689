"""Per-label blend weights of the transformer and the linear model, chosen on the validation split."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from models.ensemble import blend
from models.labels import LABEL_NAMES

logger = logging.getLogger(__name__)

# Transformer weight candidates: 0 (linear only) ... 1 (transformer only).
WEIGHT_GRID = tuple(round(x, 2) for x in np.linspace(0.0, 1.0, 11))


def fit_weights(
    p_transformer: NDArray[np.float64], p_linear: NDArray[np.float64], val: pd.DataFrame
) -> tuple[list[float], dict[str, dict[str, float]]]:
    """The transformer weight per label with the best validation ROC-AUC on the label's own corpora.

    Ties (within 0.001) go to the weight closest to 0.5: an even blend is the safer bet when
    validation cannot tell the candidates apart.
    """
    from sklearn.metrics import roc_auc_score

    weights: list[float] = []
    report: dict[str, dict[str, float]] = {}
    for j, label in enumerate(LABEL_NAMES):
        native = (val[f"weight_{label}"] == 1.0).to_numpy() & val[label].notna().to_numpy()
        y = val.loc[native, label].to_numpy() >= 0.5
        if len(np.unique(y)) < 2:
            weights.append(0.5)
            continue
        aucs = {}
        for w in WEIGHT_GRID:
            mixed = blend(p_transformer[native, j : j + 1], p_linear[native, j : j + 1], np.array([w]))
            aucs[w] = float(roc_auc_score(y, mixed[:, 0]))
        top = max(aucs.values())
        best = min((w for w, auc in aucs.items() if auc >= top - 0.001), key=lambda w: abs(w - 0.5))
        weights.append(best)
        report[label] = {
            "weight": best,
            "val_auc": round(aucs[best], 4),
            "val_auc_transformer": round(aucs[1.0], 4),
            "val_auc_linear": round(aucs[0.0], 4),
        }
        logger.info(
            "ensemble %s: transformer weight %.1f (validation AUC %.4f; transformer %.4f, linear %.4f)",
            label,
            best,
            aucs[best],
            aucs[1.0],
            aucs[0.0],
        )
    return weights, report
