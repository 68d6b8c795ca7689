"""Ensemble backend: the fine-tuned transformer and the linear baseline, blended per label in logit space.

The two models err differently: the transformer reads context (sarcasm, negation, the register of a
news comment), the TF-IDF model memorises rare, decisive words (threats, slurs) and the vocabulary
of small corpora (spam, conspiracy) that one or two epochs of fine-tuning do not. Each label's raw
score is sigmoid(w * logit(p_transformer) + (1 - w) * logit(p_linear)), with w chosen on the
validation split (`training.ensemble`); the artifact's calibration and thresholds apply on top,
as for any backend. Spans come from the transformer's token-level head.

An artifact of kind "ensemble" holds both models' files side by side (they do not collide) and
`ensemble.json` with the weights.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models import linear, transformer
from models.errors import ArtifactError
from models.spans import logit

ENSEMBLE_FILE = "ensemble.json"
FORMAT = 1
PINNED_LIBRARIES = linear.PINNED_LIBRARIES + transformer.PINNED_LIBRARIES


def blend(
    p_transformer: NDArray[np.float64], p_linear: NDArray[np.float64], weights: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Per-label logit blend of two (n, L) probability arrays; `weights` (L,) go to the transformer."""
    z = weights * logit(p_transformer) + (1.0 - weights) * logit(p_linear)
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


class EnsembleBackend:
    """Raw per-label probabilities of the blended transformer and linear models."""

    def __init__(
        self,
        transformer_backend: transformer.TransformerBackend,
        linear_backend: linear.LinearBackend,
        weights: Sequence[float],
        labels: Sequence[str],
    ):
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(labels),) or not np.all((w >= 0) & (w <= 1)):
            raise ArtifactError(f"ensemble: need one weight within 0..1 per label, got {list(weights)}")
        self.transformer = transformer_backend
        self.linear = linear_backend
        self.weights = w
        self.labels = tuple(labels)

    @property
    def span_labels(self) -> tuple[str, ...]:
        return self.transformer.span_labels

    @property
    def span_thresholds(self) -> tuple[float, ...]:
        return self.transformer.span_thresholds

    @property
    def explainer(self) -> linear.LinearBackend:
        """What explains the labels the span head does not cover (spam, misinformation): the
        linear half, whose word effects come from one transform (`LinearBackend.word_drops`)
        instead of rescoring the transformer once per word."""
        return self.linear

    def predict_raw(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """Blended raw probabilities, shape (len(texts), n_labels)."""
        texts = list(texts)
        return blend(self.transformer.predict_raw(texts), self.linear.predict_raw(texts), self.weights)

    def predict_raw_with_tokens(
        self, texts: Sequence[str]
    ) -> tuple[NDArray[np.float64], list[transformer.TokenScores]]:
        """Blended raw probabilities and the transformer span head's token probabilities."""
        texts = list(texts)
        raw, tokens = self.transformer.predict_raw_with_tokens(texts)
        return blend(raw, self.linear.predict_raw(texts), self.weights), tokens

    def save(self, directory: Path) -> list[str]:
        """Write both models' files and ensemble.json into `directory`; returns the names."""
        files = self.transformer.save(directory) + self.linear.save(directory)
        data: dict[str, Any] = {
            "format": FORMAT,
            "weights": dict(zip(self.labels, map(float, self.weights), strict=True)),
        }
        (directory / ENSEMBLE_FILE).write_text(
            json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        return [*files, ENSEMBLE_FILE]

    @classmethod
    def load(cls, directory: Path, labels: Sequence[str]) -> EnsembleBackend:
        """Load from an artifact folder (files already checksum-verified)."""
        return cls(
            transformer.TransformerBackend.load(directory, len(labels), labels=labels),
            linear.LinearBackend.load(directory, len(labels)),
            read_weights(directory, labels),
            labels,
        )


def read_weights(directory: Path, labels: Sequence[str]) -> list[float]:
    """The transformer's blend weight per label, from an ensemble artifact folder's `ensemble.json`."""
    try:
        data = json.loads((directory / ENSEMBLE_FILE).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"unsupported format {data.get('format') if isinstance(data, dict) else data!r}")
        return [float(data["weights"][name]) for name in labels]
    except FileNotFoundError:
        raise ArtifactError(f"ensemble model {directory.name}: {ENSEMBLE_FILE} is missing") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"ensemble model {directory.name}: malformed {ENSEMBLE_FILE} ({exc})") from None
