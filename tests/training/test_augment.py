from __future__ import annotations

import numpy as np
import pandas as pd

from models.labels import LABEL_NAMES
from training.augment import SWAP_LABELS, SWAP_TERMS, add_identity_swaps, swap_identities


def test_swap_replaces_each_term_consistently_and_keeps_case_and_plural() -> None:
    rng = np.random.default_rng(0)
    text, edits = swap_identities("Muslims? The Muslim vote. MUSLIM rights, gay bars.", rng) or ("", [])
    words = text.replace("?", "").replace(".", "").replace(",", "").split()
    assert "muslim" not in text.lower() and "gay" not in text.lower()
    new_term = words[2].lower()  # "Muslim" -> the same replacement everywhere
    assert new_term in SWAP_TERMS and words[0].lower() == new_term + "s"
    assert words[2][0].isupper() and words[4] == new_term.upper()
    assert words[6].lower() != new_term and words[6].lower() in SWAP_TERMS  # another term for "gay"
    assert len(edits) == 4
    assert swap_identities("Nothing about anyone here.", rng) is None
    assert swap_identities("Old news from a straight road.", rng) is None  # ambiguous words stay


def _frame() -> pd.DataFrame:
    rows = [
        ("a", "civil_comments", "I hate gay people", 1.0, 1.0),
        ("b", "civil_comments", "Nice weather today", 0.0, 1.0),
        ("c", "constraint", "Indian officials report 500 cases", 0.0, 0.3),
        ("d", "pan2024", "The jewish cabal runs the world", np.nan, 0.0),  # no toxicity label
    ]
    data: dict[str, list[object]] = {
        "id": [r[0] for r in rows],
        "corpus": [r[1] for r in rows],
        "text": [r[2] for r in rows],
        "split": ["train"] * len(rows),
    }
    for label in LABEL_NAMES:
        data[label] = [np.nan] * len(rows)
        data[f"weight_{label}"] = [0.0] * len(rows)
    data["toxicity"] = [r[3] for r in rows]
    data["weight_toxicity"] = [r[4] for r in rows]
    data["identity_attack"] = [1.0, 0.0, np.nan, np.nan]
    data["weight_identity_attack"] = [1.0, 1.0, 0.0, 0.0]
    data["threat"] = [1.0, 0.0, np.nan, np.nan]
    data["weight_threat"] = [1.0, 1.0, 0.0, 0.0]
    data["misinformation"] = [np.nan, np.nan, 0.0, np.nan]
    data["weight_misinformation"] = [0.0, 0.0, 1.0, 0.0]
    data["soft_threat"] = [0.8, np.nan, np.nan, np.nan]
    data["spans"] = [[{"label": "identity_attack", "start": 7, "end": 17}], [], [], []]
    return pd.DataFrame(data)


def test_only_toxicity_labelled_identity_rows_get_a_copy_with_the_same_labels_and_moved_spans() -> None:
    assert SWAP_LABELS == ("toxicity", "insult", "identity_attack")
    df = _frame()
    out = add_identity_swaps(df, seed=1)
    copies = out.iloc[len(df) :]
    assert sorted(copies["id"]) == ["a#swap", "c#swap"]
    a = copies[copies["id"] == "a#swap"].iloc[0]
    assert a["toxicity"] == 1.0 and a["identity_attack"] == 1.0 and a["weight_toxicity"] == 1.0
    assert a["text"].startswith("I hate ") and a["text"].endswith(" people") and "gay" not in a["text"]
    (span,) = a["spans"]
    assert a["text"][span["start"] : span["end"]] == a["text"][7:]  # "<group> people", moved with the text
    c = copies[copies["id"] == "c#swap"].iloc[0]
    assert c["toxicity"] == 0.0 and c["weight_toxicity"] == 0.3 and "Indian" not in c["text"]
    assert out.iloc[: len(df)].equals(df)  # the originals are untouched
    assert add_identity_swaps(df, seed=1)["text"].tolist() == out["text"].tolist()  # seeded


def test_a_copy_masks_the_labels_outside_swap_labels() -> None:
    df = _frame()
    out = add_identity_swaps(df, seed=1)
    a = out[out["id"] == "a#swap"].iloc[0]
    c = out[out["id"] == "c#swap"].iloc[0]
    # threat (and its soft target) and misinformation are not carried into the copies ...
    assert np.isnan(a["threat"]) and a["weight_threat"] == 0.0 and np.isnan(a["soft_threat"])
    assert np.isnan(c["misinformation"]) and c["weight_misinformation"] == 0.0
    # ... while the originals keep them
    original = out[out["id"] == "a"].iloc[0]
    assert original["threat"] == 1.0 and original["weight_threat"] == 1.0 and original["soft_threat"] == 0.8
    assert out[out["id"] == "c"].iloc[0]["weight_misinformation"] == 1.0
