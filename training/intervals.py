"""Bootstrap confidence intervals for the evaluation's headline figures.

Several figures rest on a few test rows: 15 threats and 39 identity attacks among the 1,605
civil_comments test posts, 50 PRCT comments, 237 offensive OLID tweets. An interval says how far
the same model's figure could move on another test sample of the same make-up, so that a target
missed, or met, by less than that is read as what it is: not shown either way by this split.

Method: percentile bootstrap. Each resample draws the test rows with replacement within each corpus
(every corpus keeps its test size, as the figures are per corpus or pooled over fixed corpora) and
the bias rows apart from them; every figure is recomputed on the same resamples at the served cuts,
exactly as the report computes it. A resample is a vector of row counts, so each figure is a
weighted count over the original rows and the resamples run as matrix products, not a loop.
The intervals are about sampling noise of the test rows only: they say nothing about the noise of
training (seeds), which `training/EXPERIMENTS.md` measures separately.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from training.report import EvalInputs

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
METHOD = "percentile bootstrap; test rows resampled within each corpus, bias rows apart"
# Resamples per block: bounds memory (block × rows counts) on the 76k-row bias set.
_BLOCK = 200


def _counts(rng: np.random.Generator, groups: list[NDArray[np.intp]], n: int, size: int) -> FloatArray:
    """`size` resamples of n rows as row counts: each group's rows drawn with replacement, as many as it has."""
    counts = np.zeros((size, n), dtype=np.float64)
    for rows in groups:
        counts[:, rows] = rng.multinomial(len(rows), np.full(len(rows), 1.0 / len(rows)), size=size)
    return counts


def _divide(num: FloatArray, den: FloatArray, empty: float) -> FloatArray:
    """num / den elementwise, `empty` where den is 0."""
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), empty)


