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
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from models.artifact import ArtifactInfo
from models.errors import ArtifactError
from models.identity import mentions_identity
from models.spans import Span, occlusion_spans, spans_from_drops, text_words, token_spans

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
    if info.kind == "ensemble":
        from models import ensemble

        _check_versions(info, ensemble.PINNED_LIBRARIES)
        return ensemble.EnsembleBackend.load(directory, info.labels)
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

    def cuts(self, texts: Sequence[str]) -> FloatArray:
        """The cut each text's score is held to, shape (len(texts), n_labels).

        The label's threshold, except where the artifact has an identity cut and the text names an
        identity group: then that label's identity threshold (see models.identity).
        """
        cuts = np.tile(self.thresholds, (len(texts), 1))
        identity = self.info.identity_cut
        if identity is not None and len(texts):
            named = mentions_identity(texts, identity.terms)
            for name, value in identity.thresholds.items():
                cuts[named, self.labels.index(name)] = value
        return cuts

    def flags(self, scores: FloatArray, texts: Sequence[str]) -> NDArray[np.bool_]:
        """Boolean (n, L): score at or above the text's cut for the label (`cuts`)."""
        if len(texts) != len(scores):
            raise ValueError(f"{len(scores)} rows of scores for {len(texts)} texts")
        return np.asarray(scores >= self.cuts(texts), dtype=np.bool_)

    @property
    def span_head_labels(self) -> tuple[str, ...]:
        """Labels whose spans come from the backend's token-level head (no rescoring needed)."""
        return tuple(getattr(self.backend, "span_labels", ()))

    def _raw_and_tokens(self, texts: list[str], batch_size: int = 256) -> tuple[FloatArray, list[Any]]:
        fn = self.backend.predict_raw_with_tokens  # type: ignore[attr-defined]
        raws, tokens = [np.zeros((0, len(self.labels)))], []
        for i in range(0, len(texts), batch_size):
            raw, tok = fn(texts[i : i + batch_size])
            raws.append(raw)
            tokens.extend(tok)
        return np.vstack(raws), tokens

    def predict(self, texts: Sequence[str], *, spans: bool = True) -> list[Prediction]:
        """Scores, flagged labels and (optionally) explaining spans for each text.

        Spans of the labels the backend's token head covers come from that head (one forward pass
        in all); the other flagged labels by the backend's explainer: a linear one gives each word's
        effect from one transform (`word_drops`), any other is rescored once per word (occlusion).
        """
        texts = list(texts)
        head = self.span_head_labels if spans else ()
        if head:
            raw, tokens = self._raw_and_tokens(texts)
        else:
            raw, tokens = self.raw_scores(texts), [None] * len(texts)
        head_index = {name: k for k, name in enumerate(head)}
        head_thresholds = tuple(getattr(self.backend, "span_thresholds", ()))
        scores = self.calibrate(raw)
        flags = self.flags(scores, texts)
        results = []
        for text, raw_row, row, row_flags, tok in zip(texts, raw, scores, flags, tokens, strict=True):
            flagged_idx = [j for j in range(len(self.labels)) if row_flags[j]]
            text_spans: list[Span] = []
            if spans:
                by_head = [j for j in flagged_idx if self.labels[j] in head_index]
                for j in by_head:
                    k = head_index[self.labels[j]]
                    text_spans.extend(
                        token_spans(text, tok.offsets, tok.probs[:, k], head_thresholds[k], self.labels[j])
                    )
                rest = [j for j in flagged_idx if j not in by_head]
                if rest:
                    # Occlusion reads raw scores: calibration maps (isotonic) are flat in places and
                    # would hide the effect of removing a word. A backend may name a cheaper
                    # `explainer` to rescore with (the ensemble: its linear half, ~30x faster).
                    explainer: Backend = getattr(self.backend, "explainer", self.backend)
                    words = text_words(text)
                    if len(words) >= 2 and hasattr(explainer, "word_drops"):
                        # A linear explainer gives every word's effect from one transform: no rescoring.
                        drops = explainer.word_drops(text, words)
                        text_spans.extend(spans_from_drops(text, words, drops, rest, self.labels))
                    else:
                        base = raw_row if explainer is self.backend else explainer.predict_raw([text])[0]
                        text_spans.extend(
                            occlusion_spans(explainer.predict_raw, text, base, rest, self.labels)
                        )
            results.append(
                Prediction(
                    scores={name: float(row[j]) for j, name in enumerate(self.labels)},
                    flagged=[self.labels[j] for j in flagged_idx],
                    spans=text_spans,
                )
            )
        return results
