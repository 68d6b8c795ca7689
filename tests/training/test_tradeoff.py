from __future__ import annotations

import numpy as np
import pytest

from training import metrics
from training.tradeoff import TASKS, ceiling, validated_cut


@pytest.mark.parametrize("metric", [metrics.macro_f1, metrics.weighted_f1, metrics.mcc])
def test_ceiling_is_the_best_value_at_any_cut_and_names_that_cut(metric) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.3).astype(np.float64)
    scores = np.clip(0.5 * y + rng.normal(0.3, 0.25, 300), 0, 1)
    best, cut = ceiling(y, scores, metric)
    assert best == pytest.approx(metric(y, (scores >= cut).astype(np.float64)))
    for c in np.linspace(-0.1, 1.1, 241):  # no cut, between the scores or beyond them, does better
        assert metric(y, (scores >= c).astype(np.float64)) <= best + 1e-12


def test_ceiling_of_a_perfect_ranking_is_perfect() -> None:
    y = np.array([0, 0, 1, 1, 0, 1], dtype=np.float64)
    scores = np.array([0.1, 0.2, 0.7, 0.9, 0.3, 0.8])
    assert ceiling(y, scores, metrics.macro_f1) == (pytest.approx(1.0), pytest.approx(0.7))


def test_the_task_figures_are_the_evaluations_own() -> None:
    """TASKS mirrors `task_metrics`: the same figures, computed the same way at the same cuts."""
    import pandas as pd

    from models.labels import LABEL_NAMES
    from training.evaluate import task_metrics

    rng = np.random.default_rng(5)
    frames = []
    for corpus, label, _ in TASKS.values():
        frame = pd.DataFrame({"corpus": corpus, "text": "x", label: (rng.random(40) < 0.4).astype(float)})
        frames.append(frame)
    test = pd.concat(frames, ignore_index=True).reindex(columns=["corpus", "text", *LABEL_NAMES])
    scores = rng.random((len(test), len(LABEL_NAMES)))
    cuts = np.full_like(scores, 0.5)
    expected = task_metrics(LABEL_NAMES, test, scores, cuts)
    assert set(TASKS) == {name for name, value in expected.items() if value is not None}
    for name, (corpus, label, metric) in TASKS.items():
        rows = ((test["corpus"] == corpus) & test[label].notna()).to_numpy()
        j = LABEL_NAMES.index(label)
        y = test.loc[rows, label].to_numpy(dtype=np.float64)
        assert metric(y, (scores[rows, j] >= 0.5).astype(np.float64)) == pytest.approx(expected[name])


def test_the_validated_cut_is_chosen_on_validation_and_only_scored_on_test() -> None:
    y_val = np.array([0, 0, 1, 1], dtype=np.float64)
    s_val = np.array([0.1, 0.3, 0.6, 0.9])  # separable at 0.6
    y_test = np.array([0, 1, 1, 0], dtype=np.float64)
    s_test = np.array([0.2, 0.5, 0.7, 0.65])  # test would prefer 0.5; validation's 0.6 is used
    cut, value = validated_cut(y_val, s_val, y_test, s_test, metrics.macro_f1)
    assert cut == pytest.approx(0.6)
    assert value == pytest.approx(metrics.macro_f1(y_test, (s_test >= 0.6).astype(np.float64)))
    assert value < ceiling(y_test, s_test, metrics.macro_f1)[0]
