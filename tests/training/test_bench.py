from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.registry import Registry
from models.transformer import THREADS_ENV
from tests.tiny_transformer import make_tiny_hf, store_transformer
from training import bench
from training.export import export_onnx

# The transformer rows of one bench run, in order: PyTorch, ONNX fp32, then each export by name.
VARIANTS = (
    "pytorch fp32",
    "onnx fp32",
    "onnx fp16-weights",
    "onnx int8-blockwise",
    "onnx int8-compact",
    "onnx int8-dynamic",
    "onnx int8-folded",
    "onnx int8-token",
    "onnx int8-weights",
)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_hf(tmp_path_factory.mktemp("tiny") / "hf")


def test_hf_folder_gives_every_variant_of_the_same_network(hf_dir: Path, tmp_path: Path) -> None:
    rows = bench.transformer_candidates(
        hf_dir, "tiny", tmp_path, max_length=32, calibration_texts=["a comment", "another comment"]
    )
    assert [r.variant for r in rows] == list(VARIANTS)
    texts = ["you idiot", "thanks for the article"] * 4
    for row in rows:
        result = bench.bench_model(row.load(), texts, batch_size=4, single=2)
        assert result["per_s"] > 0 and result["p50"] > 0


def test_newest_artifact_with_an_hf_folder_is_the_source(
    registry: Registry, hf_dir: Path, tmp_path: Path
) -> None:
    export_onnx(hf_dir, tmp_path / "onnx", max_length=32, method="int8-compact")
    info = registry.get(store_transformer(registry, tmp_path / "onnx"))
    assert bench._latest_with_hf(registry) is None
    assert info.path is not None
    shutil.copytree(hf_dir, info.path / bench.HF_SUBDIR)
    found = bench._latest_with_hf(registry)
    assert found is not None and found.id == info.id


@pytest.mark.slow
def test_main_prints_one_table(
    registry: Registry, hf_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODERATION_REGISTRY_DIR", str(registry.root))
    monkeypatch.setenv(THREADS_ENV, "1")  # main() sets it for --threads; monkeypatch restores it
    assert bench.main(["--hf-dir", str(hf_dir), "--n", "8", "--single", "2", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    for variant in (*VARIANTS, "as served"):
        assert variant in out
    assert "x pytorch" in out and "1.00" in out
