from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.labels import LABEL_NAMES
from tests.training.frames import unlabelled_frame
from training.embedding_heads import (
    C_GRID,
    contrastive_pairs,
    fit_heads,
    head_scores,
    per_corpus_auc,
    three_way_weights,
)


def _with_label(df: pd.DataFrame, label: str, y: np.ndarray, weight: float = 1.0) -> pd.DataFrame:
    df[label] = y.astype(np.float64)
    df[f"weight_{label}"] = weight
    return df


def test_pairs_join_positives_or_a_positive_and_a_negative_of_native_rows_only() -> None:
    df = _with_label(unlabelled_frame(40), "threat", np.array([1.0] * 6 + [0.0] * 34))
    df.loc[30:, "weight_threat"] = 0.3  # borrowed negatives: not native, never paired
    df = _with_label(df, "spam", np.zeros(40))  # no positives: no pairs
    pairs = contrastive_pairs(df, ("threat", "spam"), pairs_per_label=200, seed=1)
    y = df["threat"].to_numpy()
    assert pairs and all(i < 30 and j < 30 for i, j, _ in pairs)
    for i, j, target in pairs:
        assert y[i] == 1.0
        assert i != j
        assert y[j] == target  # target 1: both positive; target 0: the second is a negative
    assert {t for _, _, t in pairs} == {0.0, 1.0}
    assert contrastive_pairs(df, ("threat",), 200, seed=1) == pairs  # seeded


def test_heads_learn_a_separable_label_and_pick_c_on_validation() -> None:
    rng = np.random.default_rng(0)
    n = 300
    y = (rng.random(n) < 0.3).astype(np.float64)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    x[:, 0] += 3.0 * y  # the label lives in one direction
    df = _with_label(unlabelled_frame(n), "threat", y)
    train, val = df.iloc[:200].reset_index(drop=True), df.iloc[200:].reset_index(drop=True)
    heads, chosen = fit_heads(train, x[:200], val, x[200:], boost=4.0, labels=("threat",))
    assert set(heads) == {"threat"} and chosen["threat"] in C_GRID
    scores = head_scores(heads, x[200:])
    j = LABEL_NAMES.index("threat")
    assert per_corpus_auc(val, scores, "threat")["all"] > 0.95  # type: ignore[operator]
    others = [k for k in range(len(LABEL_NAMES)) if k != j]
    assert np.all(scores[:, others] == 0.5)  # no head: no opinion


def test_three_way_weights_find_the_informative_part() -> None:
    rng = np.random.default_rng(1)
    n = 400
    y = (rng.random(n) < 0.4).astype(np.float64)
    val = _with_label(unlabelled_frame(n), "conspiracy", y)
    j = LABEL_NAMES.index("conspiracy")
    noise = [np.full((n, len(LABEL_NAMES)), 0.5) for _ in range(3)]
    for part in noise[:2]:
        part[:, j] = rng.uniform(0.01, 0.99, n)
    noise[2][:, j] = np.where(y == 1, 0.9, 0.1) + rng.uniform(-0.05, 0.05, n)
    weights, auc = three_way_weights(noise, val, "conspiracy")
    assert auc == pytest.approx(1.0)
    assert len(weights) == 3 and sum(weights) == pytest.approx(1.0)
    assert weights[2] > 0


def test_embeddings_are_normalised_and_batch_independent_and_tuning_lowers_the_loss(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from transformers import AutoModel, AutoTokenizer

    from tests.tiny_transformer import TEXTS, make_tiny_hf
    from training.embedding_heads import cached_embed, contrastive_tune, embed

    folder = make_tiny_hf(tmp_path / "hf")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder)
    x = embed(model, tokenizer, TEXTS)
    assert x.shape == (len(TEXTS), model.config.hidden_size)
    np.testing.assert_allclose((x**2).sum(1), 1.0, atol=1e-5)
    alone = np.vstack([embed(model, tokenizer, [t]) for t in TEXTS])
    np.testing.assert_allclose(alone, x, atol=1e-5)
    cached = cached_embed(model, tokenizer, TEXTS, tmp_path / "emb")
    assert len(list(tmp_path.glob("emb-*.npy"))) == 1
    np.testing.assert_allclose(cached_embed(model, tokenizer, TEXTS, tmp_path / "emb"), cached)

    # Two groups of texts that should end up similar within and dissimilar across.
    texts = [f"you are a {w}" for w in ("idiot", "moron", "fool")] + [
        f"the bridge opens {d}" for d in ("today", "soon")
    ]
    pairs = [(0, 1, 1.0), (1, 2, 1.0), (0, 2, 1.0), (0, 3, 0.0), (1, 4, 0.0), (2, 3, 0.0)] * 20
    info = contrastive_tune(model, tokenizer, texts, pairs, batch_size=6, learning_rate=1e-3)
    assert info["steps"] == 20 and info["pairs"] == 120
    assert info["last_loss"] < info["first_loss"]
