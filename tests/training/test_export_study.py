from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from tests.tiny_transformer import TEXTS, make_tiny_hf
from training import export, export_study


def test_variants_name_export_methods_or_layouts() -> None:
    assert export_study.variant("int8-compact") == ("int8-compact", export.QUANTIZERS["int8-compact"])
    assert export_study.variant("gptq-8-32")[0] == "int8-gptq"
    assert export_study.variant("gptq1-16-16")[0] == "int8-gptq"
    assert export_study.variant("gptqa16down-8-32")[1].keywords["fp16_layers"] is export._is_down_projection  # type: ignore[attr-defined]
    served, quantizer = export_study.variant("gptqa-8-8")
    assert served == "int8-gptq" and quantizer.keywords == {"block": 8, "table_block": 8, "act_order": True}  # type: ignore[attr-defined]
    assert export_study.variant("nearest-8-8")[0] == "int8-folded"
    assert export_study.variant("table-8")[0] == "int8-compact"
    assert export_study.variant("gptqa16attn-8-32")[1].keywords["fp16_layers"] is export._is_attention  # type: ignore[attr-defined]
    for bad in ("int4", "gptq-8", "nearest-a-8", "table-", "gptqa16head-8-8"):
        with pytest.raises(ValueError, match="unknown variant"):
            export_study.variant(bad)


def test_study_exports_each_variant_and_compares_it_with_pytorch(tmp_path: Path) -> None:
    hf = make_tiny_hf(tmp_path / "hf")
    lines: list[str] = []
    names = ["nearest-8-8", "gptq-8-8", "gptqa-8-32", "gptqa16down-8-32", "gptqa16attn-8-32"]
    results = export_study.study(hf, tmp_path / "out", names, TEXTS * 3, TEXTS, lines.append, max_length=32)
    assert list(results) == names and len(lines) == 5
    for name, r in results.items():
        assert (tmp_path / "out" / name / "model.onnx").is_file()
        assert 0 < r["max_abs_diff"] < 0.05 and r["mean_abs_diff"] <= r["max_abs_diff"]
        assert r["five_largest"][0] == pytest.approx(r["max_abs_diff"])
    # Same layout, so the same size to within the values' compressibility.
    assert results["gptq-8-8"]["size_mb"] == pytest.approx(results["nearest-8-8"]["size_mb"], rel=0.01)
    # FFN down-projections (2 x 64 x 32 weights) in fp16: 2 bytes a weight, not 1 + 2/8.
    extra_mb = results["gptqa16down-8-32"]["size_mb"] - results["gptqa-8-32"]["size_mb"]
    assert extra_mb == pytest.approx(2 * 64 * 32 * 0.75 / 1e6, rel=0.3)
    # Attention in fp16: the 2 layers' query, key, value and output (32 x 32 each), not the FFN's.
    graph = onnx.load(str(tmp_path / "out" / "gptqa16attn-8-32" / "model.onnx")).graph
    fp16 = [tuple(i.dims) for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT16]
    # Besides them only scales: the table's (one per row) and the int8 layers' (3-D blocks).
    assert sorted(d for d in fp16 if len(d) == 2 and d[0] < 1000) == [(32, 32)] * 8
    # A table scale per 32 columns instead of 8: 30522 x 3 fewer fp16 scales.
    saved_mb = results["gptq-8-8"]["size_mb"] - results["gptqa-8-32"]["size_mb"]
    assert saved_mb == pytest.approx(30522 * 3 * 2 / 1e6, rel=0.1)
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == results
    # Held-out comments add their own maximum.
    again = export_study.study(
        hf,
        tmp_path / "again",
        ["gptq-8-8"],
        TEXTS * 3,
        TEXTS,
        lines.append,
        max_length=32,
        held_out=TEXTS[:3],
    )
    assert 0 < again["gptq-8-8"]["held_out_max_abs_diff"] <= results["gptq-8-8"]["max_abs_diff"] + 1e-5
    assert "held-out max" in lines[-1] and "held-out" not in lines[0]
    # The quantizer swapped in for the study is put back.
    assert export.QUANTIZERS["int8-gptq"].func is export._store_int8_gptq  # type: ignore[attr-defined]


def test_cli_rejects_unknown_variants_and_missing_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        export_study.main([str(tmp_path), str(tmp_path / "out"), "int4"])
    assert exit_info.value.code == 2 and "unknown variant 'int4'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        export_study.main([str(tmp_path), str(tmp_path / "out"), "int8-gptq"])
    assert exit_info.value.code == 2 and "no config.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        export_study.main([str(tmp_path), str(tmp_path / "out"), "int8-gptq", "--calibration-texts", "0"])
    assert exit_info.value.code == 2 and "--calibration-texts must be at least 1" in capsys.readouterr().err