def weighted_auc(y: FloatArray, scores: FloatArray, weights: FloatArray) -> FloatArray:
    """ROC-AUC of one label under each row of `weights` (resamples × rows); ties count one half.

    Equals `sklearn.metrics.roc_auc_score(y, scores, sample_weight=w)` for each row w; NaN where a
    resample has no positive or no negative.
    """
    order = np.argsort(scores, kind="mergesort")
    s, positive = scores[order], y[order] == 1.0
    w = weights[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # one group per distinct score
    pos = np.add.reduceat(w * positive, starts, axis=1)
    neg = np.add.reduceat(w * ~positive, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negatives scored strictly lower than each group
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    total = pos.sum(axis=1) * neg.sum(axis=1)
    return _divide(wins, total, np.nan)


def _confusion(
    y: FloatArray, flags: BoolArray, weights: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    positive = y == 1.0
    tp = weights @ (positive & flags).astype(np.float64)
    fp = weights @ (~positive & flags).astype(np.float64)
    fn = weights @ (positive & ~flags).astype(np.float64)
    tn = weights @ (~positive & ~flags).astype(np.float64)
    return tp, fp, fn, tn


def _f1(tp: FloatArray, fp: FloatArray, fn: FloatArray) -> FloatArray:
    return _divide(2 * tp, 2 * tp + fp + fn, 0.0)


def weighted_flag_metric(metric: str, y: FloatArray, flags: BoolArray, weights: FloatArray) -> FloatArray:
    """`metric` ("f1", "macro_f1", "weighted_f1", "mcc") of fixed flags under each row of `weights`.

    Matches `training.evaluate.task_figure` on the unweighted rows: NaN where it gives None (F1 with
    nothing to find and nothing flagged; the two-class figures on one class).
    """
    tp, fp, fn, tn = _confusion(y, flags, weights)
    pos, neg = tp + fn, tn + fp
    f1_pos, f1_neg = _f1(tp, fp, fn), _f1(tn, fn, fp)
    if metric == "f1":
        return np.where(2 * tp + fp + fn > 0, f1_pos, np.nan)
    if metric == "macro_f1":
        value = (f1_pos + f1_neg) / 2
    elif metric == "weighted_f1":
        value = _divide(pos * f1_pos + neg * f1_neg, pos + neg, np.nan)
    elif metric == "mcc":
        den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        value = _divide(tp * tn - fp * fn, den, 0.0)
    else:
        raise ValueError(f"unknown metric {metric!r}")
    return np.where((pos > 0) & (neg > 0), value, np.nan)


def mean_interval(
    values: Sequence[float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of per-row values (e.g. each post's span F1)."""
    _check(resamples, level)
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or not len(x):
        raise ValueError("values must be a non-empty 1-D sequence")
    counts = _counts(np.random.default_rng(seed), [np.arange(len(x))], len(x), resamples)
    interval = _interval(counts @ x / len(x), level)
    return float(interval["low"] or 0.0), float(interval["high"] or 0.0)


def _figure_specs(inputs: EvalInputs, tasks: Mapping[str, Any]) -> Iterator[tuple[str, str, BoolArray, int]]:
    """(figure name, metric, test rows, label column) of every figure with both classes on its rows."""
    corpus = np.asarray(inputs.corpus)
    for j, label in enumerate(inputs.labels):
        known = ~np.isnan(inputs.y[:, j])
        yield f"roc_auc/{label}", "roc_auc", known, j
        for name in sorted(set(corpus[known].tolist())):
            yield f"roc_auc/{label}/{name}", "roc_auc", known & (corpus == name), j
    for name, task in tasks.items():
        if task.label in inputs.labels:
            j = inputs.labels.index(task.label)
            yield name, task.metric, (corpus == task.corpus) & ~np.isnan(inputs.y[:, j]), j


def _both_classes(y: FloatArray) -> bool:
    return bool((y == 1.0).any() and (y == 0.0).any())


class _Figures:
    """Every headline figure of one model's evaluation, computable under any resample's row counts."""

    def __init__(self, inputs: EvalInputs, tasks: Mapping[str, Any]) -> None:
        self.inputs = inputs
        self.cuts = inputs.served_cuts()
        self.specs = [
            (name, metric, rows, j)
            for name, metric, rows, j in _figure_specs(inputs, tasks)
            if _both_classes(inputs.y[rows, j])
        ]
        corpus = np.asarray(inputs.corpus)
        self.groups = [np.flatnonzero(corpus == name) for name in sorted(set(corpus.tolist()))]
        self.bias: tuple[FloatArray, FloatArray, BoolArray] | None = None
        if inputs.bias_y is not None and inputs.bias_scores is not None:
            known = ~np.isnan(inputs.bias_y)
            by, bs = inputs.bias_y[known], inputs.bias_scores[known]
            cut = (
                np.full(by.shape, float(inputs.thresholds[inputs.bias_label]))
                if inputs.bias_cuts is None
                else inputs.bias_cuts[known]
            )
            self.bias = (by, bs, bs >= cut)

    @property
    def n_rows(self) -> int:
        return int(self.inputs.y.shape[0])

    @property
    def n_bias(self) -> int:
        return 0 if self.bias is None else len(self.bias[0])

    def names(self) -> list[str]:
        return [name for name, *_ in self.specs] + (["bias/roc_auc", "bias/fpr"] if self.bias else [])

    def at(self, weights: FloatArray, bias_weights: FloatArray | None) -> dict[str, FloatArray]:
        """Each figure under each row of `weights` (resamples × test rows) and `bias_weights`."""
        out = {}
        y, scores = self.inputs.y, self.inputs.scores
        for name, metric, rows, j in self.specs:
            out[name] = _compute(metric, y[rows, j], scores[rows, j], self.cuts[rows, j], weights[:, rows])
        if self.bias is not None and bias_weights is not None:
            by, bs, flags = self.bias
            out["bias/roc_auc"] = weighted_auc(by, bs, bias_weights)
            out["bias/fpr"] = _flag_rate(by, flags, bias_weights)
        return out

    def values(self) -> dict[str, float]:
        """The figures on the rows themselves (every count 1): the report's figures."""
        at = self.at(np.ones((1, self.n_rows)), np.ones((1, self.n_bias)) if self.bias else None)
        return {name: float(value[0]) for name, value in at.items()}


def _resamples(
    rng: np.random.Generator, figures: _Figures, resamples: int
) -> Iterator[tuple[FloatArray, FloatArray | None]]:
    """Blocks of resamples: test-row counts drawn within each corpus, bias-row counts apart."""
    done = 0
    while done < resamples:
        size = min(_BLOCK, resamples - done)
        weights = _counts(rng, figures.groups, figures.n_rows, size)
        bias = _counts(rng, [np.arange(figures.n_bias)], figures.n_bias, size) if figures.bias else None
        yield weights, bias
        done += size


def _check(resamples: int, level: float) -> None:
    if resamples < 2:
        raise ValueError(f"resamples must be at least 2, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level}")


def _interval(samples: FloatArray, level: float) -> dict[str, float | int | None]:
    defined = samples[~np.isnan(samples)]
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail]) if len(defined) else (np.nan, np.nan)
    return {
        "low": float(low) if len(defined) else None,
        "high": float(high) if len(defined) else None,
        "undefined_resamples": int(len(samples) - len(defined)),
    }


def bootstrap_intervals(
    inputs: EvalInputs,
    tasks: Mapping[str, Any],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> dict[str, Any]:
    """Intervals of each label's ROC-AUC (pooled and per corpus), the task figures and the bias figures.

    `tasks`: name -> an object with `corpus`, `label` and `metric` (`training.evaluate.TASK_FIGURES`).
    Each figure's "value" is its value on the test rows themselves, the report's figure.
    """
    _check(resamples, level)
    figures = _Figures(inputs, tasks)
    samples: dict[str, list[FloatArray]] = {name: [] for name in figures.names()}
    for weights, bias in _resamples(np.random.default_rng(seed), figures, resamples):
        for name, value in figures.at(weights, bias).items():
            samples[name].append(value)
    values = figures.values()
    return {
        "method": METHOD,
        "resamples": resamples,
        "level": level,
        "seed": seed,
        "figures": {
            name: {"value": values[name], **_interval(np.concatenate(parts), level)}
            for name, parts in samples.items()
        },
    }


def _same_rows(a: EvalInputs, b: EvalInputs) -> bool:
    def same(x: Any, y: Any) -> bool:
        if x is None or y is None:
            return x is None and y is None
        return np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)

    return (
        a.labels == b.labels
        and same(a.y, b.y)
        and np.array_equal(np.asarray(a.corpus), np.asarray(b.corpus))
        and same(a.bias_y, b.bias_y)
    )


def paired_intervals(
    candidate: EvalInputs,
    baseline: EvalInputs,
    tasks: Mapping[str, Any],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> dict[str, Any]:
    """Intervals of candidate − baseline for each figure both have, on the same resamples of the same rows.

    A paired interval is much narrower than the two models' own intervals when both score the same
    hard and easy rows alike: it measures the difference, not each figure's sampling noise.
    Raises ValueError when the two evaluations are not of the same rows.
    """
    _check(resamples, level)
    if not _same_rows(candidate, baseline):
        raise ValueError("the candidate and the baseline were not evaluated on the same rows")
    cand, base = _Figures(candidate, tasks), _Figures(baseline, tasks)
    names = [name for name in cand.names() if name in set(base.names())]
    samples: dict[str, list[FloatArray]] = {name: [] for name in names}
    for weights, bias in _resamples(np.random.default_rng(seed), cand, resamples):
        c, b = cand.at(weights, bias), base.at(weights, bias)
        for name in names:
            samples[name].append(c[name] - b[name])
    c_values, b_values = cand.values(), base.values()
    return {
        "method": "paired " + METHOD,
        "resamples": resamples,
        "level": level,
        "seed": seed,
        "figures": {
            name: {
                "candidate": c_values[name],
                "baseline": b_values[name],
                "delta": c_values[name] - b_values[name],
                **_interval(np.concatenate(samples[name]), level),
            }
            for name in names
        },
    }


def _compute(
    metric: str, y: FloatArray, scores: FloatArray, cuts: FloatArray, weights: FloatArray
) -> FloatArray:
    if metric == "roc_auc":
        return weighted_auc(y, scores, weights)
    return weighted_flag_metric(metric, y, scores >= cuts, weights)


def _flag_rate(y: FloatArray, flags: BoolArray, weights: FloatArray) -> FloatArray:
    """Share of the negatives flagged (the bias set's NOT_BAD rows), under each resample."""
    negative = (y == 0.0).astype(np.float64)
    total = weights @ negative
    return _divide(weights @ (negative * flags), total, np.nan)
