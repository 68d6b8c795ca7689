"""Bootstrap intervals: each resampled figure is the report's own figure on the resampled rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from models.labels import LABEL_NAMES
from training import metrics
from training.evaluate import TASK_FIGURES, task_metrics
from training.intervals import bootstrap_intervals, weighted_auc, weighted_flag_metric
from training.report import EvalInputs, _markdown, build_report, format_summary

# corpus -> (labels it judges, test rows): a large corpus and a small one judging the same labels.
_CORPORA = {
    "olid": (("toxicity",), 400),
    "civil_comments": (("toxicity", "threat", "identity_attack"), 400),
    "constraint": (("misinformation",), 300),
    "prct_youtube": (("conspiracy",), 40),
    "pan2024": (("conspiracy",), 300),
    "tubespam": (("spam",), 120),
}


def _inputs(seed: int = 0) -> EvalInputs:
    rng = np.random.default_rng(seed)
    corpus = np.concatenate([np.repeat(name, n) for name, (_, n) in _CORPORA.items()])
    y = np.full((len(corpus), len(LABEL_NAMES)), np.nan)
    for name, (judged, _) in _CORPORA.items():
        rows = corpus == name
        for label in judged:
            y[rows, LABEL_NAMES.index(label)] = (rng.random(rows.sum()) < 0.3).astype(float)
    # Rounded to two decimals so that tied scores occur, as they do after isotonic calibration.
    scores = np.round(np.clip(0.35 * np.nan_to_num(y) + 0.65 * rng.random(y.shape), 0, 1), 2)
    cuts = np.where(rng.random(y.shape) < 0.2, 0.6, 0.5)  # some rows held to another cut, as served
    bias_y = (rng.random(500) < 0.5).astype(float)
    return EvalInputs(
        labels=LABEL_NAMES,
        y=y,
        scores=scores,
        corpus=corpus,
        thresholds=dict.fromkeys(LABEL_NAMES, 0.5),
        bias_y=bias_y,
        bias_scores=np.round(np.clip(0.4 * bias_y + 0.6 * rng.random(500), 0, 1), 2),
        bias_identities=np.array(["gay", "muslim", None, "tall"] * 125, dtype=object),
        cuts=cuts,
        bias_cuts=np.full(500, 0.55),
    )


def _frame(inputs: EvalInputs) -> pd.DataFrame:
    return pd.DataFrame(inputs.y, columns=list(inputs.labels)).assign(corpus=inputs.corpus)


def test_weighted_auc_is_sklearns_with_the_resample_as_weights() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(200) < 0.4).astype(float)
    s = np.round(rng.random(200) * 0.6 + 0.4 * y, 1)  # heavy ties
    w = rng.multinomial(200, np.full(200, 1 / 200), size=5).astype(float)
    got = weighted_auc(y, s, w)
    for b in range(5):
        assert got[b] == pytest.approx(roc_auc_score(y, s, sample_weight=w[b]), abs=1e-12)
    assert np.isnan(weighted_auc(np.zeros(4), np.arange(4.0), np.ones((1, 4))))[0]


@pytest.mark.parametrize(
    ("metric", "reference"),
    [
        ("macro_f1", metrics.macro_f1),
        ("weighted_f1", metrics.weighted_f1),
        ("mcc", metrics.mcc),
        ("f1", lambda y, f: metrics.binary_metrics(y, f, 0.5)["f1"]),
    ],
)
def test_flag_metrics_equal_the_evaluation_on_the_resampled_rows(metric, reference) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2)
    y = (rng.random(150) < 0.3).astype(float)
    flags = rng.random(150) < 0.25 + 0.4 * y
    w = rng.multinomial(150, np.full(150, 1 / 150), size=4).astype(float)
    got = weighted_flag_metric(metric, y, flags, w)
    for b in range(4):
        rows = np.repeat(np.arange(150), w[b].astype(int))  # the resample, materialised
        assert got[b] == pytest.approx(reference(y[rows], flags[rows].astype(float)), abs=1e-12)


def test_undefined_figures_are_nan_not_zero() -> None:
    y = np.zeros(5)
    flags = np.zeros(5, dtype=bool)
    for metric in ("macro_f1", "weighted_f1", "mcc", "f1"):
        assert np.isnan(weighted_flag_metric(metric, y, flags, np.ones((1, 5))))[0]
    with pytest.raises(ValueError, match="unknown metric"):
        weighted_flag_metric("accuracy", y, flags, np.ones((1, 5)))


def test_values_are_the_reports_figures_and_lie_in_their_intervals() -> None:
    inputs = _inputs()
    result = bootstrap_intervals(inputs, TASK_FIGURES, resamples=300, seed=4)
    report = build_report(inputs, model_id="m", kind="linear")
    figures = result["figures"]
    tasks = task_metrics(inputs.labels, _frame(inputs), inputs.scores, inputs.cuts)
    assert tasks["davidson_toxicity_macro_f1"] is None  # no such rows: no interval either
    assert "davidson_toxicity_macro_f1" not in figures
    for name, value in tasks.items():
        if value is not None:
            assert figures[name]["value"] == pytest.approx(value, abs=1e-12)
    for label, m in report["labels"].items():
        if m is not None and m["roc_auc"] is not None:
            assert figures[f"roc_auc/{label}"]["value"] == pytest.approx(m["roc_auc"], abs=1e-12)
        for corpus, mc in report["per_corpus"][label].items():
            if mc["roc_auc"] is not None:
                assert figures[f"roc_auc/{label}/{corpus}"]["value"] == pytest.approx(
                    mc["roc_auc"], abs=1e-12
                )
    assert figures["bias/roc_auc"]["value"] == pytest.approx(report["bias"]["roc_auc"], abs=1e-12)
    assert figures["bias/fpr"]["value"] == pytest.approx(report["bias"]["fpr"], abs=1e-12)
    for name, f in figures.items():
        assert f["low"] <= f["value"] <= f["high"], name
        assert f["low"] < f["high"], name


def test_a_small_corpus_gets_a_wider_interval_and_a_seed_repeats() -> None:
    inputs = _inputs()
    first = bootstrap_intervals(inputs, TASK_FIGURES, resamples=300, seed=7)["figures"]

    def width(name: str) -> float:
        return first[name]["high"] - first[name]["low"]

    # Conspiracy on PRCT's 40 rows against PAN's 300, with the same signal strength.
    assert width("roc_auc/conspiracy/prct_youtube") > 1.5 * width("roc_auc/conspiracy/pan2024")
    assert bootstrap_intervals(inputs, TASK_FIGURES, resamples=300, seed=7)["figures"] == first
    other = bootstrap_intervals(inputs, TASK_FIGURES, resamples=300, seed=8)["figures"]
    assert other["olid_macro_f1"]["low"] != first["olid_macro_f1"]["low"]


def test_resamples_keep_each_corpus_size() -> None:
    """A corpus-stratified resample: the pooled figure over a fixed mix of corpora."""
    from training.intervals import _counts

    groups = [np.arange(0, 10), np.arange(10, 13)]
    counts = _counts(np.random.default_rng(0), groups, 13, 50)
    assert (counts[:, :10].sum(axis=1) == 10).all()
    assert (counts[:, 10:].sum(axis=1) == 3).all()


def test_bad_arguments_are_refused() -> None:
    inputs = _inputs()
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_intervals(inputs, TASK_FIGURES, resamples=1)
    with pytest.raises(ValueError, match="level"):
        bootstrap_intervals(inputs, TASK_FIGURES, level=1.0)


def test_the_report_shows_the_intervals() -> None:
    inputs = _inputs()
    report = build_report(inputs, model_id="m", kind="linear")
    report["task_metrics"] = task_metrics(inputs.labels, _frame(inputs), inputs.scores, inputs.cuts)
    report["intervals"] = bootstrap_intervals(inputs, TASK_FIGURES, resamples=50)
    low = report["intervals"]["figures"]["olid_macro_f1"]["low"]
    text = _markdown(report, {})
    assert "## Uncertainty: 95% intervals" in text
    assert f"| olid_macro_f1 | {report['task_metrics']['olid_macro_f1']:.3f} | [{low:.3f}," in text
    assert f"olid_macro_f1 {report['task_metrics']['olid_macro_f1']:.3f} [{low:.3f}," in format_summary(
        report
    )


def _sharper(inputs: EvalInputs, label: str) -> EvalInputs:
    """The same evaluation with one label's scores made much better (less noise)."""
    from dataclasses import replace

    j = inputs.labels.index(label)
    scores = inputs.scores.copy()
    known = ~np.isnan(inputs.y[:, j])
    scores[known, j] = np.clip(0.8 * inputs.y[known, j] + 0.2 * scores[known, j], 0, 1)
    return replace(inputs, scores=scores)


