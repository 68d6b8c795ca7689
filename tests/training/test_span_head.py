"""The token-level span head: fitting, export as a second graph output, and serving spans from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.labels import LABEL_NAMES
from models.registry import Registry
from models.scoring import Model
from models.transformer import CONFIG_FILE, TransformerBackend
from tests.tiny_transformer import make_tiny_hf, store_transformer
from training.export import TOKEN_OUTPUT, export_onnx
from training.span_head import HEAD_FILE, THRESHOLD_GRID, SpanHead, fit_span_head

N = len(LABEL_NAMES)
FILLERS = ["you", "are", "such", "an", "what", "total", "honestly", "this", "guy", "is", "really", "a"]
WORD = "idiot"


def _rows(n: int, split: str, seed: int) -> pd.DataFrame:
    """civil_comments-like rows where the one toxic word is the annotated span, and PAN rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        words = list(rng.choice(FILLERS, size=int(rng.integers(3, 8))))
        toxic = i % 2 == 0
        if toxic:
            words.insert(int(rng.integers(0, len(words) + 1)), WORD)
        text = " ".join(words)
        spans = []
        if toxic:
            start = text.index(WORD)
            spans = [{"label": "toxicity", "start": start, "end": start + len(WORD)}]
        rows.append({"id": f"c{split}{i}", "corpus": "civil_comments", "text": text, "spans": spans})
    for i in range(4):
        text = "the elites planned the virus to control us all"
        spans = [{"label": "conspiracy", "start": 4, "end": 10}] if i % 2 == 0 else []
        rows.append({"id": f"p{split}{i}", "corpus": "pan2024", "text": text, "spans": spans})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SpanHead]:
    hf = make_tiny_hf(tmp_path_factory.mktemp("span") / "hf")
    head = fit_span_head(hf, _rows(240, "train", 0), _rows(60, "validation", 1), max_length=32, epochs=40)
    assert head is not None
    return hf, head


def test_head_is_saved_with_its_labels_and_thresholds(fitted: tuple[Path, SpanHead]) -> None:
    hf, head = fitted
    assert (hf / HEAD_FILE).is_file()
    loaded = SpanHead.load(hf)
    assert loaded is not None
    # Only labels with span annotations in both splits get a head.
    assert (
        loaded.labels
        == head.labels
        == ("toxicity", "insult", "threat", "identity_attack", "profanity", "conspiracy")
    )
    assert loaded.weight.shape == (32, len(head.labels)) and loaded.bias.shape == (len(head.labels),)
    assert all(t in THRESHOLD_GRID for t in loaded.thresholds)
    # The tiny encoder's features are enough to find the one annotated word on validation.
    assert head.report["toxicity"]["validation_char_f1_all_rows"] > 0.8


def test_no_span_corpus_means_no_head(tmp_path: Path) -> None:
    hf = make_tiny_hf(tmp_path / "hf")
    rows = pd.DataFrame([{"id": "a", "corpus": "olid", "text": "hello there", "spans": []}])
    assert fit_span_head(hf, rows, rows, max_length=32) is None
    assert not (hf / HEAD_FILE).exists()


@pytest.fixture(scope="module")
def onnx_dir(fitted: tuple[Path, SpanHead]) -> Path:
    hf, _ = fitted
    out = hf.parent / "onnx"
    export_onnx(hf, out, max_length=32, quantize=False)
    return out


def test_export_adds_the_token_output_and_its_config(onnx_dir: Path, fitted: tuple[Path, SpanHead]) -> None:
    _, head = fitted
    config = json.loads((onnx_dir / CONFIG_FILE).read_text())
    assert config["token_output"] == TOKEN_OUTPUT
    assert tuple(config["span_labels"]) == head.labels
    assert tuple(config["span_thresholds"]) == head.thresholds


def test_served_token_logits_match_the_head_on_torch_hidden_states(
    onnx_dir: Path, fitted: tuple[Path, SpanHead]
) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    hf, head = fitted
    texts = ["what an idiot you are", "a b", "honestly this guy is really a total idiot"]
    backend = TransformerBackend.load(onnx_dir, N, labels=LABEL_NAMES, threads=1)
    raw, tokens = backend.predict_raw_with_tokens(texts)
    np.testing.assert_allclose(raw, backend.predict_raw(texts), atol=1e-6)
    model = AutoModelForSequenceClassification.from_pretrained(hf).eval()
    tokenizer = AutoTokenizer.from_pretrained(hf)
    for text, tok in zip(texts, tokens, strict=True):
        enc = tokenizer(text, return_tensors="pt", return_offsets_mapping=True)
        offsets = enc.pop("offset_mapping")[0].numpy()
        with torch.inference_mode():
            hidden = model(**enc, output_hidden_states=True).hidden_states[-1][0].numpy()
        expected = 1 / (1 + np.exp(-(hidden @ head.weight + head.bias)))
        np.testing.assert_allclose(tok.probs, expected, atol=1e-4)
        # Offsets of real tokens index the text; [CLS] and [SEP] carry none.
        np.testing.assert_array_equal(tok.offsets[1:-1], offsets[1:-1])
        assert tok.offsets[0].tolist() == [0, 0] and tok.offsets[-1].tolist() == [0, 0]


def test_model_serves_head_spans_without_rescoring(
    onnx_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry(tmp_path / "registry")
    model = Model.load(registry.path(store_transformer(registry, onnx_dir)))
    assert model.span_head_labels[0] == "toxicity"
    # Flag every label: the head's labels get head spans, spam and misinformation occlusion.
    model.thresholds = np.zeros(N)
    calls: list[int] = []
    original = model.backend.predict_raw

    def counting(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return original(texts)

    monkeypatch.setattr(model.backend, "predict_raw", counting)
    text = "honestly what a total idiot"
    (prediction,) = model.predict([text])
    head_spans = [s for s in prediction.spans if s.label == "toxicity"]
    best = max(head_spans, key=lambda s: s.score)
    assert text[best.start : best.end] == WORD
    # One occlusion pass (5 word variants) for the labels without a head, none for the others.
    assert calls == [5]
    no_head = [s.label for s in prediction.spans if s.label not in model.span_head_labels]
    assert set(no_head) <= {"spam", "misinformation"}
    (plain,) = model.predict([text], spans=False)
    assert plain.spans == [] and plain.scores == prediction.scores
