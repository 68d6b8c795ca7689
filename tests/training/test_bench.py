from __future__ import annotations

from pathlib import Path

import pytest

from models.registry import Registry
from models.transformer import THREADS_ENV
from tests.tiny_transformer import make_tiny_hf, store_transformer
from training import bench
from training.export import export_onnx


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_hf(tmp_path_factory.mktemp("tiny") / "hf")


def test_hf_folder_alone_gives_all_three_transformer_rows(hf_dir: Path, tmp_path: Path) -> None:
    rows, skipped = bench.transformer_candidates(None, hf_dir, tmp_path, max_length=32)
    assert [r.variant for r in rows] == [
        "pytorch fp32",
        "onnx fp32 (exported)",
        "onnx int8-blockwise (exported)",
    ]
    assert skipped == []
    texts = ["you idiot", "thanks for the article"] * 4
    for row in rows:
        result = bench.bench_model(row.load(), texts, batch_size=4, single=2)
        assert result["per_s"] > 0 and result["p50"] > 0


def test_artifact_without_hf_folder_skips_what_it_cannot_build(
    registry: Registry, hf_dir: Path, tmp_path: Path
) -> None:
    export_onnx(hf_dir, tmp_path / "onnx", max_length=32)
    info = registry.get(store_transformer(registry, tmp_path / "onnx"))
    rows, skipped = bench.transformer_candidates(info, None, tmp_path / "work")
    assert [r.variant for r in rows] == ["onnx int8-blockwise"]
    assert rows[0].load().id == info.id
    assert [s.split(":")[0] for s in skipped] == ["pytorch fp32", "onnx fp32"]


def test_nothing_to_compare_is_said(tmp_path: Path) -> None:
    assert bench.transformer_candidates(None, None, tmp_path) == (
        [],
        ["transformer: no transformer artifact (pass --transformer or --hf-dir)"],
    )


@pytest.mark.slow
def test_main_prints_one_table(
    registry: Registry, hf_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODERATION_REGISTRY_DIR", str(registry.root))
    monkeypatch.setenv(THREADS_ENV, "1")  # main() sets it for --threads; monkeypatch restores it
    assert bench.main(["--hf-dir", str(hf_dir), "--n", "8", "--single", "2", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    for variant in ("pytorch fp32", "onnx fp32", "onnx int8-blockwise", "linear"):
        assert variant in out
    assert "skipped" not in out
