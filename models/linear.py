"""Linear baseline backend: TF-IDF word + character n-grams and one logistic head per label."""

from __future__ import annotations

import bisect
import re
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

    def word_drops(self, text: str, words: Sequence[tuple[int, int]]) -> NDArray[np.float64]:
        """How much removing each word lowers each label's logit, (len(words), n_labels), from one transform.

        The logit is a sum over n-gram features of tf-idf value x coefficient, so a word's share is
        the sum over the features it takes part in: its word unigrams, half of each word bigram
        with a neighbour, and the character n-grams of its whitespace-delimited chunk (char_wb
        n-grams never cross whitespace); a feature seen several times is split evenly over its
        occurrences. Without the word, each block's remaining features are L2-renormalised (by
        1 / sqrt(1 - the word's share of the squared norm)); the result approximates occlusion's
        drop in log-odds (idf-weighted counts aside) at one transform instead of one per word.
        """
        n_labels = self.coef.shape[0]
        drops = np.zeros((len(words), n_labels), dtype=np.float64)
        if not words:
            return drops
        row = self.features([text])
        values = dict(zip(row.indices.tolist(), row.data.tolist(), strict=True))
        starts = [s for s, _ in words]
        ends = [e for _, e in words]

        def owners(start: int, end: int) -> list[int]:
            # Words are sorted and disjoint: those overlapping [start, end).
            first = bisect.bisect_right(ends, start)
            last = bisect.bisect_left(starts, end)
            return list(range(first, last))

        occurrences: dict[int, list[list[int]]] = {}
        lowered = text.lower() if self.word.lowercase else text
        if len(lowered) != len(text):  # a few characters lowercase to two; offsets would drift
            lowered = text
        tokens = [(m.start(), m.end(), m.group()) for m in re.finditer(self.word.token_pattern, lowered)]
        low, high = self.word.ngram_range
        vocabulary = self.word.vocabulary_
        for n in range(low, high + 1):
            for k in range(len(tokens) - n + 1):
                feature = vocabulary.get(" ".join(t[2] for t in tokens[k : k + n]))
                if feature is not None and feature in values:
                    hit = owners(tokens[k][0], tokens[k + n - 1][1])
                    if hit:
                        occurrences.setdefault(feature, []).append(hit)
        offset = len(vocabulary)
        analyze = self.char.build_analyzer()
        char_vocabulary = self.char.vocabulary_
        for chunk in re.finditer(r"\S+", lowered):
            hit = owners(chunk.start(), chunk.end())
            if not hit:
                continue
            for gram in analyze(chunk.group()):
                feature = char_vocabulary.get(gram)
                if feature is not None and feature + offset in values:
                    occurrences.setdefault(feature + offset, []).append(hit)
        # Flatten to (feature, word, fraction of the feature that word owns).
        features: list[int] = []
        owner: list[int] = []
        fraction: list[float] = []
        for feature, groups in occurrences.items():
            for hit in groups:
                part = 1.0 / len(groups) / len(hit)
                for w in hit:
                    features.append(feature)
                    owner.append(w)
                    fraction.append(part)
        # Per block (word n-grams, char n-grams: each L2-normalised on its own), each word's share
        # of the logit and of the block's squared norm; removing the word rescales what is left.
        all_features = np.fromiter(values.keys(), dtype=np.intp, count=len(values))
        all_values = np.fromiter(values.values(), dtype=np.float64, count=len(values))
        contributions = self.coef[:, all_features].T.astype(np.float64) * all_values[:, None]
        is_char = all_features >= offset
        totals = np.stack([contributions[~is_char].sum(axis=0), contributions[is_char].sum(axis=0)])
        shares = np.zeros((2, len(words), n_labels), dtype=np.float64)
        squares = np.zeros((2, len(words)), dtype=np.float64)
        if features:
            feature_idx = np.asarray(features, dtype=np.intp)
            value_arr = np.asarray([values[x] for x in features], dtype=np.float64)
            weight = value_arr * np.asarray(fraction, dtype=np.float64)
            block_idx = (feature_idx >= offset).astype(np.intp)
            word_idx = np.asarray(owner, dtype=np.intp)
            np.add.at(
                shares,
                (block_idx, word_idx),
                self.coef[:, feature_idx].T.astype(np.float64) * weight[:, None],
            )
            np.add.at(squares, (block_idx, word_idx), value_arr * weight)
        remaining = 1.0 - squares
        scale = np.where(remaining > 1e-6, 1.0 / np.sqrt(np.maximum(remaining, 1e-6)), 0.0)
        without = (totals[:, None, :] - shares) * scale[:, :, None]  # each block's part with the word gone
        drops[:] = totals.sum(axis=0)[None, :] - without.sum(axis=0)
        return drops

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
