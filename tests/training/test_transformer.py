from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.errors import InputDataError
from models.labels import LABEL_NAMES
from tests.training.frames import unlabelled_frame
from training.transformer import (
    HISTORY_FILE,
    TransformerConfig,
    _epoch_rows,
    _length_bucketed_batches,
    build_targets,
    load_fine_tuned,
)


def test_targets_mask_unknown_and_use_soft_labels() -> None:
    df = unlabelled_frame(4)
    df["toxicity"] = [1.0, 0.0, 1.0, np.nan]
    df["soft_toxicity"] = [0.8, 0.2, np.nan, np.nan]
    df["weight_toxicity"] = [1.0, 1.0, 1.0, 0.0]
    df["spam"] = [0.0, 0.0, 0.0, 0.0]
    df["weight_spam"] = [0.3, 0.3, 0.3, 0.3]  # borrowed negatives
    t = build_targets(df, boost=8.0)
    j, s = LABEL_NAMES.index("toxicity"), LABEL_NAMES.index("spam")
    np.testing.assert_allclose(t.y[:, j], [0.8, 0.2, 1.0, 0.0])
    assert t.w[3, j] == 0.0  # unknown: no loss
    np.testing.assert_allclose(t.w[:, s], [0.3] * 4)
    assert (t.w[:, LABEL_NAMES.index("threat")] == 0).all()


def test_rare_positives_are_upweighted_but_capped() -> None:
    df = unlabelled_frame(101)
    df["threat"] = [1.0] + [0.0] * 100
    df["weight_threat"] = 1.0
    t = build_targets(df, boost=8.0)
    j = LABEL_NAMES.index("threat")
    assert t.w[0, j] == pytest.approx(8.0)  # 100/1/4 = 25, capped at 8
    assert t.w[1, j] == 1.0


def test_epoch_rows_repeat_small_and_cap_large_corpora() -> None:
    df = pd.concat(
        [unlabelled_frame(10, "prct_youtube"), unlabelled_frame(50, "davidson")], ignore_index=True
    )
    config = TransformerConfig(corpus_repeats={"prct_youtube": 3}, corpus_caps={"davidson": 20})
    rows = _epoch_rows(df, config, np.random.default_rng(0))
    corpus = df["corpus"].to_numpy()[rows]
    assert (corpus == "prct_youtube").sum() == 30
    assert (corpus == "davidson").sum() == 20
    assert len(set(rows[corpus == "davidson"].tolist())) == 20


def test_repeat_native_only_keeps_the_order_and_drops_borrowed_weights_of_later_copies() -> None:
    df = pd.concat(
        [unlabelled_frame(4, "constraint"), unlabelled_frame(3, "civil_comments")], ignore_index=True
    )
    df["misinformation"] = [1.0, 0.0, 1.0, 0.0, np.nan, np.nan, np.nan]
    df["weight_misinformation"] = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    df["conspiracy"] = [np.nan, 0.0, np.nan, 0.0, np.nan, np.nan, np.nan]  # borrowed: real news
    df["weight_conspiracy"] = [0.0, 0.3, 0.0, 0.3, 0.0, 0.0, 0.0]
    plain = TransformerConfig(corpus_repeats={"constraint": 2})
    native = TransformerConfig(corpus_repeats={"constraint": 2}, repeat_native_only=True)
    rows_plain = _epoch_rows(df, plain, np.random.default_rng(0))
    rows_native = _epoch_rows(df, native, np.random.default_rng(0))
    np.testing.assert_array_equal(rows_native % len(df), rows_plain)  # the same rows, the same order
    assert (rows_native >= len(df)).sum() == 4  # the second copy of each CONSTRAINT row

    t = build_targets(df, boost=1.0)
    m, c = LABEL_NAMES.index("misinformation"), LABEL_NAMES.index("conspiracy")
    y_first, w_first = t.batch(np.array([1, 3]))
    y_later, w_later = t.batch(np.array([1 + len(df), 3 + len(df)]))
    np.testing.assert_array_equal(y_later, y_first)
    np.testing.assert_allclose(w_first[:, c], [0.3, 0.3])  # the first copy lends its negatives
    np.testing.assert_allclose(w_later[:, c], [0.0, 0.0])  # later copies do not
    np.testing.assert_allclose(w_later[:, m], w_first[:, m])  # and keep their own label
    # Bucketing reads the copy's length.
    lengths = np.arange(len(df)) + 5
    batches = _length_bucketed_batches(rows_native, lengths, 4, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == sorted(rows_native.tolist())


def test_length_buckets_cover_every_row_once() -> None:
    rng = np.random.default_rng(1)
    lengths = rng.integers(3, 120, size=1000)
    rows = np.arange(1000)
    batches = _length_bucketed_batches(rows, lengths, 16, rng)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 20  # sorted inside chunks: batches hold similar lengths (random would be ~100)


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        TransformerConfig(device="tpu")
    with pytest.raises(ValueError):
        TransformerConfig(epochs=0)


def _hf_folder(folder: Path, labels: list[str]) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"id2label": {str(i): n for i, n in enumerate(labels)}}))
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "tokenizer.json").write_text("{}")
    return folder


