"""training.soup: the weight average of fine-tuned networks, and the folders it refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.errors import InputDataError
from tests.tiny_transformer import make_tiny_hf
from training.soup import soup
from training.transformer import HISTORY_FILE, load_fine_tuned


def _member(folder: Path, seed: int) -> Path:
    make_tiny_hf(folder, seed=seed)
    history = {"config": {"epochs": 1.5, "seed": seed}, "device": "cpu", "history": [], "best_step": 9}
    (folder / HISTORY_FILE).write_text(json.dumps({**history, "best_val_auc": 0.8 + seed / 100}))
    return folder


def _weights(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(folder / "model.safetensors"))


def test_a_soup_is_the_mean_of_its_members_weights(tmp_path: Path) -> None:
    a, b, c = (_member(tmp_path / f"s{seed}", seed) for seed in (1, 2, 3))
    out = soup([a, b, c], tmp_path / "soup")
    wa, wb, wc, mean = _weights(a), _weights(b), _weights(c), _weights(out)
    assert set(mean) == set(wa)
    key = next(k for k in wa if k.endswith("query.weight"))
    assert not np.allclose(wa[key], wb[key])  # the members differ, so the test can fail
    for name, value in mean.items():
        assert value.dtype == wa[name].dtype
        np.testing.assert_allclose(value, (wa[name] + wb[name] + wc[name]) / 3, rtol=1e-6, atol=1e-7)
    assert (out / "tokenizer.json").read_bytes() == (a / "tokenizer.json").read_bytes()

    result = load_fine_tuned(out)  # what `--fine-tuned` reads back
    assert np.isnan(result.best_val_auc)  # measured by the run that uses it, on its own rows
    assert result.made_by is not None and result.made_by["config"]["epochs"] == 1.5
    members = result.made_by["soup"]
    assert [m["seed"] for m in members] == [1, 2, 3]
    assert [m["best_val_auc"] for m in members] == pytest.approx([0.81, 0.82, 0.83])
    assert [m["folder"] for m in members] == [str(a), str(b), str(c)]


def test_a_soup_refuses_members_it_cannot_average(tmp_path: Path) -> None:
    a = _member(tmp_path / "a", 1)
    with pytest.raises(InputDataError, match="at least two"):
        soup([a], tmp_path / "out")

    other = tmp_path / "distil"
    make_tiny_hf(other, kind="distilbert", seed=2)
    with pytest.raises(InputDataError, match="a different network"):
        soup([a, other], tmp_path / "out")

    bare = tmp_path / "bare"
    shutil.copytree(a, bare)
    (bare / "model.safetensors").unlink()
    (bare / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(InputDataError, match=r"no model\.safetensors"):
        soup([a, bare], tmp_path / "out")

    wrong_labels = tmp_path / "labels"
    shutil.copytree(a, wrong_labels)
    config = json.loads((wrong_labels / "config.json").read_text())
    config["id2label"] = {"0": "toxicity"}
    (wrong_labels / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputDataError, match="not this schema's"):
        soup([a, wrong_labels], tmp_path / "out")
    pooled = tmp_path / "mean"  # the same tensors but for the [CLS] pooler, and another pooling
    shutil.copytree(a, pooled)
    config = json.loads((pooled / "config.json").read_text())
    (pooled / "config.json").write_text(json.dumps(config | {"classifier_pooling": "mean"}))
    with pytest.raises(InputDataError, match="a different network"):
        soup([a, pooled], tmp_path / "out")
    split = tmp_path / "split"  # the same network, trained on comments read with --split-hashtags
    shutil.copytree(a, split)
    from transformers import AutoTokenizer

    from training.transformer import add_hashtag_splitting

    tokenizer = AutoTokenizer.from_pretrained(split)
    add_hashtag_splitting(tokenizer)
    tokenizer.save_pretrained(split)
    with pytest.raises(InputDataError, match="reads text differently"):
        soup([a, split], tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing is written when a member is refused
