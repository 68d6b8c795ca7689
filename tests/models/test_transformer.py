from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.errors import ArtifactError
from models.labels import LABEL_NAMES
from models.registry import Registry
from models.transformer import (
    CONFIG_FILE,
    FILES,
    MODEL_FILE,
    THREADS_ENV,
    TOKENIZER_FILE,
    TransformerBackend,
    default_threads,
)
from tests.tiny_transformer import TEXTS, make_tiny_hf, store_transformer

N = len(LABEL_NAMES)


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fp32 model files of a tiny random BERT, exported once for the module."""
    from training.export import export_onnx

    root = tmp_path_factory.mktemp("tiny")
    export_onnx(make_tiny_hf(root / "hf"), root / "onnx", max_length=32, quantize=False)
    return root / "onnx"


@pytest.fixture
def backend(onnx_dir: Path) -> TransformerBackend:
    return TransformerBackend.load(onnx_dir, N, labels=LABEL_NAMES, threads=1)


@pytest.fixture
def copy_dir(onnx_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the model files, free to damage."""
    target = tmp_path / "copy"
    shutil.copytree(onnx_dir, target)
    return target


def test_blockwise_int8_model_serves_close_to_fp32(onnx_dir: Path, tmp_path: Path) -> None:
    """MatMulNBits (a contrib op) with int8 compute loads in the torch-free backend."""
    from training.export import export_onnx

    export_onnx(make_tiny_hf(tmp_path / "hf"), tmp_path / "int8", max_length=32, method="int8-blockwise")
    int8 = TransformerBackend.load(tmp_path / "int8", N, labels=LABEL_NAMES, threads=1, batch_size=2)
    assert int8.config.quantization == "int8-blockwise"
    fp32 = TransformerBackend.load(onnx_dir, N, labels=LABEL_NAMES, threads=1)
    scores = int8.predict_raw(TEXTS)
    np.testing.assert_allclose(scores, fp32.predict_raw(TEXTS), atol=0.02)
    int8.batch_size = 1
    np.testing.assert_array_equal(int8.predict_raw(TEXTS), scores)


def test_scores_shape_range_and_dtype(backend: TransformerBackend) -> None:
    scores = backend.predict_raw(TEXTS)
    assert scores.shape == (len(TEXTS), N)
    assert scores.dtype == np.float64
    assert np.all((scores > 0) & (scores < 1))
    assert np.ptp(scores, axis=0).max() > 0.05  # texts really differ, so order checks mean something
    assert backend.predict_raw([]).shape == (0, N)


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_length_sorting_keeps_the_callers_order(onnx_dir: Path, batch_size: int) -> None:
    backend = TransformerBackend.load(onnx_dir, N, threads=1, batch_size=batch_size)
    single = np.vstack([backend.predict_raw([t]) for t in TEXTS])
    np.testing.assert_allclose(backend.predict_raw(TEXTS), single, atol=1e-5)
    reverse = backend.predict_raw(TEXTS[::-1])
    np.testing.assert_allclose(reverse[::-1], single, atol=1e-5)


def test_long_texts_are_truncated_at_max_length(backend: TransformerBackend) -> None:
    assert backend.config.max_length == 32
    long = "word " * 400
    # Everything past the 30th word-piece is cut, so a different ending cannot change the score.
    np.testing.assert_allclose(
        backend.predict_raw([long]), backend.predict_raw([long + " idiot idiot"]), atol=1e-6
    )


def test_save_copies_the_model_files(backend: TransformerBackend, tmp_path: Path) -> None:
    assert backend.save(tmp_path) == list(FILES)
    again = TransformerBackend.load(tmp_path, N, threads=1)
    np.testing.assert_allclose(again.predict_raw(TEXTS), backend.predict_raw(TEXTS))
    assert backend.save(backend.source) == list(FILES)  # saving onto itself is a no-op


def test_artifact_serves_through_registry_and_model(registry: Registry, onnx_dir: Path) -> None:
    artifact_id = store_transformer(registry, onnx_dir)
    registry.promote(artifact_id)
    model = registry.load()
    assert model.id == artifact_id and model.info.kind == "transformer"
    assert sorted(model.info.files) == sorted(FILES)
    scores = model.score(TEXTS, batch_size=3)
    np.testing.assert_allclose(scores, model.backend.predict_raw(TEXTS), atol=1e-6)  # identity calibration
    (pred,) = model.predict(["you are an idiot and a moron"])
    assert set(pred.scores) == set(LABEL_NAMES)


def test_corrupted_artifact_file_is_refused(registry: Registry, onnx_dir: Path) -> None:
    artifact_id = store_transformer(registry, onnx_dir)
    path = registry.path(artifact_id) / MODEL_FILE
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ArtifactError, match=re.escape("model.onnx is corrupted")):
        registry.load(artifact_id)


