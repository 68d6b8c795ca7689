"""The linear baseline's fit: NB-weighted heads fold into plain linear scoring, and `auto` picks on validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from tests.training.frames import unlabelled_frame
from training.linear import LinearConfig, fit_linear, label_rows, nb_ratio

RUDE = ["idiot", "moron", "clown", "fool", "loser"]
CALM = ["thanks", "report", "agree", "source", "question"]


def _frame(n: int, seed: int) -> pd.DataFrame:
    """Comments whose toxicity follows their words, with some noise so that heads can differ."""
    rng = np.random.default_rng(seed)
    df = unlabelled_frame(n)
    texts, labels = [], []
    for _ in range(n):
        toxic = rng.random() < 0.4
        words = list(rng.choice(RUDE if toxic else CALM, size=3)) + list(rng.choice(RUDE + CALM, size=3))
        texts.append(" ".join(words))
        labels.append(float(toxic) if rng.random() > 0.1 else float(not toxic))
    df["text"] = texts
    df["toxicity"] = labels
    df["weight_toxicity"] = 1.0
    return df


CONFIG = dict(word_max_features=500, char_max_features=500, C_grid=(0.5, 4.0))


def _val_auc(backend, val: pd.DataFrame) -> float:  # type: ignore[no-untyped-def]
    return float(roc_auc_score(val["toxicity"], backend.predict_raw(val["text"].tolist())[:, 0]))


def test_nb_ratio_is_the_smoothed_log_count_ratio() -> None:
    # Feature 0 only in the positive row, feature 1 only in the negative one, feature 2 in both.
    x = sp.csr_matrix(np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]))
    r = nb_ratio(x, np.array([1.0, 0.0]), np.array([2.0, 1.0]), alpha=1.0)
    pos, neg = np.array([3.0, 1.0, 3.0]), np.array([1.0, 2.0, 2.0])
    np.testing.assert_allclose(r, np.log((pos / pos.sum()) / (neg / neg.sum())), rtol=1e-6)
    assert r[0] > 0 > r[1]


def test_nb_heads_score_as_a_plain_linear_model() -> None:
    train = _frame(300, seed=1)
    backend, chosen = fit_linear(
        train, LinearConfig(nb_weighting="on", C=2.0, **CONFIG), labels=("toxicity",)
    )
    assert chosen == {"toxicity": {"C": 2.0, "nb": True}}
    # The same fit by hand: NB-weighted features, then logistic regression on them.
    x = backend.features(train["text"].tolist())
    rows, targets, weights = label_rows(train, "toxicity", LinearConfig().rare_positive_boost)
    r = nb_ratio(x[rows], targets, weights)
    head = LogisticRegression(C=2.0, solver="liblinear", max_iter=200)
    head.fit(x[rows] @ sp.diags(r), targets, sample_weight=weights)
    texts = ["idiot clown thanks", "source agree report", "fool"]
    expected = 1 / (1 + np.exp(-head.decision_function(backend.features(texts) @ sp.diags(r))))
    np.testing.assert_allclose(backend.predict_raw(texts)[:, 0], expected, rtol=1e-4)
    # Labels left out keep their neutral 0.5.
    assert np.all(backend.predict_raw(texts)[:, 1:] == 0.5)


def test_auto_keeps_whichever_features_validation_prefers() -> None:
    train, val = _frame(300, seed=2), _frame(200, seed=3)
    fits = {
        mode: fit_linear(train, LinearConfig(nb_weighting=mode, **CONFIG), val)
        for mode in ("off", "on", "auto")
    }
    aucs = {mode: _val_auc(backend, val) for mode, (backend, _) in fits.items()}
    best = max(("off", "on"), key=lambda mode: aucs[mode])
    assert aucs["auto"] == pytest.approx(aucs[best])
    assert fits["auto"][1]["toxicity"] == fits[best][1]["toxicity"]
    assert fits["auto"][1]["toxicity"]["nb"] is (best == "on")
    # Labels with no training rows get no head and no entry.
    assert set(fits["auto"][1]) == {"toxicity"}


def test_auto_without_validation_means_plain_features() -> None:
    _, chosen = fit_linear(_frame(200, seed=4), LinearConfig(nb_weighting="auto", **CONFIG))
    assert chosen == {"toxicity": {"C": LinearConfig().C, "nb": False}}


def test_unknown_nb_weighting_is_refused() -> None:
    with pytest.raises(ValueError, match="nb_weighting must be one of off, on, auto"):
        LinearConfig(nb_weighting="maybe")
