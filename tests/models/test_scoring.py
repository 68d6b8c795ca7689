from __future__ import annotations

import numpy as np
import pytest

from models.calibration import Calibrator, fit_calibrator
from models.errors import ArtifactError, UnknownLabelError
from models.labels import LABEL_NAMES, LABELS, validate_labels
from models.registry import Registry
from models.spans import occlusion_spans


def test_label_schema_is_the_product_list() -> None:
    assert LABEL_NAMES == (
        "toxicity",
        "insult",
        "threat",
        "identity_attack",
        "profanity",
        "spam",
        "misinformation",
        "conspiracy",
    )
    assert all(label.definition.endswith(".") for label in LABELS)


def test_validate_labels() -> None:
    assert validate_labels(["spam"]) == ["spam"]
    with pytest.raises(UnknownLabelError, match="sarcasm"):
        validate_labels(["spam", "sarcasm"])


def test_model_scores_flags_and_spans(registry: Registry, tiny_model_id: str) -> None:
    model = registry.load()
    assert model.id == tiny_model_id
    preds = model.predict(["you stupid idiot", "thanks for the article"])
    assert preds[0].scores["toxicity"] > 0.5 > preds[1].scores["toxicity"]
    assert "toxicity" in preds[0].flagged and preds[1].flagged == []
    words = {"you stupid idiot"[s.start : s.end] for s in preds[0].spans if s.label == "toxicity"}
    assert any("idiot" in w or "stupid" in w for w in words)
    assert preds[1].spans == []


def test_score_batches_match_single_scoring(registry: Registry, tiny_model_id: str) -> None:
    model = registry.load()
    texts = [f"comment {i} idiot" if i % 2 else f"thanks {i}" for i in range(10)]
    batched = model.score(texts, batch_size=3)
    single = np.vstack([model.score([t]) for t in texts])
    np.testing.assert_allclose(batched, single)
    assert model.score([]).shape == (0, len(LABEL_NAMES))
    assert model.predict([]) == []


def test_platt_calibration_learns_monotone_map() -> None:
    rng = np.random.default_rng(0)
    raw = rng.uniform(0, 1, 2000)
    y = (rng.uniform(0, 1, 2000) < raw**2).astype(float)
    cal = fit_calibrator(raw, y, method="platt")
    out = cal.apply(np.array([0.1, 0.5, 0.9]))
    assert np.all(np.diff(out) > 0)
    assert out[1] < 0.5  # true P(y | 0.5) = 0.25
    assert Calibrator.from_json(cal.to_json()) == cal


def test_isotonic_calibration_roundtrip_and_single_class() -> None:
    raw = np.linspace(0, 1, 100)
    y = (raw > 0.5).astype(float)
    cal = fit_calibrator(raw, y, method="isotonic")
    assert cal.apply(np.array([0.9]))[0] > 0.9
    assert Calibrator.from_json(cal.to_json()).apply(raw).tolist() == cal.apply(raw).tolist()
    assert fit_calibrator(raw, np.zeros(100)).method == "identity"
    with pytest.raises(ArtifactError):
        Calibrator.from_json({"method": "magic"})


def test_isotonic_calibration_has_no_cliffs() -> None:
    # A rare label: 15 positives among 2,000 scores, as threat has on validation.
    rng = np.random.default_rng(0)
    raw = np.r_[rng.beta(1, 20, 1985), rng.beta(4, 6, 15)]
    y = np.r_[np.zeros(1985), np.ones(15)]
    cal = fit_calibrator(raw, y, method="isotonic")
    grid = np.linspace(0, 1, 20001)
    out = cal.apply(grid)
    assert np.all(np.diff(out) >= 0)  # monotone
    # A raw change of 0.001 moves the calibrated score by far less than a step of the staircase
    # (a plain isotonic fit jumps by up to its whole step between neighbouring scores here).
    shift = np.abs(cal.apply(np.clip(grid + 0.001, 0, 1)) - out)
    steps = np.diff(np.unique(np.round(np.array(cal.y), 3)))
    assert shift.max() < 0.5 * steps.max()
    # Still a calibration: the mean calibrated score is near the positive rate (0.75%).
    assert abs(cal.apply(raw).mean() - y.mean()) < 0.02


def test_occlusion_finds_the_word_that_matters() -> None:
    def score(texts: object) -> np.ndarray:
        return np.array([[0.9 if "idiot" in t else 0.1] for t in texts])  # type: ignore[union-attr]

    text = "well, you are an idiot today"
    spans = occlusion_spans(score, text, np.array([0.9]), [0], ["toxicity"])
    assert [(text[s.start : s.end], s.label) for s in spans] == [("idiot", "toxicity")]
    assert occlusion_spans(score, text, np.array([0.9]), [], ["toxicity"]) == []


def test_linear_word_drops_agree_with_occlusion() -> None:
    from models.spans import logit, text_words
    from tests.conftest import make_backend

    backend = make_backend()
    text = "well, you are a stupid idiot today"
    words = text_words(text)
    drops = backend.word_drops(text, words)
    assert drops.shape == (len(words), backend.coef.shape[0])
    raw = backend.predict_raw([text])[0]
    j = 0  # toxicity
    occluded = logit(raw)[None, :] - logit(backend.predict_raw([text[:s] + " " + text[e:] for s, e in words]))
    # One transform approximates one rescoring per word closely.
    assert np.corrcoef(drops[:, j], occluded[:, j])[0, 1] > 0.9
    assert int(np.argmax(drops[:, j])) == int(np.argmax(occluded[:, j]))
    assert text[slice(*words[int(np.argmax(drops[:, j]))])] in {"stupid", "idiot"}
    assert backend.word_drops(text, []).shape == (0, backend.coef.shape[0])
    # Characters that lowercase to two (offsets would drift) fall back to the original text.
    odd = "İstanbul idiot"
    assert backend.word_drops(odd, text_words(odd)).shape == (2, backend.coef.shape[0])


def test_linear_spans_need_no_rescoring(
    registry: Registry, tiny_model_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = registry.load()
    calls: list[int] = []
    original = model.backend.predict_raw

    def counting(texts):  # type: ignore[no-untyped-def]
        calls.append(len(texts))
        return original(texts)

    monkeypatch.setattr(model.backend, "predict_raw", counting)
    (pred,) = model.predict(["well, you are a stupid idiot today"])
    assert "toxicity" in pred.flagged
    assert calls == [1]  # the scoring pass only: no occlusion variants
    assert any("idiot" in "well, you are a stupid idiot today"[s.start : s.end] for s in pred.spans)
