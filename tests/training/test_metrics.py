"""Tests of the evaluation metrics on small synthetic arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

from training.metrics import (
    BIAS_POWER,
    FALLBACK_THRESHOLD,
    bias_metrics,
    binary_metrics,
    calibration_curve_points,
    choose_threshold,
    cross_domain_flag_rate,
    expected_calibration_error,
    expected_f1_threshold,
    macro_f1,
    mcc,
    weighted_f1,
)


def _noisy(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.float64)
    p = np.clip(0.35 * y + 0.65 * rng.random(n), 0.0, 1.0)
    return y, p


# ---- binary_metrics ------------------------------------------------------------------------------


def test_perfect_scorer_has_auc_one_and_f1_one() -> None:
    y = np.array([0, 0, 0, 1, 1], dtype=float)
    p = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    m = binary_metrics(y, p, 0.5)
    assert m["roc_auc"] == 1.0
    assert m["pr_auc"] == 1.0
    assert m["f1"] == m["precision"] == m["recall"] == 1.0
    assert m["n"] == 5
    assert m["positives"] == 2


def test_binary_metrics_match_sklearn() -> None:
    y, p = _noisy()
    m = binary_metrics(y, p, 0.5)
    pred = p >= 0.5
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert m["f1"] == pytest.approx(f1_score(y, pred))
    assert m["precision"] == pytest.approx(precision_score(y, pred))
    assert m["recall"] == pytest.approx(recall_score(y, pred))
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))


def test_binary_metrics_sample_weight_matches_sklearn() -> None:
    y, p = _noisy(seed=1)
    w = np.random.default_rng(2).uniform(0.5, 2.0, y.size)
    m = binary_metrics(y, p, 0.4, sample_weight=w)
    pred = p >= 0.4
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p, sample_weight=w))
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p, sample_weight=w))
    assert m["f1"] == pytest.approx(f1_score(y, pred, sample_weight=w))
    assert m["brier"] == pytest.approx(np.average((p - y) ** 2, weights=w))


def test_known_f1_by_hand() -> None:
    # Flagged at 0.5: rows 2, 3, 4 -> TP 2 (rows 3, 4), FP 1 (row 2), FN 1 (row 1).
    y = np.array([0, 1, 0, 1, 1], dtype=float)
    p = np.array([0.1, 0.2, 0.6, 0.7, 0.9])
    m = binary_metrics(y, p, 0.5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)


def test_threshold_is_inclusive() -> None:
    y = np.array([0.0, 1.0])
    p = np.array([0.2, 0.5])
    assert binary_metrics(y, p, 0.5)["recall"] == 1.0


def test_nan_labels_are_masked() -> None:
    y, p = _noisy(50)
    y_nan = np.concatenate([y, [np.nan, np.nan, np.nan]])
    p_nan = np.concatenate([p, [0.99, 0.01, np.nan]])  # scores of unknown rows are never read
    assert binary_metrics(y_nan, p_nan, 0.5) == binary_metrics(y, p, 0.5)


def test_single_class_gives_none_aucs_without_raising() -> None:
    m = binary_metrics(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4]), 0.5)
    assert m["roc_auc"] is None
    assert m["pr_auc"] is None
    assert m["positives"] == 0
    assert m["recall"] is None  # no positives
    assert m["precision"] is None  # nothing flagged
    assert m["f1"] is None
    assert m["ece"] == pytest.approx(0.25)


def test_nothing_flagged_gives_none_precision_and_zero_recall() -> None:
    m = binary_metrics(np.array([0.0, 1.0]), np.array([0.1, 0.2]), 0.5)
    assert m["precision"] is None
    assert m["recall"] == 0.0
    assert m["f1"] == 0.0


@pytest.mark.parametrize(
    ("y", "p", "match"),
    [
        ([], [], "empty"),
        ([0, 1], [0.5], "differ in length"),
        ([[0, 1]], [[0.5, 0.5]], "1-D"),
        ([np.nan, np.nan], [0.1, 0.2], "no known labels"),
        ([0, 0.5], [0.1, 0.2], "0 or 1"),
        ([0, 1], [0.1, 1.5], r"\[0, 1\]"),
        ([0, 1], [0.1, np.nan], "finite"),
    ],
)
def test_binary_metrics_rejects_bad_input(y: list[float], p: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        binary_metrics(np.asarray(y, dtype=float), np.asarray(p, dtype=float), 0.5)


def test_binary_metrics_rejects_bad_weights_and_threshold() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        binary_metrics([0, 1], [0.1, 0.9], 0.5, sample_weight=[1.0, -1.0])
    with pytest.raises(ValueError, match="differ in length"):
        binary_metrics([0, 1], [0.1, 0.9], 0.5, sample_weight=[1.0])
    with pytest.raises(ValueError, match="threshold"):
        binary_metrics([0, 1], [0.1, 0.9], math.nan)


# ---- calibration ---------------------------------------------------------------------------------


def test_ece_zero_for_perfectly_calibrated_bins() -> None:
    # Bin [0.2, 0.3): score 0.25, 1 positive in 4; bin [0.7, 0.8): score 0.75, 3 in 4.
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0], dtype=float)
    p = np.array([0.25] * 4 + [0.75] * 4)
    assert expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)


def test_ece_by_hand_is_weighted_by_bin_count() -> None:
    # Bin 8 (score 0.8, 6 rows, 3 positive): gap 0.3; bin 1 (score 0.1, 2 rows, no positive): gap 0.1.
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=float)
    p = np.array([0.8] * 6 + [0.1] * 2)
    assert expected_calibration_error(y, p) == pytest.approx((6 * 0.3 + 2 * 0.1) / 8)


def test_ece_score_one_falls_in_last_bin() -> None:
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == pytest.approx(0.0)


def test_calibration_curve_points() -> None:
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0, np.nan])
    p = np.array([0.25] * 4 + [0.75] * 4 + [0.5])
    curve = calibration_curve_points(y, p)
    np.testing.assert_allclose(curve.mean_predicted, [0.25, 0.75])
    np.testing.assert_allclose(curve.fraction_positive, [0.25, 0.75])
    np.testing.assert_array_equal(curve.counts, [4, 4])


def test_calibration_rejects_bad_bins() -> None:
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error([0, 1], [0.1, 0.9], n_bins=0)


# ---- choose_threshold ----------------------------------------------------------------------------


def _brute_force_best_f1(y: np.ndarray, p: np.ndarray) -> float:
    return max(float(f1_score(y, p >= t, zero_division=0.0)) for t in np.unique(p))


def test_choose_threshold_is_f1_optimal() -> None:
    y, p = _noisy(300, seed=3)
    t = choose_threshold(y, p)
    assert f1_score(y, p >= t) == pytest.approx(_brute_force_best_f1(y, p))
    assert t in p  # the cut is a score of the data, so validation predictions are reproduced


def test_choose_threshold_by_hand() -> None:
    y = np.array([0, 0, 1, 0, 1, 1], dtype=float)
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.8, 0.9])
    # F1 by cut: 0.9 -> 1/2, 0.8 -> 4/5, 0.4 -> 2/3, 0.3 -> 6/7 (best), 0.2 -> 3/4, 0.1 -> 2/3.
    assert choose_threshold(y, p) == pytest.approx(0.3)


def test_choose_threshold_ties_pick_the_highest_cut() -> None:
    # Cut 0.9 -> F1 2/3 (1 TP, 1 FN); cut 0.5 -> F1 2/3 (2 TP, 2 FP). Both tie; the higher wins.
    y = np.array([1, 0, 0, 1], dtype=float)
    p = np.array([0.9, 0.7, 0.6, 0.5])
    assert choose_threshold(y, p) == pytest.approx(0.9)
    assert choose_threshold(y[::-1], p[::-1]) == pytest.approx(0.9)


def test_choose_threshold_tolerance_keeps_the_highest_cut_near_the_best_f1() -> None:
    y = np.array([0, 0, 1, 0, 1, 1], dtype=float)
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.8, 0.9])
    # F1 by cut: 0.9 -> 0.5, 0.8 -> 0.8, 0.4 -> 0.667, 0.3 -> 0.857 (best), 0.2 -> 0.75.
    assert choose_threshold(y, p, f1_tolerance=0.05) == pytest.approx(0.3)
    assert choose_threshold(y, p, f1_tolerance=0.06) == pytest.approx(0.8)  # 0.857 - 0.8 < 0.06
    assert choose_threshold(y, p, f1_tolerance=0.4) == pytest.approx(0.9)
    y, p = _noisy(300, seed=5)
    best = f1_score(y, p >= choose_threshold(y, p))
    loose = choose_threshold(y, p, f1_tolerance=0.02)
    assert loose >= choose_threshold(y, p) and f1_score(y, p >= loose) >= best - 0.02
    assert not any(f1_score(y, p >= t) >= best - 0.02 for t in np.unique(p) if t > loose)
    with pytest.raises(ValueError, match="f1_tolerance"):
        choose_threshold(y, p, f1_tolerance=-0.1)


def test_choose_threshold_respects_max_fpr() -> None:
    y, p = _noisy(300, seed=4)
    free = choose_threshold(y, p)
    neg = y == 0
    assert np.mean(p[neg] >= free) > 0.05
    capped = choose_threshold(y, p, max_fpr=0.05)
    assert np.mean(p[neg] >= capped) <= 0.05
    assert capped > free
    allowed = [t for t in np.unique(p) if np.mean(p[neg] >= t) <= 0.05]
    best = max(f1_score(y, p >= t, zero_division=0.0) for t in allowed)
    assert f1_score(y, p >= capped) == pytest.approx(best)


def test_choose_threshold_flags_nothing_when_cap_allows_no_positive() -> None:
    y = np.array([0, 1, 1], dtype=float)
    p = np.array([0.9, 0.5, 0.4])
    t = choose_threshold(y, p, max_fpr=0.0)
    assert t > 0.9
    assert not (p >= t).any()


def test_choose_threshold_single_class_falls_back() -> None:
    assert choose_threshold(np.zeros(5), np.linspace(0, 1, 5)) == FALLBACK_THRESHOLD
    assert choose_threshold(np.array([1.0, np.nan]), np.array([0.3, 0.2])) == FALLBACK_THRESHOLD


def test_choose_threshold_with_weights_and_nan() -> None:
    y = np.array([1, 0, 0, 1, np.nan], dtype=float)
    p = np.array([0.9, 0.7, 0.6, 0.5, 0.99])
    # Unweighted, cuts 0.9 and 0.5 tie at F1 2/3. With the positive at 0.5 weighing 10, catching it
    # (cut 0.5: F1 22/24) beats cut 0.9 (F1 2/12).
    assert choose_threshold(y, p) == pytest.approx(0.9)
    assert choose_threshold(y, p, sample_weight=[1.0, 1.0, 1.0, 10.0, 1.0]) == pytest.approx(0.5)


# ---- expected_f1_threshold -----------------------------------------------------------------------


def test_expected_f1_threshold_by_hand() -> None:
    p = np.array([0.9, 0.6, 0.2, 0.1])
    # Expected positives 1.8. Cut 0.9: 2*0.9/2.8 = 0.643; 0.6: 2*1.5/3.8 = 0.789 (best);
    # 0.2: 2*1.7/4.8 = 0.708; 0.1: 2*1.8/5.8 = 0.621.
    assert expected_f1_threshold(p) == pytest.approx(0.6)
    p = np.array([0.9, 0.3, 0.2, 0.1])
    # Expected positives 1.5; cut 0.9 is best (1.8/2.5 = 0.72 against 2.4/3.5 = 0.686 at 0.3). With
    # the 0.3 row weighing 10, expected positives are 4.2: 1.8/5.2 = 0.346 at 0.9, 7.8/15.2 = 0.513
    # at 0.3 (best), 8.2/16.2 = 0.506 at 0.2.
    assert expected_f1_threshold(p) == pytest.approx(0.9)
    assert expected_f1_threshold(p, sample_weight=[1.0, 10.0, 1.0, 1.0]) == pytest.approx(0.3)


def test_expected_f1_threshold_is_half_the_best_expected_f1_on_calibrated_scores() -> None:
    rng = np.random.default_rng(7)
    p = rng.beta(0.3, 6.0, 20_000)  # a rare label: mean score about 0.05
    cut = expected_f1_threshold(p)
    flagged = p >= cut
    best = 2.0 * p[flagged].sum() / (flagged.sum() + p.sum())
    assert cut == pytest.approx(best / 2.0, abs=0.01)
    # Observed labels drawn from those chances agree with it: no cut does much better.
    y = (rng.random(p.size) < p).astype(float)
    assert f1_score(y, flagged) >= _brute_force_best_f1(y, p) - 0.03


def test_expected_f1_threshold_with_no_chance_of_a_positive_flags_nothing() -> None:
    p = np.array([0.0, 0.0, 0.0])
    assert not (p >= expected_f1_threshold(p)).any()


@pytest.mark.parametrize(
    ("p", "weight", "match"),
    [
        ([0.2, 1.5], None, "calibrated"),
        ([0.2, np.nan], None, "calibrated"),
        ([], None, "empty"),
        ([0.2, 0.3], [1.0], "sample_weight"),
        ([0.2, 0.3], [1.0, -1.0], "sample_weight"),
    ],
)
def test_expected_f1_threshold_rejects_bad_arguments(
    p: list[float], weight: list[float] | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        expected_f1_threshold(p, sample_weight=weight)


def test_choose_threshold_rejects_bad_arguments() -> None:
    y, p = _noisy(20)
    with pytest.raises(ValueError, match="objective"):
        choose_threshold(y, p, objective="accuracy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_fpr"):
        choose_threshold(y, p, max_fpr=1.5)
    with pytest.raises(ValueError, match="empty"):
        choose_threshold([], [])


# ---- shared-task averages ------------------------------------------------------------------------


def test_macro_and_weighted_f1_by_hand() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=float)
    pred = np.array([1, 1, 0, 1, 0, 0, 0, 0], dtype=float)
    # Class 1: TP 2, FP 1, FN 1 -> F1 2/3; class 0: TP 4, FP 1, FN 1 -> F1 4/5.
    assert macro_f1(y, pred) == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert weighted_f1(y, pred) == pytest.approx((3 * 2 / 3 + 5 * 4 / 5) / 8)


def test_f1_averages_and_mcc_match_sklearn_and_mask_nan() -> None:
    y, p = _noisy(200, seed=5)
    pred = (p >= 0.5).astype(float)
    assert macro_f1(y, pred) == pytest.approx(f1_score(y, pred, average="macro"))
    assert weighted_f1(y, pred) == pytest.approx(f1_score(y, pred, average="weighted"))
    assert mcc(y, pred) == pytest.approx(matthews_corrcoef(y, pred))
    y_nan = np.concatenate([y, [np.nan]])
    pred_nan = np.concatenate([pred, [1.0]])
    assert macro_f1(y_nan, pred_nan) == pytest.approx(macro_f1(y, pred))


def test_hard_prediction_metrics_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="hard 0/1"):
        macro_f1([0, 1], [0.2, 0.8])
    with pytest.raises(ValueError, match="single class"):
        weighted_f1([1, 1], [1, 0])
    with pytest.raises(ValueError, match="differ in length"):
        mcc([0, 1, 1], [0, 1])


# ---- bias ----------------------------------------------------------------------------------------


def _biased_example() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three terms plus background; the negatives of 'gay' are scored as high as real positives."""
    rng = np.random.default_rng(7)
    y_parts, p_parts, id_parts = [], [], []
    for term in ("gay", "christian", "tall", None):
        n = 40
        y = np.array([1.0] * (n // 2) + [0.0] * (n // 2))
        p = np.where(y == 1.0, rng.uniform(0.7, 0.9, n), rng.uniform(0.05, 0.3, n))
        if term == "gay":
            p[y == 0.0] = rng.uniform(0.8, 0.95, n // 2)
        y_parts.append(y)
        p_parts.append(p)
        id_parts.append(np.array([term] * n, dtype=object))
    return np.concatenate(y_parts), np.concatenate(p_parts), np.concatenate(id_parts)


def test_bias_metrics_find_the_biased_term() -> None:
    y, p, ids = _biased_example()
    b = bias_metrics(y, p, ids, 0.5)
    gay, christian, tall = b["terms"]["gay"], b["terms"]["christian"], b["terms"]["tall"]
    gay_bpsn = gay["bpsn_auc"]
    assert gay_bpsn is not None
    assert gay_bpsn < 0.3
    assert gay["fpr"] == 1.0
    assert gay["bnsp_auc"] == 1.0  # its positives still outrank the background negatives
    for term in (christian, tall):
        assert term["subgroup_auc"] == term["bpsn_auc"] == 1.0
        # Background negatives include gay's high-scored ones, so BNSP of the others dips, but less.
        assert term["bnsp_auc"] is not None and term["bnsp_auc"] > gay_bpsn + 0.3
        assert term["fpr"] == 0.0
        assert term["n"] == 40
    assert b["worst_terms"][0] == "gay"
    assert set(b["worst_terms"]) == {"gay", "christian", "tall"}
    assert b["fpr"] == pytest.approx(20 / 80)  # only gay's 20 negatives of the 80 are flagged
    assert b["negatives"] == 80
    assert b["roc_auc"] == pytest.approx(roc_auc_score(y, p))


def test_bias_auc_definitions_against_direct_sklearn() -> None:
    y, p, ids = _biased_example()
    b = bias_metrics(y, p, ids, 0.5)
    sub = ids == "gay"
    bg = ~sub
    bpsn_rows = (bg & (y == 1)) | (sub & (y == 0))
    bnsp_rows = (bg & (y == 0)) | (sub & (y == 1))
    gay = b["terms"]["gay"]
    assert gay["subgroup_auc"] == pytest.approx(roc_auc_score(y[sub], p[sub]))
    assert gay["bpsn_auc"] == pytest.approx(roc_auc_score(y[bpsn_rows], p[bpsn_rows]))
    assert gay["bnsp_auc"] == pytest.approx(roc_auc_score(y[bnsp_rows], p[bnsp_rows]))


def test_bias_generalized_mean_and_final_score() -> None:
    y, p, ids = _biased_example()
    b = bias_metrics(y, p, ids, 0.5)
    bpsn = np.array([t["bpsn_auc"] for t in b["terms"].values()], dtype=float)
    expected = float(np.mean(bpsn**BIAS_POWER) ** (1 / BIAS_POWER))
    bpsn_mean = b["generalized_means"]["bpsn_auc"]
    assert bpsn_mean == pytest.approx(expected)
    assert bpsn_mean is not None
    assert bpsn_mean < float(np.mean(bpsn))  # pulled towards the worst term
    means = b["generalized_means"]
    parts = [b["roc_auc"], means["subgroup_auc"], means["bpsn_auc"], means["bnsp_auc"]]
    assert b["final_score"] == pytest.approx(0.25 * sum(float(v) for v in parts if v is not None))


def test_bias_handles_missing_identities_and_single_class_terms() -> None:
    y = np.array([1, 0, 1, 0, 0, np.nan])
    p = np.array([0.9, 0.1, 0.8, 0.2, 0.3, 0.5])
    ids = np.array(["a", "a", None, np.nan, "b", "b"], dtype=object)
    b = bias_metrics(y, p, ids, 0.5)
    assert set(b["terms"]) == {"a", "b"}
    assert b["terms"]["b"]["n"] == 1  # its unknown-label row is dropped
    assert b["terms"]["b"]["subgroup_auc"] is None
    assert b["terms"]["b"]["bpsn_auc"] == 1.0
    assert b["terms"]["b"]["bnsp_auc"] is None  # subgroup has no positive
    assert b["n"] == 5


def test_bias_rejects_bad_identities() -> None:
    with pytest.raises(ValueError, match="one entry per row"):
        bias_metrics([0, 1], [0.1, 0.9], ["a"], 0.5)
    with pytest.raises(ValueError, match="str or None"):
        bias_metrics([0, 1], [0.1, 0.9], np.array([1, 2], dtype=object), 0.5)


# ---- cross-domain --------------------------------------------------------------------------------


def test_cross_domain_flag_rate() -> None:
    assert cross_domain_flag_rate(np.array([0.1, 0.5, 0.7, 0.2]), 0.5) == 0.5
    with pytest.raises(ValueError, match="empty"):
        cross_domain_flag_rate(np.array([]), 0.5)
    with pytest.raises(ValueError, match="finite"):
        cross_domain_flag_rate(np.array([np.nan]), 0.5)


def test_per_row_thresholds() -> None:
    """One cut per row (a model's identity cuts) in every thresholded metric."""
    y = np.array([1.0, 1.0, 0.0, 0.0, np.nan])
    p = np.array([0.7, 0.7, 0.6, 0.6, 0.9])
    cuts = np.array([0.5, 0.9, 0.5, 0.9, 0.5])
    m = binary_metrics(y, p, cuts)
    assert (m["precision"], m["recall"]) == (0.5, 0.5)  # rows 0 and 2 flagged, the NaN row dropped
    assert m["roc_auc"] == binary_metrics(y, p, 0.5)["roc_auc"]
    assert cross_domain_flag_rate(p, cuts) == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="per-row thresholds for 5 rows"):
        binary_metrics(y, p, cuts[:4])
    with pytest.raises(ValueError, match="finite"):
        binary_metrics(y, p, np.array([0.5, np.nan, 0.5, 0.5, 0.5]))
    identities = np.array(["gay", "gay", None, "tall", "tall"], dtype=object)
    bias = bias_metrics(y, p, identities, cuts)
    assert bias["threshold"] is None and bias["fpr"] == 0.5
    assert bias["fpr_without_identity"] == 1.0  # the one negative naming no term is flagged
    assert bias_metrics(y, p, identities, np.full(5, 0.65))["threshold"] == 0.65
