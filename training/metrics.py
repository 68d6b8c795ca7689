"""Evaluation metrics for the moderation labels: numpy arrays in, plain Python numbers out.

Conventions shared by every function here:

- Labels are 0/1 floats; NaN means "this corpus does not judge this label" and the row is left
  out of that label's metrics (never counted as 0).
- A row is flagged when its score is ``>= threshold``, the same rule the service applies.
- Figures that are undefined on the given rows (an AUC with one class, precision with nothing
  flagged) are ``None``, never NaN and never a made-up 0.
- Empty, misshapen or out-of-range input raises ``ValueError`` with the reason.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import average_precision_score, f1_score, matthews_corrcoef, roc_auc_score

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

DEFAULT_N_BINS = 10
FALLBACK_THRESHOLD = 0.5
# Power of the generalized mean in the Jigsaw Unintended Bias final metric: it pulls the mean
# towards the worst identity term.
BIAS_POWER = -5.0
BIAS_WEIGHT = 0.25
N_WORST_TERMS = 5
BIAS_AUC_NAMES: tuple[str, str, str] = ("subgroup_auc", "bpsn_auc", "bnsp_auc")
# F1 values closer than this are a tie (they differ only by float rounding of equal fractions).
_TIE_TOLERANCE = 1e-12


class CalibrationCurve(NamedTuple):
    """Reliability-diagram points for the non-empty equal-width bins."""

    mean_predicted: FloatArray
    fraction_positive: FloatArray
    counts: NDArray[np.int64]


class TermBias(TypedDict):
    """Bias figures of one identity term."""

    n: int
    positives: int
    subgroup_auc: float | None
    bpsn_auc: float | None
    bnsp_auc: float | None
    fpr: float | None


class BiasMetrics(TypedDict):
    """Overall and per-identity-term bias figures (Jigsaw Unintended Bias definitions)."""

    n: int
    positives: int
    negatives: int
    threshold: float | None  # None: rows held to different cuts (identity cuts)
    roc_auc: float | None
    fpr: float | None
    fpr_without_identity: float | None
    terms: dict[str, TermBias]
    power: float
    generalized_means: dict[str, float | None]
    final_score: float | None
    worst_terms: list[str]


class _Prepared(NamedTuple):
    y: FloatArray
    scores: FloatArray
    weights: FloatArray
    known: BoolArray


def _as_1d_float(values: ArrayLike, name: str) -> FloatArray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    return arr


def _check_threshold(threshold: float) -> float:
    value = float(threshold)
    if not math.isfinite(value):
        raise ValueError(f"threshold must be finite, got {threshold!r}")
    return value


def _cuts(threshold: float | ArrayLike, n: int) -> FloatArray:
    """One cut per row: a scalar threshold repeated, or per-row cuts (e.g. a model's identity cuts)."""
    if np.ndim(threshold) == 0:
        return np.full(n, _check_threshold(threshold))  # type: ignore[arg-type]
    cuts = _as_1d_float(threshold, "threshold")
    if cuts.shape[0] != n:
        raise ValueError(f"{cuts.shape[0]} per-row thresholds for {n} rows")
    if not np.isfinite(cuts).all():
        raise ValueError("per-row thresholds must be finite")
    return cuts


def _reported_threshold(cuts: FloatArray) -> float | None:
    """The single cut, for the report; None when the rows were held to different cuts."""
    return float(cuts[0]) if cuts.size and np.all(cuts == cuts[0]) else None


def _prepare(
    y: ArrayLike, scores: ArrayLike, sample_weight: ArrayLike | None = None, *, probabilities: bool
) -> _Prepared:
    """Validate the inputs and keep only the rows whose label is known (not NaN)."""
    y_arr = _as_1d_float(y, "y")
    s_arr = _as_1d_float(scores, "scores")
    if s_arr.shape != y_arr.shape:
        raise ValueError(f"y and scores differ in length: {y_arr.shape[0]} vs {s_arr.shape[0]}")
    if sample_weight is None:
        w_arr = np.ones_like(y_arr)
    else:
        w_arr = _as_1d_float(sample_weight, "sample_weight")
        if w_arr.shape != y_arr.shape:
            raise ValueError(f"y and sample_weight differ in length: {y_arr.shape[0]} vs {w_arr.shape[0]}")
        if not np.isfinite(w_arr).all() or (w_arr < 0).any():
            raise ValueError("sample_weight must be finite and non-negative")
    known = ~np.isnan(y_arr)
    if not known.any():
        raise ValueError("y has no known labels (all NaN)")
    y_k, s_k, w_k = y_arr[known], s_arr[known], w_arr[known]
    if not np.isin(y_k, (0.0, 1.0)).all():
        raise ValueError("y must be 0 or 1 (NaN for unknown)")
    if not np.isfinite(s_k).all():
        raise ValueError("scores must be finite on rows with a known label")
    if probabilities and ((s_k < 0.0) | (s_k > 1.0)).any():
        raise ValueError("scores must be probabilities in [0, 1]")
    if w_k.sum() <= 0.0:
        raise ValueError("sample_weight sums to zero on the rows with a known label")
    return _Prepared(y_k, s_k, w_k, known)


def _prepare_predictions(y: ArrayLike, pred: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Validate hard 0/1 predictions against labels; drop rows with an unknown label."""
    pred_arr = _as_1d_float(pred, "pred")
    if not np.isin(pred_arr, (0.0, 1.0)).all():
        raise ValueError("pred must be hard 0/1 predictions")
    prepared = _prepare(y, pred_arr, probabilities=True)
    if not _has_both_classes(prepared.y, prepared.weights):
        raise ValueError("y has a single class; the two-class F1/MCC averages are undefined")
    return prepared.y, prepared.scores


def _has_both_classes(y: FloatArray, w: FloatArray) -> bool:
    return bool(w[y == 1.0].sum() > 0.0 and w[y == 0.0].sum() > 0.0)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0.0 else None


def _bin_index(p: FloatArray, n_bins: int) -> NDArray[np.intp]:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    # Equal-width bins [k/n, (k+1)/n); p == 1.0 belongs to the last bin.
    return np.minimum((p * n_bins).astype(np.intp), n_bins - 1)


def _binned(
    y: ArrayLike, p: ArrayLike, n_bins: int, sample_weight: ArrayLike | None
) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.int64]]:
    """Per equal-width bin: total weight, weighted positives, weighted scores and row count."""
    prepared = _prepare(y, p, sample_weight, probabilities=True)
    idx = _bin_index(prepared.scores, n_bins)
    w = prepared.weights
    bin_w = np.bincount(idx, weights=w, minlength=n_bins).astype(np.float64)
    bin_y = np.bincount(idx, weights=w * prepared.y, minlength=n_bins).astype(np.float64)
    bin_p = np.bincount(idx, weights=w * prepared.scores, minlength=n_bins).astype(np.float64)
    count = np.bincount(idx, minlength=n_bins).astype(np.int64)
    return bin_w, bin_y, bin_p, count


def expected_calibration_error(
    y: ArrayLike, p: ArrayLike, n_bins: int = DEFAULT_N_BINS, *, sample_weight: ArrayLike | None = None
) -> float:
    """Expected calibration error: |fraction positive - mean score| per equal-width bin, averaged by size."""
    bin_w, bin_y, bin_p, _ = _binned(y, p, n_bins, sample_weight)
    filled = bin_w > 0
    gaps = np.abs(bin_y[filled] - bin_p[filled])  # = bin weight * |mean y - mean p|
    return float(gaps.sum() / bin_w.sum())


def calibration_curve_points(
    y: ArrayLike, p: ArrayLike, n_bins: int = DEFAULT_N_BINS, *, sample_weight: ArrayLike | None = None
) -> CalibrationCurve:
    """Mean score, fraction of positives and row count per non-empty equal-width bin, for plots."""
    bin_w, bin_y, bin_p, count = _binned(y, p, n_bins, sample_weight)
    filled = bin_w > 0
    return CalibrationCurve(
        mean_predicted=bin_p[filled] / bin_w[filled],
        fraction_positive=bin_y[filled] / bin_w[filled],
        counts=count[filled],
    )


def binary_metrics(
    y_true: ArrayLike,
    scores: ArrayLike,
    threshold: float | ArrayLike,
    sample_weight: ArrayLike | None = None,
) -> dict[str, float | int | None]:
    """Ranking, thresholded and calibration metrics of one label on the rows where it is known.

    `threshold`: one cut, or one per row (aligned with `y_true`).
    """
    y, s, w, known = _prepare(y_true, scores, sample_weight, probabilities=True)
    thr = _cuts(threshold, known.shape[0])[known]
    both = _has_both_classes(y, w)
    flagged = s >= thr
    tp = float(w[flagged & (y == 1.0)].sum())
    fp = float(w[flagged & (y == 0.0)].sum())
    fn = float(w[~flagged & (y == 1.0)].sum())
    return {
        "n": int(y.size),
        "positives": int((y == 1.0).sum()),
        "roc_auc": float(roc_auc_score(y, s, sample_weight=w)) if both else None,
        "pr_auc": float(average_precision_score(y, s, sample_weight=w)) if both else None,
        "f1": _ratio(2.0 * tp, 2.0 * tp + fp + fn),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "ece": expected_calibration_error(y, s, sample_weight=w),
        "brier": float(np.average((s - y) ** 2, weights=w)),
    }


def choose_threshold(
    y: ArrayLike,
    p: ArrayLike,
    sample_weight: ArrayLike | None = None,
    *,
    objective: Literal["f1"] = "f1",
    max_fpr: float | None = None,
    f1_tolerance: float = 0.0,
) -> float:
    """The score cut (flag when score >= cut) that maximises F1 on these rows, within an optional FPR cap.

    With `f1_tolerance`, the highest cut whose F1 is within that much of the best: on a flat F1
    curve the argmax is noise (a change of 0.0005 in F1 moved a toxicity cut from 0.50 to 0.37),
    and of the cuts that validation cannot tell apart the one that flags least is kept.
    """
    if objective != "f1":
        raise ValueError(f"unknown objective {objective!r}; supported: 'f1'")
    if max_fpr is not None and not 0.0 <= max_fpr <= 1.0:
        raise ValueError(f"max_fpr must be in [0, 1], got {max_fpr!r}")
    if not 0.0 <= f1_tolerance < 1.0:
        raise ValueError(f"f1_tolerance must be in [0, 1), got {f1_tolerance!r}")
    y_k, s, w, _ = _prepare(y, p, sample_weight, probabilities=False)
    if not _has_both_classes(y_k, w):
        logger.warning("choose_threshold: labels have a single class; falling back to %s", FALLBACK_THRESHOLD)
        return FALLBACK_THRESHOLD

    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    pos_w = (w * y_k)[order]
    neg_w = (w * (1.0 - y_k))[order]
    # A cut at a score flags every row scoring at least that much, so the confusion counts of a cut
    # are read at the last row of its run of equal scores.
    run_end = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    cuts = s_sorted[run_end]
    tp = np.cumsum(pos_w)[run_end]
    fp = np.cumsum(neg_w)[run_end]
    total_pos = float(pos_w.sum())
    total_neg = float(neg_w.sum())
    f1 = 2.0 * tp / (tp + fp + total_pos)

    if max_fpr is not None:
        allowed = fp / total_neg <= max_fpr + _TIE_TOLERANCE
        f1 = np.where(allowed, f1, -1.0)
    best = float(f1.max())
    if best <= 0.0:
        # No allowed cut catches a single positive: flagging nothing is at least as good.
        logger.warning(
            "choose_threshold: no cut within max_fpr=%s flags a positive; flagging nothing", max_fpr
        )
        return float(np.nextafter(s_sorted[0], np.inf))
    # Cuts run from the highest score down, so the first tie is the most conservative cut.
    return float(cuts[np.flatnonzero(f1 >= best - max(f1_tolerance, _TIE_TOLERANCE))[0]])


def expected_f1_threshold(p: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
    """The cut that maximises the F1 expected when calibrated scores `p` are the rows' chances of
    being positive; the labels themselves are not read.

    For a label with a handful of validation positives the observed F1 curve jumps with each one,
    and its argmax follows them (12 threat positives put one run's cut at 0.97, flagging 2). The
    expected curve depends on the labels only through the calibrator's few parameters, so it moves
    smoothly. At the optimum the cut is half the expected F1 (Lipton, Elkan & Naryanaswamy, 2014).
    """
    s = _as_1d_float(p, "p")
    if not np.all((s >= 0.0) & (s <= 1.0)):
        raise ValueError("p must hold calibrated probabilities in [0, 1]")
    w = np.ones_like(s) if sample_weight is None else _as_1d_float(sample_weight, "sample_weight")
    if w.shape != s.shape or not np.all(w >= 0.0):
        raise ValueError("sample_weight must be non-negative and match p")
    order = np.argsort(-s, kind="stable")
    s_sorted, w_sorted = s[order], w[order]
    expected_positives = float((w_sorted * s_sorted).sum())
    if expected_positives <= 0.0:
        logger.warning("expected_f1_threshold: no row has a chance of being positive; flagging nothing")
        return float(np.nextafter(s_sorted[0], np.inf))
    run_end = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    tp = np.cumsum(w_sorted * s_sorted)[run_end]
    flagged = np.cumsum(w_sorted)[run_end]
    f1 = 2.0 * tp / (flagged + expected_positives)
    return float(s_sorted[run_end][int(np.argmax(f1))])


def macro_f1(y: ArrayLike, pred: ArrayLike) -> float:
    """Unweighted mean of the F1 of both classes (OffensEval / OLID official metric)."""
    y_k, pred_k = _prepare_predictions(y, pred)
    return float(f1_score(y_k, pred_k, labels=[0.0, 1.0], average="macro", zero_division=0.0))


def weighted_f1(y: ArrayLike, pred: ArrayLike) -> float:
    """Support-weighted mean of the F1 of both classes (CONSTRAINT 2021 official metric)."""
    y_k, pred_k = _prepare_predictions(y, pred)
    return float(f1_score(y_k, pred_k, labels=[0.0, 1.0], average="weighted", zero_division=0.0))


def mcc(y: ArrayLike, pred: ArrayLike) -> float:
    """Matthews correlation coefficient of hard 0/1 predictions (0 when predictions are constant)."""
    y_k, pred_k = _prepare_predictions(y, pred)
    return float(matthews_corrcoef(y_k, pred_k))


def _auc_or_none(y: FloatArray, s: FloatArray, rows: BoolArray) -> float | None:
    y_rows = y[rows]
    if not ((y_rows == 1.0).any() and (y_rows == 0.0).any()):
        return None
    return float(roc_auc_score(y_rows, s[rows]))


def _generalized_mean(values: list[float], power: float) -> float | None:
    if not values:
        return None
    arr = np.asarray(values, dtype=np.float64)
    if power < 0 and (arr == 0.0).any():
        return 0.0
    return float(np.mean(arr**power) ** (1.0 / power))


def _term_aucs(term: TermBias) -> dict[str, float | None]:
    return {"subgroup_auc": term["subgroup_auc"], "bpsn_auc": term["bpsn_auc"], "bnsp_auc": term["bnsp_auc"]}


def _identity_codes(identities: ArrayLike, n: int) -> tuple[list[str], NDArray[np.intp]]:
    """Map each row to the index of its identity term, -1 for rows that mention none."""
    raw = np.asarray(identities, dtype=object)
    if raw.ndim != 1 or raw.shape[0] != n:
        raise ValueError(f"identities must be 1-D with one entry per row ({n}), got shape {raw.shape}")
    terms: list[str | None] = []
    for value in raw:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
            terms.append(None)
        elif isinstance(value, str):
            terms.append(value)
        else:
            raise ValueError(f"identities must be str or None/NaN, got {type(value).__name__}")
    names = sorted({t for t in terms if t is not None})
    index = {name: i for i, name in enumerate(names)}
    codes = np.fromiter((-1 if t is None else index[t] for t in terms), dtype=np.intp, count=n)
    return names, codes


def bias_metrics(
    y: ArrayLike, p: ArrayLike, identities: ArrayLike, threshold: float | ArrayLike
) -> BiasMetrics:
    """Overall AUC, false-positive rate and per-identity-term subgroup/BPSN/BNSP AUCs (Jigsaw definitions).

    `threshold`: the served cut, or one per row; `threshold` in the result is None when rows differ.
    """
    y_all = _as_1d_float(y, "y")
    prepared = _prepare(y_all, p, probabilities=False)
    cuts = _cuts(threshold, y_all.shape[0])[prepared.known]
    thr = _reported_threshold(cuts)
    names, codes_all = _identity_codes(identities, y_all.shape[0])
    y_k, s = prepared.y, prepared.scores
    codes = codes_all[prepared.known]
    positive = y_k == 1.0
    negative = ~positive
    flagged = s >= cuts
    everyone = np.ones_like(positive)

    terms: dict[str, TermBias] = {}
    for code, name in enumerate(names):
        subgroup = codes == code
        if not subgroup.any():
            continue  # every row of this term had an unknown label
        background = ~subgroup
        sub_neg = subgroup & negative
        terms[name] = {
            "n": int(subgroup.sum()),
            "positives": int((subgroup & positive).sum()),
            "subgroup_auc": _auc_or_none(y_k, s, subgroup),
            "bpsn_auc": _auc_or_none(y_k, s, (background & positive) | sub_neg),
            "bnsp_auc": _auc_or_none(y_k, s, (background & negative) | (subgroup & positive)),
            "fpr": _ratio(float((sub_neg & flagged).sum()), float(sub_neg.sum())),
        }

    means: dict[str, float | None] = {}
    for metric in BIAS_AUC_NAMES:
        values = [v for t in terms.values() if (v := _term_aucs(t)[metric]) is not None]
        means[metric] = _generalized_mean(values, BIAS_POWER)
    overall_auc = _auc_or_none(y_k, s, everyone)
    parts = [overall_auc, *means.values()]
    final = None if any(v is None for v in parts) else BIAS_WEIGHT * sum(v for v in parts if v is not None)

    def worst_key(name: str) -> tuple[float, str]:
        aucs = [v for v in _term_aucs(terms[name]).values() if v is not None]
        return (min(aucs) if aucs else math.inf, name)

    ranked = sorted((name for name in terms if worst_key(name)[0] < math.inf), key=worst_key)
    return {
        "n": int(y_k.size),
        "positives": int(positive.sum()),
        "negatives": int(negative.sum()),
        "threshold": thr,
        "roc_auc": overall_auc,
        "fpr": _ratio(float((negative & flagged).sum()), float(negative.sum())),
        # The negatives that name none of the terms (e.g. madlibs' occupation templates), apart.
        "fpr_without_identity": _ratio(
            float((negative & flagged & (codes < 0)).sum()), float((negative & (codes < 0)).sum())
        ),
        "terms": terms,
        "power": BIAS_POWER,
        "generalized_means": means,
        "final_score": final,
        "worst_terms": ranked[:N_WORST_TERMS],
    }


def cross_domain_flag_rate(p: ArrayLike, threshold: float | ArrayLike) -> float:
    """Share of rows flagged (score >= threshold, one cut or one per row) in a corpus that does not judge the label."""
    scores = _as_1d_float(p, "p")
    if not np.isfinite(scores).all():
        raise ValueError("p must be finite")
    return float(np.mean(scores >= _cuts(threshold, scores.shape[0])))


def span_chars(spans: Sequence[Any], labels: tuple[str, ...]) -> set[int]:
    """Character offsets covered by the spans (dicts or Span objects) of the given labels."""
    chars: set[int] = set()
    for span in spans:
        label = span["label"] if isinstance(span, dict) else span.label
        if label in labels:
            start, end = (span["start"], span["end"]) if isinstance(span, dict) else (span.start, span.end)
            chars.update(range(int(start), int(end)))
    return chars


def span_f1(predicted: set[int], gold: set[int]) -> float:
    """SemEval 2021 toxic-spans character F1 of one text (1.0 when both are empty)."""
    if not predicted and not gold:
        return 1.0
    if not predicted or not gold:
        return 0.0
    overlap = len(predicted & gold)
    precision, recall = overlap / len(predicted), overlap / len(gold)
    return 0.0 if overlap == 0 else 2 * precision * recall / (precision + recall)
