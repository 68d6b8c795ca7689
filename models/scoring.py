"""The scoring core shared by the service, `moderation score` and evaluation.

`Model` wraps a backend (raw per-label probabilities) with the artifact's calibration and
thresholds. Nothing else turns raw outputs into served scores, so what is evaluated is
exactly what is served.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from models.artifact import ArtifactInfo
from models.errors import ArtifactError
from models.spans import Span, occlusion_spans

FloatArray = NDArray[np.float64]


class Backend(Protocol):
    """What a model kind provides: uncalibrated probabilities in the artifact's label order."""

    def predict_raw(self, texts: Sequence[str]) -> FloatArray: ...


@dataclass(frozen=True)
class Prediction:
    """Scores, flagged labels and explaining spans for one text."""

    scores: dict[str, float]
    flagged: list[str]
    spans: list[Span]


def library_version(name: str) -> str:
    """Installed version of a distribution, or 'absent'."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _load_backend(info: ArtifactInfo, directory: Path) -> Backend:
    # An explicit mapping per kind; imports are local so serving a linear model never pulls in ONNX.
    if info.kind == "linear":
        from models import linear

        _check_versions(info, linear.PINNED_LIBRARIES)
        return linear.LinearBackend.load(directory, len(info.labels))
    if info.kind == "transformer":
        from models import transformer

        _check_versions(info, transformer.PINNED_LIBRARIES)
        return transformer.TransformerBackend.load(directory, len(info.labels), labels=info.labels)
    raise ArtifactError(f"artifact {info.id}: kind {info.kind!r} cannot be served by this version")


def _check_versions(info: ArtifactInfo, libraries: Sequence[str]) -> None:
    for lib in libraries:
        recorded = info.versions.get(lib)
        installed = library_version(lib)
        if recorded is None or _minor(recorded) != _minor(installed):
            raise ArtifactError(
                f"artifact {info.id} was saved with {lib} {recorded}, but {installed} is installed; "
                "retrain it or install the recorded version"
            )


class Model:
    """A loaded artifact: calibrated scores, flags at the artifact's thresholds, spans."""

    def __init__(self, info: ArtifactInfo, backend: Backend):
        self.info = info
        self.backend = backend
        self.labels = info.labels
        self.thresholds = np.array([info.thresholds[name] for name in info.labels], dtype=np.float64)

    @classmethod
    def load(cls, directory: Path) -> Model:
        """Load and verify the artifact in `directory`."""
        info = ArtifactInfo.read(directory)
        info.verify_files()
        return cls(info, _load_backend(info, directory))

    @property
    def id(self) -> str:
        return self.info.id

    def calibrate(self, raw: FloatArray) -> FloatArray:
        """Apply the artifact's per-label calibration to raw probabilities (n, L)."""
        out = np.empty_like(raw, dtype=np.float64)
        for j, name in enumerate(self.labels):
            calibrator = self.info.calibration.get(name)
            out[:, j] = raw[:, j] if calibrator is None else calibrator.apply(raw[:, j])
        return out

    def raw_scores(self, texts: Sequence[str], batch_size: int = 256) -> FloatArray:
        """Uncalibrated backend probabilities, shape (len(texts), n_labels), in batches."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float64)
        return np.vstack(
            [self.backend.predict_raw(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
        )

    def score(self, texts: Sequence[str], batch_size: int = 256) -> FloatArray:
        """Calibrated probabilities, shape (len(texts), n_labels)."""
        return self.calibrate(self.raw_scores(texts, batch_size))

    def flags(self, scores: FloatArray) -> NDArray[np.bool_]:
        """Boolean (n, L): score at or above the label's threshold."""
        return np.asarray(scores >= self.thresholds, dtype=np.bool_)

    def predict(self, texts: Sequence[str], *, spans: bool = True) -> list[Prediction]:
        """Scores, flagged labels and (optionally) occlusion spans for each text."""
        texts = list(texts)
        raw = self.raw_scores(texts)
        scores = self.calibrate(raw)
        flags = self.flags(scores)
        results = []
        for text, raw_row, row, row_flags in zip(texts, raw, scores, flags, strict=True):
            flagged_idx = [j for j in range(len(self.labels)) if row_flags[j]]
            # Occlusion reads the raw scores: calibration maps (isotonic) are flat in places and
            # would hide the effect of removing a word.
            text_spans = (
                occlusion_spans(self.backend.predict_raw, text, raw_row, flagged_idx, self.labels)
                if spans
                else []
            )
            results.append(
                Prediction(
                    scores={name: float(row[j]) for j, name in enumerate(self.labels)},
                    flagged=[self.labels[j] for j in flagged_idx],
                    spans=text_spans,
                )
            )
        return results
