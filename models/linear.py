"""Linear baseline backend: TF-IDF word + character n-grams and one logistic head per label."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from models.errors import ArtifactError

MODEL_FILE = "model.joblib"
# joblib pickles scikit-learn objects: an artifact only loads under the same minor version.
PINNED_LIBRARIES = ("scikit-learn",)


class LinearBackend:
    """Raw (uncalibrated) per-label probabilities from TF-IDF features and linear heads."""

    def __init__(self, word: Any, char: Any, coef: NDArray[np.float32], intercept: NDArray[np.float32]):
        if coef.ndim != 2 or intercept.shape != (coef.shape[0],):
            raise ArtifactError("linear model: coefficient shapes do not match")
        self.word = word
        self.char = char
        self.coef = coef
        self.intercept = intercept

    def features(self, texts: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF features of `texts` (word and char blocks side by side)."""
        return sp.hstack([self.word.transform(texts), self.char.transform(texts)], format="csr")

    def predict_raw(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """Uncalibrated probabilities, shape (len(texts), n_labels)."""
        if not texts:
            return np.zeros((0, self.coef.shape[0]), dtype=np.float64)
        logits = self.features(texts) @ self.coef.T.astype(np.float64) + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float64)

    def save(self, directory: Path) -> list[str]:
        """Write the model file into `directory`; returns the file names written."""
        payload = {"word": self.word, "char": self.char, "coef": self.coef, "intercept": self.intercept}
        joblib.dump(payload, directory / MODEL_FILE, compress=3)
        return [MODEL_FILE]

    @classmethod
    def load(cls, directory: Path, n_labels: int) -> LinearBackend:
        """Load from an artifact folder (files already checksum-verified)."""
        try:
            payload = joblib.load(directory / MODEL_FILE)
            backend = cls(payload["word"], payload["char"], payload["coef"], payload["intercept"])
        except ArtifactError:
            raise
        except Exception as exc:  # unpickling can fail in many ways; all mean "unusable artifact"
            raise ArtifactError(f"linear model {directory.name}: cannot load {MODEL_FILE} ({exc})") from None
        if backend.coef.shape[0] != n_labels:
            raise ArtifactError(
                f"linear model {directory.name}: {backend.coef.shape[0]} heads for {n_labels} labels"
            )
        return backend
