"""Comment-length windows of long PAN posts, labelled from the narrative-role spans."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.labels import LABEL_NAMES
from training.corpora import COLUMNS
from training.windows import WindowConfig, pan_windows

SENT = "This sentence has exactly eight words in it."  # 8 words


def _post(post_id: str, conspiracy: float, n_sentences: int, corpus: str = "pan2024") -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(COLUMNS, np.nan)
    row.update(id=post_id, corpus=corpus, split="train", text=" ".join([SENT] * n_sentences), spans=[])
    for name in LABEL_NAMES:
        row[name] = np.nan
    row["conspiracy"] = conspiracy
    row["weight_conspiracy"] = 1.0
    return row


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def test_critical_posts_give_negative_windows_and_short_posts_none() -> None:
    df = _frame([_post("pan2024:1", 0.0, 12), _post("pan2024:2", 0.0, 3)])
    out = pan_windows(df, {}, WindowConfig(max_words=20, max_windows_per_post=10, min_post_words=40))
    assert out["id"].tolist() == [f"pan2024:1#w{k}" for k in range(6)]  # 12 sentences, 2 per window
    assert (out["conspiracy"] == 0.0).all()
    assert all(len(t.split()) <= 20 for t in out["text"])
    assert out["weight_conspiracy"].eq(1.0).all() and out["toxicity"].isna().all()
    assert list(out.columns) == list(df.columns)


def test_conspiracy_windows_need_an_agent_and_another_role() -> None:
    df = _frame([_post("pan2024:7", 1.0, 6)])
    width = len(SENT) + 1
    roles = {
        # window 0 (sentences 0-1): AGENT + VICTIM -> positive; window 1: AGENT only -> left out;
        # window 2: no spans -> left out.
        "pan2024:7": [("AGENT", 0, 4), ("VICTIM", width, width + 4), ("AGENT", 2 * width, 2 * width + 4)],
    }
    out = pan_windows(df, roles, WindowConfig(max_words=16, min_post_words=10))
    assert out["id"].tolist() == ["pan2024:7#w0"]
    assert out["conspiracy"].tolist() == [1.0]
    assert out["text"].iloc[0] == f"{SENT} {SENT}"


def test_windows_per_post_are_capped_and_other_corpora_ignored() -> None:
    df = _frame([_post("pan2024:1", 0.0, 40), _post("olid:1", 0.0, 40, corpus="olid")])
    out = pan_windows(df, {}, WindowConfig(max_words=8, max_windows_per_post=4, min_post_words=10))
    assert len(out) == 4 and out["id"].str.startswith("pan2024:1#w").all()
    assert pan_windows(df.iloc[1:], {}).empty