def test_a_fine_tuned_folder_must_match_the_label_schema(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match=r"no config\.json"):
        load_fine_tuned(tmp_path)
    wrong = _hf_folder(tmp_path / "wrong", ["toxicity", "spam"])
    with pytest.raises(InputDataError, match="not this schema's"):
        load_fine_tuned(wrong)
    good = _hf_folder(tmp_path / "good", list(LABEL_NAMES))
    result = load_fine_tuned(good)  # no history file: accepted, recorded as unknown
    assert result.history == [] and result.made_by == {} and np.isnan(result.best_val_auc)
    distilled = {"teachers": [13, 14], "lambda": 0.5, "masked_weight": 0.0, "job": "gpu_distill.py"}
    history = {"config": {"epochs": 1.5}, "device": "cuda", "best_step": 9, "distilled": distilled}
    (good / HISTORY_FILE).write_text(json.dumps(history))
    made_by = load_fine_tuned(good).made_by  # a distilled student's record reaches the model card
    assert made_by is not None and made_by["distilled"] == distilled and made_by["soup"] is None
    assert made_by["config"] == {"epochs": 1.5} and made_by["device"] == "cuda"
    (good / HISTORY_FILE).unlink()
    (good / "tokenizer.json").unlink()
    with pytest.raises(InputDataError, match=r"no tokenizer\.json"):
        load_fine_tuned(good)


def _toy_comments(n: int = 48) -> pd.DataFrame:
    """Insults and thanks of several lengths, toxicity judged on every row."""
    df = unlabelled_frame(n)
    df["text"] = [("you idiot " if i % 2 else "thanks for the story ") * (1 + i % 5) for i in range(n)]
    df["toxicity"] = [float(i % 2) for i in range(n)]
    df["weight_toxicity"] = 1.0
    return df


@pytest.mark.slow
def test_fine_tune_runs_saves_and_resumes(tmp_path: Path) -> None:
    from training.transformer import fine_tune

    df = _toy_comments()
    config = TransformerConfig(
        epochs=1,
        batch_size=16,
        max_length=32,
        corpus_repeats={},
        corpus_caps={},
        evals_per_epoch=1,
        checkpoint_dir=tmp_path / "ck",
        checkpoint_every=1,
    )
    result = fine_tune(df, df, config, tmp_path / "hf", progress=False)
    assert (tmp_path / "hf" / "config.json").is_file() and (tmp_path / "hf" / "tokenizer.json").is_file()
    assert (tmp_path / "ck" / "checkpoint.pt").is_file()
    assert result.history and result.history[-1]["step"] == 3
    reused = load_fine_tuned(tmp_path / "hf")  # what `--fine-tuned` reads back
    assert (tmp_path / "hf" / HISTORY_FILE).is_file()
    assert reused.history == result.history and reused.best_step == result.best_step
    assert reused.made_by is not None and reused.made_by["device"] == "cpu"
    assert reused.made_by["config"]["batch_size"] == 16
    # a rerun with the same checkpoint folder resumes at the end instead of training again
    again = fine_tune(df, df, config, tmp_path / "hf2", progress=False)
    assert again.history == result.history
    assert not (tmp_path / "hf-last").exists()  # the last evaluation was the best: one folder


@pytest.mark.slow
def test_fine_tune_keeps_the_last_weights_when_an_earlier_evaluation_was_best(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import training.transformer
    from training.transformer import fine_tune, last_dir

    falling = iter([0.9, 0.8, 0.7])
    monkeypatch.setattr(training.transformer, "validation_score", lambda scores, val: (next(falling), {}))
    df = _toy_comments()
    config = TransformerConfig(
        epochs=1,
        batch_size=16,
        max_length=32,
        corpus_repeats={},
        corpus_caps={},
        evals_per_epoch=3,
        patience=5,
    )
    result = fine_tune(df, df, config, tmp_path / "hf", progress=False)
    assert result.best_step == 1 and [h["step"] for h in result.history] == [1, 2, 3]
    last = load_fine_tuned(last_dir(tmp_path / "hf"))
    assert last.hf_dir == tmp_path / "hf-last" and last.best_step == 3 and last.best_val_auc == 0.7
    assert load_fine_tuned(tmp_path / "hf").best_step == 1

    from safetensors.numpy import load_file

    best, final = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("hf", "hf-last"))
    assert any(not np.array_equal(best[k], final[k]) for k in best)  # two steps apart


@pytest.mark.slow
def test_fine_tune_with_native_only_repeats(tmp_path: Path) -> None:
    from training.transformer import fine_tune

    df = unlabelled_frame(32, "constraint")
    df["text"] = [("fake cure " if i % 2 else "official figures ") * (1 + i % 3) for i in range(32)]
    df["misinformation"] = [float(i % 2) for i in range(32)]
    df["weight_misinformation"] = 1.0
    df["conspiracy"] = 0.0
    df["weight_conspiracy"] = 0.3  # borrowed negatives, lent by the first copy only
    config = TransformerConfig(
        epochs=1,
        batch_size=16,
        max_length=32,
        corpus_repeats={"constraint": 2},
        corpus_caps={},
        evals_per_epoch=1,
        repeat_native_only=True,
    )
    result = fine_tune(df, df, config, tmp_path / "hf", progress=False)
    assert result.history[-1]["step"] == 4  # 64 rows an epoch, batches of 16
    assert np.isfinite(result.history[-1]["loss"])


def test_hashtag_splitting_splits_camel_case_inside_hashtags_only() -> None:
    from transformers import AutoTokenizer

    from training.transformer import add_hashtag_splitting, encoder_dir

    tokenizer = AutoTokenizer.from_pretrained(encoder_dir())
    plain = tokenizer.backend_tokenizer.normalizer.normalize_str
    add_hashtag_splitting(tokenizer)
    split = tokenizer.backend_tokenizer.normalizer.normalize_str
    assert split("#WalkAwayFromDemocrats #COVID19Update #MAGA #maga") == (
        "#walk away from democrats #covid19 update #maga #maga"
    )
    # outside hashtags nothing changes: handles, URLs, words with inner capitals
    for text in ("@MoHFW_INDIA says mRNA", "https://t.co/PZrmH4bl5Y", "tRump and his iPhone", "a#b c"):
        assert split(text) == plain(text)
