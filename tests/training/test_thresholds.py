"""Thresholds chosen on validation: F1-optimal, with the identity cut for toxicity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.labels import LABEL_NAMES
from training.metrics import choose_threshold, expected_f1_threshold
from training.options import TrainConfig
from training.train import RARE_LABEL_POSITIVES, THRESHOLD_F1_TOLERANCE, calibrate_and_threshold


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


def test_identity_cap_gives_a_stricter_cut_only_to_comments_naming_a_group() -> None:
    raw, val = _validation()
    calibrators, plain, none = calibrate_and_threshold(raw, val, "platt")
    assert none is None  # no cap, no identity cut
    _, capped, identity = calibrate_and_threshold(raw, val, "platt", identity_fpr_cap=0.05)
    assert identity is not None and set(identity.thresholds) == {"toxicity"}
    # Comments that name no group keep the F1 cut; those that do get a higher one.
    assert capped == plain
    assert identity.thresholds["toxicity"] > plain["toxicity"]
    j = LABEL_NAMES.index("toxicity")
    p = calibrators["toxicity"].apply(raw[:, j])
    named = val["text"].str.contains("gay").to_numpy()
    assert (p[named] >= plain["toxicity"]).mean() > 0.3  # F1 alone flags many of them
    assert (p[named] >= identity.thresholds["toxicity"]).mean() <= 0.05
    toxic = val["toxicity"].to_numpy() == 1.0
    assert (p[toxic] >= plain["toxicity"]).mean() > 0.95  # the toxic ones, naming no group, stay flagged


def test_identity_cut_is_never_below_the_labels_own_cut() -> None:
    raw, val = _validation()
    j = LABEL_NAMES.index("toxicity")
    named = val["text"].str.contains("gay").to_numpy()
    raw[named, j] = 0.01  # neutral identity mentions score lowest: the cap cut would be below F1's
    _, plain, identity = calibrate_and_threshold(raw, val, "platt", identity_fpr_cap=0.05)
    assert identity is not None
    assert identity.thresholds["toxicity"] == pytest.approx(plain["toxicity"])


def test_too_few_neutral_identity_rows_give_no_identity_cut() -> None:
    raw, val = _validation()
    keep = ~val["text"].str.contains("gay").to_numpy()
    keep[np.flatnonzero(~keep)[:19]] = True  # 19 neutral identity rows: under the 20 needed
    _, _, identity = calibrate_and_threshold(
        raw[keep], val[keep].reset_index(drop=True), "platt", identity_fpr_cap=0.05
    )
    assert identity is None


def test_identity_cap_is_validated() -> None:
    with pytest.raises(ValueError, match="identity_fpr_cap"):
        TrainConfig(identity_fpr_cap=1.5)


def test_a_label_with_few_validation_positives_gets_platt_and_the_expected_f1_cut() -> None:
    raw, val = _validation()
    rng = np.random.default_rng(1)
    j = LABEL_NAMES.index("threat")
    threat = np.zeros(len(val))
    threat[rng.choice(len(val), RARE_LABEL_POSITIVES - 1, replace=False)] = 1.0
    raw[:, j] = np.clip(0.25 * threat + 0.75 * rng.random(len(val)), 0.001, 0.999)
    val["threat"], val["weight_threat"] = threat, 1.0
    calibrators, thresholds, _ = calibrate_and_threshold(raw, val, "isotonic")
    assert calibrators["toxicity"].method == "isotonic"  # 200 positives: the configured method
    assert calibrators["threat"].method == "platt"
    p = calibrators["threat"].apply(raw[:, j])
    assert thresholds["threat"] == pytest.approx(expected_f1_threshold(p))
    assert thresholds["threat"] != pytest.approx(
        choose_threshold(threat, p, f1_tolerance=THRESHOLD_F1_TOLERANCE)
    )
    # One more positive and the label is calibrated like the others.
    threat[np.flatnonzero(threat == 0)[0]] = 1.0
    val["threat"] = threat
    calibrators, _, _ = calibrate_and_threshold(raw, val, "isotonic")
    assert calibrators["threat"].method == "isotonic"
