"""The classifier network's pooling: mean pooling trains, saves, loads, exports and scores like [CLS]."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.labels import LABEL_NAMES
from tests.tiny_transformer import TEXTS, make_tiny_hf


def _tiny_mean(directory: Path) -> Path:
    """The tiny classifier of `make_tiny_hf`, rebuilt with mean pooling and saved to `directory`."""
    import torch
    from transformers import AutoConfig, AutoTokenizer

    from training.network import MeanPoolBertForSequenceClassification

    source = make_tiny_hf(directory.parent / f"{directory.name}-cls")
    torch.manual_seed(1)
    model = MeanPoolBertForSequenceClassification(AutoConfig.from_pretrained(source))
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(source).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def mean_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_mean(tmp_path_factory.mktemp("pool") / "mean")


def _logits(model: object, tokenizer: object, texts: list[str]) -> np.ndarray:
    import torch

    enc = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")  # type: ignore[operator]
    with torch.no_grad():
        return model(**enc).logits.numpy()  # type: ignore[operator,no-any-return]


def test_folders_load_with_the_pooling_they_were_saved_with(mean_dir: Path, tmp_path: Path) -> None:
    from training.network import MeanPoolBertForSequenceClassification, load_classifier, pooling_of

    assert json.loads((mean_dir / "config.json").read_text())["classifier_pooling"] == "mean"
    assert pooling_of(mean_dir) == "mean"
    loaded = load_classifier(mean_dir)
    assert isinstance(loaded, MeanPoolBertForSequenceClassification)
    assert loaded.bert.pooler is None  # no unused [CLS] pooler weights

    cls_dir = make_tiny_hf(tmp_path / "cls")  # a folder written before the option existed
    assert "classifier_pooling" not in json.loads((cls_dir / "config.json").read_text())
    assert pooling_of(cls_dir) == "cls"
    assert not isinstance(load_classifier(cls_dir), MeanPoolBertForSequenceClassification)


def test_unknown_poolings_are_refused(mean_dir: Path, tmp_path: Path) -> None:
    from training.network import new_classifier, pooling_of
    from training.transformer import TransformerConfig

    bad = tmp_path / "bad"
    bad.mkdir()
    config = json.loads((mean_dir / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps(config | {"classifier_pooling": "max"}))
    with pytest.raises(ValueError, match="unknown classifier_pooling 'max'"):
        pooling_of(bad)
    with pytest.raises(ValueError, match="pooling must be one of cls, mean"):
        new_classifier(mean_dir, "max", LABEL_NAMES)
    with pytest.raises(ValueError, match="pooling must be one of cls, mean"):
        TransformerConfig(pooling="first")


def test_mean_pooling_ignores_padding_and_reads_every_token(mean_dir: Path) -> None:
    from transformers import AutoTokenizer

    from training.network import load_classifier

    model = load_classifier(mean_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(mean_dir)
    texts = [t for t in TEXTS if t]
    alone = np.vstack([_logits(model, tokenizer, [t]) for t in texts])
    batched = _logits(model, tokenizer, texts)  # padded to the longest
    np.testing.assert_allclose(batched, alone, atol=1e-5)

    # the pooled vector is the masked token mean: the head applied to it by hand gives the logits
    import torch

    enc = tokenizer(texts[:3], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.bert(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        expected = model.classifier((hidden * mask).sum(1) / mask.sum(1)).numpy()
    np.testing.assert_allclose(_logits(model, tokenizer, texts[:3]), expected, atol=1e-5)


def test_a_mean_pooled_network_exports_to_onnx_within_parity(mean_dir: Path, tmp_path: Path) -> None:
    from models.transformer import TransformerBackend
    from training.export import export_onnx, parity

    out = tmp_path / "onnx"
    export_onnx(mean_dir, out, max_length=32, quantize=False)
    backend = TransformerBackend.load(out, len(LABEL_NAMES), threads=1)
    report = parity(mean_dir, backend, TEXTS * 3, batch_size=4)
    assert report["max_abs_diff"] < 1e-4


@pytest.mark.slow
def test_fine_tune_with_mean_pooling(tmp_path: Path) -> None:
    import pandas as pd

    from tests.training.frames import unlabelled_frame
    from training.network import MeanPoolBertForSequenceClassification, load_classifier
    from training.transformer import TransformerConfig, fine_tune, load_fine_tuned

    df: pd.DataFrame = unlabelled_frame(32)
    df["text"] = [("you idiot " if i % 2 else "thanks for the story ") * (1 + i % 3) for i in range(32)]
    df["toxicity"] = [float(i % 2) for i in range(32)]
    df["weight_toxicity"] = 1.0
    config = TransformerConfig(
        epochs=1, batch_size=16, max_length=32, corpus_repeats={}, corpus_caps={}, pooling="mean"
    )
    result = fine_tune(df, df, config, tmp_path / "hf", progress=False)
    assert np.isfinite(result.history[-1]["loss"])
    assert isinstance(load_classifier(tmp_path / "hf"), MeanPoolBertForSequenceClassification)
    made_by = load_fine_tuned(tmp_path / "hf").made_by
    assert made_by is not None and made_by["config"]["pooling"] == "mean"
