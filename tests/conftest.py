"""Shared fixtures: a tiny but real linear artifact in a temporary registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from models.artifact import ArtifactInfo
from models.calibration import Calibrator
from models.identity import IdentityCut
from models.labels import LABEL_NAMES
from models.linear import LinearBackend
from models.registry import Registry
from models.scoring import library_version

TOXIC = [
    "you are an idiot",
    "shut up you stupid idiot",
    "what a moron, idiot",
    "idiot idiot go away",
    "you stupid fool",
    "stupid moron",
]
CLEAN = [
    "thanks for the article",
    "great reporting, thank you",
    "when is the council meeting",
    "I enjoyed this story",
    "thank you for the update",
    "interesting article about the bridge",
]


def make_backend() -> LinearBackend:
    """Fit a real (tiny) linear backend: every head learns toxic-vs-clean words."""
    texts = TOXIC + CLEAN
    y = np.array([1] * len(TOXIC) + [0] * len(CLEAN))
    word = TfidfVectorizer(dtype=np.float32)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), dtype=np.float32)
    word.fit(texts)
    char.fit(texts)
    probe = LinearBackend(word, char, np.zeros((1, 1), np.float32), np.zeros(1, np.float32))
    head = LogisticRegression(C=10.0).fit(probe.features(texts), y)
    coef = np.repeat(head.coef_.astype(np.float32), len(LABEL_NAMES), axis=0)
    intercept = np.repeat(head.intercept_.astype(np.float32), len(LABEL_NAMES))
    return LinearBackend(word, char, coef, intercept)


def store_tiny_model(
    registry: Registry, threshold: float = 0.5, identity_cut: IdentityCut | None = None
) -> str:
    """Store a tiny linear artifact through the registry (with `identity_cut`, if given); returns its id."""
    backend = make_backend()
    with registry.stage("linear") as staged:
        files = backend.save(staged.path)
        staged.info = ArtifactInfo(
            id=staged.id,
            kind="linear",
            labels=LABEL_NAMES,
            thresholds=dict.fromkeys(LABEL_NAMES, threshold),
            calibration={name: Calibrator() for name in LABEL_NAMES},
            files=dict.fromkeys(files, ""),
            versions={"scikit-learn": library_version("scikit-learn")},
            created_at="2026-11-25T00:00:00+00:00",
            identity_cut=identity_cut,
        )
    return staged.id


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """An empty registry without shipped models."""
    return Registry(tmp_path / "registry", shipped_dir=None)


@pytest.fixture
def tiny_model_id(registry: Registry) -> str:
    """A tiny linear artifact, promoted to active."""
    artifact_id = store_tiny_model(registry)
    registry.promote(artifact_id)
    return artifact_id