def test_a_paired_change_is_zero_against_itself_and_found_where_it_is_real() -> None:
    from training.intervals import paired_intervals
    from training.report import paired_reading

    inputs = _inputs()
    same = paired_intervals(inputs, inputs, TASK_FIGURES, resamples=200)["figures"]
    assert all(f["delta"] == 0 and f["low"] == 0 and f["high"] == 0 for f in same.values())
    assert {paired_reading(name, f) for name, f in same.items()} == {"within noise"}

    better = _sharper(inputs, "misinformation")
    paired = paired_intervals(better, inputs, TASK_FIGURES, resamples=300)["figures"]
    change = paired["roc_auc/misinformation"]
    assert change["delta"] > 0 and change["low"] > 0
    assert paired_reading("roc_auc/misinformation", change) == "better"
    mirrored = {"low": -change["high"], "high": -change["low"]}
    assert paired_reading("roc_auc/misinformation", mirrored) == "worse"
    assert paired["roc_auc/toxicity"]["delta"] == 0  # the other labels did not move
    # A flag rate that falls is a gain.
    assert paired_reading("bias/fpr", {"low": -0.01, "high": -0.002}) == "better"
    # A small change is measured more tightly than the figure itself: the rows' luck is shared.
    from dataclasses import replace

    j = inputs.labels.index("toxicity")
    nudged = inputs.scores.copy()
    nudged[:, j] = np.clip(nudged[:, j] + np.random.default_rng(9).normal(0, 0.03, len(nudged)), 0, 1)
    pair = paired_intervals(replace(inputs, scores=nudged), inputs, TASK_FIGURES, resamples=300)["figures"]
    own = bootstrap_intervals(inputs, TASK_FIGURES, resamples=300)["figures"]
    for name in ("roc_auc/toxicity", "olid_macro_f1"):
        assert pair[name]["high"] - pair[name]["low"] < 0.5 * (own[name]["high"] - own[name]["low"]), name


