"""Training frames for unit tests: every label unknown until a test sets it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.labels import LABEL_NAMES


def unlabelled_frame(n: int, corpus: str = "civil_comments") -> pd.DataFrame:
    """`n` rows of one corpus with the label, soft and weight columns of every label, all unknown."""
    data: dict[str, object] = {"text": [f"comment {i}" for i in range(n)], "corpus": [corpus] * n}
    for label in LABEL_NAMES:
        data[label] = np.nan
        data[f"soft_{label}"] = np.nan
        data[f"weight_{label}"] = 0.0
    return pd.DataFrame(data)
