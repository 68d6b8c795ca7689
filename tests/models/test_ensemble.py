"""The ensemble backend: per-label logit blend of a transformer and a linear model, stored as one artifact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from models.ensemble import ENSEMBLE_FILE, EnsembleBackend, blend
from models.errors import ArtifactError
from models.labels import LABEL_NAMES
from models.linear import LinearBackend
from models.transformer import TransformerBackend
from tests.tiny_transformer import TEXTS, make_tiny_hf

N = len(LABEL_NAMES)


def test_blend_is_a_per_label_logit_mix() -> None:
    p_t = np.array([[0.9, 0.2], [0.5, 0.5]])
    p_l = np.array([[0.1, 0.8], [0.5, 0.99]])
    out = blend(p_t, p_l, np.array([1.0, 0.0]))
    np.testing.assert_allclose(out, [[0.9, 0.8], [0.5, 0.99]], atol=1e-9)
    # An even blend of p and 1 - p is 0.5 (logits cancel).
    np.testing.assert_allclose(blend(p_t[:1, :1], 1 - p_t[:1, :1], np.array([0.5])), [[0.5]])


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> tuple[TransformerBackend, LinearBackend]:
    from training.export import export_onnx

    root = tmp_path_factory.mktemp("ens")
    export_onnx(make_tiny_hf(root / "hf"), root / "onnx", max_length=32, quantize=False)
    word = TfidfVectorizer().fit(TEXTS)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3)).fit(TEXTS)
    width = len(word.vocabulary_) + len(char.vocabulary_)
    rng = np.random.default_rng(0)
    linear = LinearBackend(
        word, char, rng.normal(size=(N, width)).astype(np.float32), np.zeros(N, np.float32)
    )
    return TransformerBackend.load(root / "onnx", N, threads=1), linear


def test_scores_blend_both_models_and_round_trip(
    parts: tuple[TransformerBackend, LinearBackend], tmp_path: Path
) -> None:
    transformer, linear = parts
    weights = np.linspace(0, 1, N)
    backend = EnsembleBackend(transformer, linear, weights, LABEL_NAMES)
    expected = blend(transformer.predict_raw(TEXTS), linear.predict_raw(TEXTS), weights)
    np.testing.assert_allclose(backend.predict_raw(TEXTS), expected)
    names = backend.save(tmp_path)
    assert {"model.onnx", "tokenizer.json", "transformer.json", "model.joblib", ENSEMBLE_FILE} == set(names)
    saved = json.loads((tmp_path / ENSEMBLE_FILE).read_text())
    assert saved["weights"]["toxicity"] == 0.0 and saved["weights"]["conspiracy"] == 1.0
    loaded = EnsembleBackend.load(tmp_path, LABEL_NAMES)
    np.testing.assert_allclose(loaded.predict_raw(TEXTS), expected, atol=1e-6)


def test_bad_weights_and_files_are_refused(
    parts: tuple[TransformerBackend, LinearBackend], tmp_path: Path
) -> None:
    transformer, linear = parts
    with pytest.raises(ArtifactError, match=r"one weight within 0\.\.1 per label"):
        EnsembleBackend(transformer, linear, [0.5] * (N - 1), LABEL_NAMES)
    with pytest.raises(ArtifactError, match=r"one weight within 0\.\.1 per label"):
        EnsembleBackend(transformer, linear, [1.5] * N, LABEL_NAMES)
    EnsembleBackend(transformer, linear, [0.5] * N, LABEL_NAMES).save(tmp_path)
    broken = tmp_path.parent / "broken"
    shutil.copytree(tmp_path, broken)
    (broken / ENSEMBLE_FILE).write_text('{"format": 1, "weights": {"toxicity": 0.5}}')
    with pytest.raises(ArtifactError, match=r"malformed ensemble\.json"):
        EnsembleBackend.load(broken, LABEL_NAMES)
    (broken / ENSEMBLE_FILE).unlink()
    with pytest.raises(ArtifactError, match=r"ensemble\.json is missing"):
        EnsembleBackend.load(broken, LABEL_NAMES)


def test_occlusion_rescores_the_linear_half_only(
    parts: tuple[TransformerBackend, LinearBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.artifact import ArtifactInfo
    from models.calibration import Calibrator
    from models.scoring import Model

    transformer, linear = parts
    info = ArtifactInfo(
        id="ensemble-test",
        kind="ensemble",
        labels=LABEL_NAMES,
        thresholds=dict.fromkeys(LABEL_NAMES, 0.0),  # every label flagged: every label explained
        calibration={name: Calibrator() for name in LABEL_NAMES},
        files={},
        versions={},
        created_at="",
    )
    model = Model(info, EnsembleBackend(transformer, linear, [0.5] * N, LABEL_NAMES))
    calls: list[int] = []
    original = transformer.predict_raw

    def counting(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return original(texts)

    monkeypatch.setattr(transformer, "predict_raw", counting)
    (prediction,) = model.predict(["thanks for the article, you idiot"])
    assert calls == [1]  # the transformer scored the text once; no per-word rescoring
    assert prediction.spans and {s.label for s in prediction.spans} <= set(LABEL_NAMES)