@pytest.mark.parametrize("name", FILES)
def test_missing_file_is_refused(copy_dir: Path, name: str) -> None:
    (copy_dir / name).unlink()
    with pytest.raises(ArtifactError, match=re.escape(f"{name} is missing")):
        TransformerBackend.load(copy_dir, N)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (MODEL_FILE, b"not a protobuf", "cannot load model.onnx"),
        (TOKENIZER_FILE, b"{}", "cannot read tokenizer.json"),
        (CONFIG_FILE, b"[1, 2]", "malformed transformer.json"),
        (CONFIG_FILE, b'{"format": 1, "inputs": ["input_ids"]}', "malformed transformer.json"),
        (CONFIG_FILE, b'{"format": 2, "max_length": 8, "inputs": ["input_ids"]}', "unsupported format"),
    ],
)
def test_unreadable_file_is_refused(copy_dir: Path, name: str, content: bytes, message: str) -> None:
    (copy_dir / name).write_bytes(content)
    with pytest.raises(ArtifactError, match=re.escape(message)):
        TransformerBackend.load(copy_dir, N)


def _edit_config(directory: Path, **changes: object) -> None:
    file = directory / CONFIG_FILE
    file.write_text(json.dumps(json.loads(file.read_text()) | changes))


def test_output_width_must_match_the_labels(onnx_dir: Path) -> None:
    with pytest.raises(ArtifactError, match="8 outputs for 5 labels"):
        TransformerBackend.load(onnx_dir, 5)


def test_head_labels_must_match_the_artifact(onnx_dir: Path) -> None:
    with pytest.raises(ArtifactError, match="do not match"):
        TransformerBackend.load(onnx_dir, N, labels=LABEL_NAMES[::-1])


def test_config_inputs_must_match_the_graph(copy_dir: Path) -> None:
    _edit_config(copy_dir, inputs=["input_ids", "attention_mask"])
    with pytest.raises(ArtifactError, match="takes"):
        TransformerBackend.load(copy_dir, N)


def test_unknown_output_is_refused(copy_dir: Path) -> None:
    _edit_config(copy_dir, output="probabilities")
    with pytest.raises(ArtifactError, match="no output 'probabilities'"):
        TransformerBackend.load(copy_dir, N)


def test_threads_come_from_the_environment() -> None:
    assert default_threads({THREADS_ENV: "3"}) == 3
    assert default_threads({}) == (os.cpu_count() or 1)
    for bad in ("two", "0"):
        with pytest.raises(ArtifactError, match=THREADS_ENV):
            default_threads({THREADS_ENV: bad})


def test_serving_imports_neither_torch_nor_transformers(registry: Registry, onnx_dir: Path) -> None:
    artifact_id = store_transformer(registry, onnx_dir)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from models.registry import Registry\n"
        f"model = Registry(Path({str(registry.root)!r}), shipped_dir=None).load({artifact_id!r})\n"
        "assert model.score(['you are an idiot', 'thanks']).shape == (2, 8)\n"
        "loaded = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr


def test_long_texts_are_read_in_overlapping_windows(tmp_path: Path) -> None:
    """Beyond max_length, serving takes each label's highest logit over up to max_windows windows."""
    from training.export import export_onnx

    hf = make_tiny_hf(tmp_path / "hf")
    export_onnx(hf, tmp_path / "one", max_length=16, quantize=False, max_windows=1)
    export_onnx(hf, tmp_path / "four", max_length=16, quantize=False, max_windows=4, window_overlap=4)
    one = TransformerBackend.load(tmp_path / "one", N, threads=1)
    four = TransformerBackend.load(tmp_path / "four", N, threads=1)
    assert json.loads((tmp_path / "four" / CONFIG_FILE).read_text())["max_windows"] == 4
    assert "max_windows" not in json.loads((tmp_path / "one" / CONFIG_FILE).read_text())
    short = ["you are an idiot", "ok"]
    np.testing.assert_allclose(four.predict_raw(short), one.predict_raw(short), atol=1e-6)
    # 14 content tokens a window, 4 shared with the previous one: words 0-13, 10-23, 20-33, 30-43.
    words = [str(i) for i in range(60)]  # one word piece each
    long_text = " ".join(words)
    pieces = [" ".join(words[s : s + 14]) for s in (0, 10, 20, 30)]
    expected = one.predict_raw(pieces)
    logit = np.log(expected) - np.log1p(-expected)
    got = four.predict_raw([long_text])[0]
    np.testing.assert_allclose(np.log(got) - np.log1p(-got), logit.max(axis=0), atol=1e-4)
    assert not np.allclose(got, one.predict_raw([long_text])[0])
    four.max_windows = 1  # what parity checks use: the first window only
    np.testing.assert_allclose(four.predict_raw([long_text]), one.predict_raw([long_text]), atol=1e-6)
