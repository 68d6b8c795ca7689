from __future__ import annotations

from pathlib import Path

import pytest

from models.registry import Registry
from tests.tiny_transformer import TEXTS, make_tiny_hf, store_transformer
from training import parity
from training.export import export_onnx


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_hf(tmp_path_factory.mktemp("tiny") / "hf")


def test_served_scores_of_an_exact_export_match_pytorch(
    registry: Registry, hf_dir: Path, tmp_path: Path
) -> None:
    export_onnx(hf_dir, tmp_path / "fp32", max_length=32, quantize=False)
    model = registry.load(store_transformer(registry, tmp_path / "fp32"))
    report = parity.served_parity(model, hf_dir, TEXTS)
    assert report["n"] == len(TEXTS) and report["quantization"] == "none"
    assert report["raw_max_abs_diff"] < 1e-4 and report["served_max_abs_diff"] < 1e-4
    assert report["flag_changes"] == 0


def test_quantized_export_shows_its_difference(registry: Registry, hf_dir: Path, tmp_path: Path) -> None:
    export_onnx(hf_dir, tmp_path / "int8", max_length=32, method="int8-dynamic")
    model = registry.load(store_transformer(registry, tmp_path / "int8"))
    report = parity.served_parity(model, hf_dir, TEXTS * 3)
    assert report["quantization"] == "int8-dynamic"
    assert 0 < report["raw_max_abs_diff"] < 0.1
    assert set(report["served_max_abs_diff_per_label"]) == set(model.labels)


def test_precomputed_network_scores_give_the_same_report_and_are_shape_checked(
    registry: Registry, hf_dir: Path, tmp_path: Path
) -> None:
    from models.transformer import TransformerBackend
    from training.export import network_scores

    export_onnx(hf_dir, tmp_path / "int8", max_length=32, calibration_texts=TEXTS)
    model = registry.load(store_transformer(registry, tmp_path / "int8"))
    backend = model.backend
    assert isinstance(backend, TransformerBackend)
    scores = network_scores(hf_dir, backend, TEXTS)
    assert parity.served_parity(model, hf_dir, TEXTS, scores=scores) == parity.served_parity(
        model, hf_dir, TEXTS
    )
    with pytest.raises(ValueError, match="do not match"):
        parity.served_parity(model, hf_dir, TEXTS[:-1], scores=scores)


def test_cli_errors_are_clear(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODERATION_REGISTRY_DIR", str(registry.root))
    assert parity.main(["no-such-model", "--hf-dir", str(tmp_path)]) == 1
    assert "error:" in capsys.readouterr().err
    for bad, message in ((["--split", "train"], "invalid choice: 'train'"), (["--n", "-1"], "--n must be")):
        with pytest.raises(SystemExit) as exit_info:
            parity.main(["no-such-model", "--hf-dir", str(tmp_path), *bad])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_cli_compares_the_chosen_split(
    registry: Registry,
    hf_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    export_onnx(hf_dir, tmp_path / "fp32", max_length=32, quantize=False)
    model_id = store_transformer(registry, tmp_path / "fp32")
    monkeypatch.setenv("MODERATION_REGISTRY_DIR", str(registry.root))
    assert parity.main([model_id, "--hf-dir", str(hf_dir), "--split", "test", "--n", "7"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["split"] == "test" and report["n"] == 7 and report["model"] == model_id
    assert report["raw_max_abs_diff"] < 1e-4
