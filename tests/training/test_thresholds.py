"""Thresholds chosen on validation: F1-optimal, with the identity false-positive cap for toxicity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.labels import LABEL_NAMES
from training.options import TrainConfig
from training.train import calibrate_and_threshold


def _validation() -> tuple[np.ndarray, pd.DataFrame]:
    """Toxic comments score 0.6-0.9; neutral ones 0.1-0.3, except neutral identity mentions at 0.5-0.7."""
    rng = np.random.default_rng(0)
    texts, y, raw = [], [], []
    for i in range(200):
        texts.append(f"you absolute fool number {i}")
        y.append(1.0)
        raw.append(rng.uniform(0.6, 0.9))
    for i in range(200):
        texts.append(f"nice weather today {i}")
        y.append(0.0)
        raw.append(rng.uniform(0.1, 0.3))
    for i in range(60):
        texts.append(f"as a gay man I liked this article {i}")
        y.append(0.0)
        raw.append(rng.uniform(0.5, 0.7))
    df = pd.DataFrame({"text": texts, "corpus": "civil_comments"})
    for name in LABEL_NAMES:
        df[name] = np.nan
        df[f"weight_{name}"] = 0.0
    df["toxicity"] = y
    df["weight_toxicity"] = 1.0
    scores = np.full((len(df), len(LABEL_NAMES)), 0.5)
    scores[:, LABEL_NAMES.index("toxicity")] = raw
    return scores, df


def test_identity_cap_raises_the_toxicity_cut_above_neutral_identity_mentions() -> None:
    raw, val = _validation()
    calibrators, plain = calibrate_and_threshold(raw, val, "platt")
    _, capped = calibrate_and_threshold(raw, val, "platt", identity_fpr_cap=0.05)
    assert capped["toxicity"] > plain["toxicity"]
    j = LABEL_NAMES.index("toxicity")
    p = calibrators["toxicity"].apply(raw[:, j])
    identity = val["text"].str.contains("gay").to_numpy()
    assert (p[identity] >= plain["toxicity"]).mean() > 0.3  # F1 alone flags many of them
    assert (p[identity] >= capped["toxicity"]).mean() <= 0.05
    # Labels outside the cap are untouched.
    assert {k: v for k, v in capped.items() if k != "toxicity"} == {
        k: v for k, v in plain.items() if k != "toxicity"
    }


def test_identity_cap_is_validated() -> None:
    with pytest.raises(ValueError, match="identity_fpr_cap"):
        TrainConfig(identity_fpr_cap=1.5)
