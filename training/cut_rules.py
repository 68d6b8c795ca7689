"""`python -m training.cut_rules [MODEL_ID]`: which cut rule holds up on unseen rows, per label.

`moderation train` picks each label's cut on the validation split (`training.train.label_cut`):
the tolerant F1 argmax after isotonic calibration, or, for a label with few validation positives,
Platt scaling and the expected-F1 cut. This compares the two rules without touching test: the
validation rows are split in half, stratified by label, many times; each rule is fitted on one half
and scored on the other. It reports mean held-out F1, recall, how often a fitted cut caught none of
the held-out positives, and the share of rows flagged. It is the evidence behind
`RARE_LABEL_POSITIVES`; it changes nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.labels import LABEL_NAMES
from models.registry import Registry, default_registry_dir
from training.dataset import build_dataset
from training.train import label_cut, validation_rows

FloatArray = NDArray[np.float64]
RULES = {"isotonic, tolerant F1 argmax": False, "platt, expected-F1 cut": True}


@dataclass(frozen=True)
class HeldOut:
    """Means over the fits of one rule on one label."""

    f1: float
    f1_std: float
    recall: float
    missed_all: float  # share of fits whose cut caught no held-out positive
    flagged: float  # share of held-out rows (weighted) flagged


def _scores(flags: NDArray[np.bool_], y: FloatArray, w: FloatArray) -> tuple[float, float, float]:
    positive = y >= 0.5
    tp = float((w * (flags & positive)).sum())
    fp = float((w * (flags & ~positive)).sum())
    total = float((w * positive).sum())
    return 2.0 * tp / (tp + fp + total), tp / total, float((w * flags).sum() / w.sum())


def split_half(
    raw: FloatArray, y: FloatArray, w: FloatArray, label: str, *, splits: int = 100, seed: int = 0
) -> dict[str, HeldOut]:
    """Each rule fitted on one half of a label's rows and scored on the other, `splits` times both ways.

    Halves are stratified so that each holds half the positives; a label needs at least two.
    """
    positive = y >= 0.5
    if positive.sum() < 2 or (~positive).sum() < 2:
        raise ValueError(f"{label}: split-half needs two positives and two negatives")
    rng = np.random.default_rng(seed)
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in RULES}
    for _ in range(splits):
        first = np.zeros(len(y), dtype=bool)
        for cls in (True, False):
            idx = np.flatnonzero(positive == cls)
            first[rng.permutation(idx)[: len(idx) // 2]] = True
        for fit, held in ((first, ~first), (~first, first)):
            for name, rare in RULES.items():
                cal, cut = label_cut(raw[fit], y[fit], w[fit], label, "isotonic", rare=rare)
                flags = cal.apply(raw[held]) >= cut
                results[name].append(_scores(flags, y[held], w[held]))
    summary = {}
    for name, rows in results.items():
        values = np.asarray(rows)
        summary[name] = HeldOut(
            f1=float(values[:, 0].mean()),
            f1_std=float(values[:, 0].std()),
            recall=float(values[:, 1].mean()),
            missed_all=float((values[:, 1] == 0).mean()),
            flagged=float(values[:, 2].mean()),
        )
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Print the comparison; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m training.cut_rules", description=__doc__)
    parser.add_argument("model", nargs="?", help="artifact id (default: the active model)")
    parser.add_argument("--splits", type=int, default=100, help="random half splits (each fitted both ways)")
    parser.add_argument("--labels", default=",".join(LABEL_NAMES), help="comma-separated labels")
    args = parser.parse_args(argv)
    labels = [name.strip() for name in args.labels.split(",") if name.strip()]
    unknown = sorted(set(labels) - set(LABEL_NAMES))
    if unknown or args.splits < 1:
        parser.error(f"unknown labels {unknown}" if unknown else "--splits must be at least 1")
    logging.getLogger("training.train").setLevel(logging.WARNING)

    registry = Registry(default_registry_dir(os.environ))
    model = registry.load(args.model or registry.active_id())
    val = validation_rows(build_dataset())
    raw = model.raw_scores(val["text"].tolist())
    print(
        f"model {model.id}; {args.splits} validation half splits, each rule fitted on one half, scored on the other"
    )
    print(f"{'label':<26} {'rule':<30} {'F1':>6} {'± sd':>6} {'recall':>7} {'missed all':>11} {'flagged':>8}")
    for label in labels:
        j = LABEL_NAMES.index(label)
        y = val[label].to_numpy(dtype=np.float64)
        w = val[f"weight_{label}"].to_numpy(dtype=np.float64)
        rows = (w > 0) & ~np.isnan(y)
        heading = f"{label} ({int((y[rows] >= 0.5).sum())} pos)"
        try:
            summary = split_half(raw[rows, j], y[rows], w[rows], label, splits=args.splits)
        except ValueError as exc:
            print(f"{heading:<26} {exc}")
            continue
        for name, r in summary.items():
            print(
                f"{heading:<26} {name:<30} {r.f1:>6.3f} {r.f1_std:>6.3f} {r.recall:>7.3f}"
                f" {r.missed_all:>11.0%} {r.flagged:>8.2%}"
            )
            heading = ""
    return 0


if __name__ == "__main__":
    sys.exit(main())
