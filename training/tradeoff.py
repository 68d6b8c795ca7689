"""`python -m training.tradeoff [MODEL_ID]`: the toxicity cut's trade-off, for the record.

Cuts are chosen on validation only (F1, and F1 under identity flag-rate caps of 5/10/20%, applied
either to every comment or, as served, only to comments that name an identity group); the table
shows what each gives on test (OLID macro-F1, civil_comments toxicity F1) and on a sample of
bias_madlibs NOT_BAD rows. It reports, it does not choose: picking a cut from this table would be
tuning on the test splits.

It then prints each shared-task figure's ceiling: the best value it reaches at any single cut of the
served score, searched on the test rows themselves. A ceiling is an upper bound, never a cut to
use: when the served figure is close to its ceiling, the cut is not what stands between the model
and a target, the ranking is. Next to it, each figure at the single cut that does best on its own
corpus's validation rows (chosen there, then applied to test): what a site whose comments look
like that corpus could reach by setting its own threshold in its policy.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from models.identity import mentions_identity
from models.registry import Registry, default_registry_dir
from training import metrics
from training.dataset import build_dataset, load_bias_madlibs
from training.evaluate import FLAG_METRICS, TASK_FIGURES
from training.train import calibrate_and_threshold, validation_rows

FloatArray = NDArray[np.float64]

CAPS = (0.05, 0.10, 0.20)


def _or_zero(
    metric: Callable[[FloatArray, FloatArray], float | None], y: FloatArray, flags: FloatArray
) -> float:
    return float(metric(y, flags) or 0.0)


# name -> (corpus, label, metric of (y, flags)): the thresholded figures of `TASK_FIGURES`
TASKS: dict[str, tuple[str, str, Callable[[FloatArray, FloatArray], float]]] = {
    name: (task.corpus, task.label, functools.partial(_or_zero, FLAG_METRICS[task.metric]))
    for name, task in TASK_FIGURES.items()
    if task.metric in FLAG_METRICS
}


def ceiling(
    y: FloatArray, scores: FloatArray, metric: Callable[[FloatArray, FloatArray], float]
) -> tuple[float, float]:
    """(best value, its cut) of `metric(y, scores >= cut)` over every distinct score as the cut."""
    best = (-np.inf, float("nan"))
    for cut in np.unique(scores):
        value = metric(y, (scores >= cut).astype(np.float64))
        if value > best[0]:
            best = (float(value), float(cut))
    return best


def validated_cut(
    y_val: FloatArray,
    scores_val: FloatArray,
    y_test: FloatArray,
    scores_test: FloatArray,
    metric: Callable[[FloatArray, FloatArray], float],
) -> tuple[float, float]:
    """(the cut that does best on the validation rows, the test figure at that cut)."""
    cut = ceiling(y_val, scores_val, metric)[1]
    return cut, float(metric(y_test, (scores_test >= cut).astype(np.float64)))


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m training.tradeoff", description=__doc__)
    parser.add_argument("model", nargs="?", help="artifact id (default: the active model)")
    parser.add_argument("--bias-sample", type=int, default=8000, help="NOT_BAD rows scored")
    args = parser.parse_args(argv)

    registry = Registry(default_registry_dir(os.environ))
    model = registry.load(args.model or registry.active_id())
    j = model.labels.index("toxicity")
    df = build_dataset()
    val = validation_rows(df)
    raw = model.raw_scores(val["text"].tolist())
    base, identity_cut = model.info.thresholds["toxicity"], model.info.identity_cut
    # name -> (cut for other comments, cut for comments naming an identity group)
    cuts = {"served": (base, identity_cut.thresholds.get("toxicity", base) if identity_cut else base)}
    f1_cut = calibrate_and_threshold(raw, val, "isotonic")[1]["toxicity"]
    cuts["F1 only"] = (f1_cut, f1_cut)
    for cap in CAPS:
        _, thresholds, identity = calibrate_and_threshold(raw, val, "isotonic", identity_fpr_cap=cap)
        capped = identity.thresholds["toxicity"] if identity else thresholds["toxicity"]
        cuts[f"cap {cap:.0%} all"] = (capped, capped)  # the capped cut for every comment
        cuts[f"cap {cap:.0%} id"] = (thresholds["toxicity"], capped)  # only for those naming a group

    test = df[df["split"] == "test"]
    olid = test[test["corpus"] == "olid"]
    civil = test[test["corpus"] == "civil_comments"]
    bias = load_bias_madlibs()
    not_bad = bias[bias["label"] == 0]
    not_bad = not_bad.sample(n=min(args.bias_sample, len(not_bad)), random_state=0)
    sets = {}
    for name, frame in (("olid", olid), ("civil", civil), ("bias", not_bad)):
        texts = frame["text"].tolist()
        sets[name] = (model.score(texts)[:, j], mentions_identity(texts))

    def at(name: str, cut: tuple[float, float]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The set's toxicity scores and each row's cut (the second for rows that name a group)."""
        scores, named = sets[name]
        return scores, np.where(named, cut[1], cut[0])

    print(f"model {model.id}; cuts chosen on validation (isotonic calibration refitted for the others)")
    print(
        f"{'cut':<14} {'other':>6} {'identity':>8} {'OLID macro-F1':>14} {'civil tox F1':>13} {'NOT_BAD flagged':>16}"
    )
    for name, cut in cuts.items():
        s_olid, c_olid = at("olid", cut)
        f_olid = metrics.macro_f1(olid["toxicity"].to_numpy(), (s_olid >= c_olid).astype(np.float64))
        f_civil = metrics.binary_metrics(civil["toxicity"].to_numpy(), *at("civil", cut))["f1"]
        s_bias, c_bias = at("bias", cut)
        flagged = float((s_bias >= c_bias).mean())
        print(
            f"{name:<14} {cut[0]:>6.3f} {cut[1]:>8.3f} {f_olid:>14.3f} {f_civil or 0.0:>13.3f} {flagged:>16.3f}"
        )

    print(
        "\ntask figures at the served cuts, at the cut best on the corpus's own validation rows,"
        " and their ceilings at any single cut (searched on test)"
    )
    print(f"{'figure':<28} {'served':>7} {'own val':>8} {'at cut':>7} {'ceiling':>8} {'at cut':>7}")
    for name, (corpus, label, metric) in TASKS.items():
        rows = test[(test["corpus"] == corpus) & test[label].notna()]
        own = val[(val["corpus"] == corpus) & val[label].notna()]
        if rows.empty:
            continue
        texts = rows["text"].tolist()
        k = model.labels.index(label)
        scores = model.score(texts)[:, k]
        y = rows[label].to_numpy(dtype=np.float64)
        served = metric(y, (scores >= model.cuts(texts)[:, k]).astype(np.float64))
        best, at_cut = ceiling(y, scores, metric)
        if own.empty:
            own_cut, own_value = float("nan"), float("nan")
        else:
            y_own = own[label].to_numpy(dtype=np.float64)
            own_scores = model.score(own["text"].tolist())[:, k]
            own_cut, own_value = validated_cut(y_own, own_scores, y, scores, metric)
        print(f"{name:<28} {served:>7.3f} {own_value:>8.3f} {own_cut:>7.3f} {best:>8.3f} {at_cut:>7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