def test_a_paired_comparison_needs_the_same_rows() -> None:
    from dataclasses import replace

    from training.intervals import paired_intervals

    inputs = _inputs()
    y = inputs.y.copy()
    y[0, 0] = 1.0 - y[0, 0]
    with pytest.raises(ValueError, match="same rows"):
        paired_intervals(replace(inputs, y=y), inputs, TASK_FIGURES, resamples=10)


def test_scores_round_trip_and_are_refused_for_other_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from training.report import load_scores, save_scores

    inputs = _inputs()
    path = tmp_path / "eval_scores.npz"
    save_scores(path, inputs, "hash-a")
    back = load_scores(path, "hash-a")
    assert back is not None
    assert back.labels == inputs.labels
    np.testing.assert_array_equal(back.scores, inputs.scores)
    np.testing.assert_array_equal(back.cuts, inputs.cuts)
    np.testing.assert_array_equal(back.bias_cuts, inputs.bias_cuts)
    assert bootstrap_intervals(back, TASK_FIGURES, resamples=20) == bootstrap_intervals(
        inputs, TASK_FIGURES, resamples=20
    )
    assert load_scores(path, "hash-b") is None  # another test split
    assert load_scores(tmp_path / "missing.npz", "hash-a") is None
    path.write_bytes(b"not a zip file")
    assert load_scores(path, "hash-a") is None


def test_the_comparison_shows_paired_changes() -> None:
    from training.intervals import paired_intervals

    inputs = _inputs()
    better = _sharper(inputs, "misinformation")
    report = build_report(
        better, model_id="m", kind="linear", baseline=build_report(inputs, model_id="b", kind="linear")
    )
    report["comparison"]["paired"] = paired_intervals(better, inputs, TASK_FIGURES, resamples=100)
    text = _markdown(report, {})
    assert "### Paired changes: 95% intervals" in text
    row = next(line for line in text.splitlines() if line.startswith("| roc_auc/misinformation |"))
    assert row.endswith("| better |")
    assert "better roc_auc/misinformation, roc_auc/misinformation/constraint" in format_summary(report)


def test_mean_interval_of_per_post_values() -> None:
    from training.intervals import mean_interval

    rng = np.random.default_rng(0)
    small, large = rng.random(50), rng.random(2000)
    low, high = mean_interval(small)
    assert low < small.mean() < high
    low_l, high_l = mean_interval(large)
    assert high_l - low_l < 0.5 * (high - low)  # ~sqrt(40) narrower
    assert mean_interval(np.full(30, 0.4)) == pytest.approx((0.4, 0.4))
    with pytest.raises(ValueError, match="non-empty"):
        mean_interval([])
    with pytest.raises(ValueError, match="resamples"):
        mean_interval(small, resamples=0)
