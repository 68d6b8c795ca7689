"""From a fine-tuned Hugging Face folder to the files of a "transformer" artifact, and a parity check.

`export_onnx` writes `model.onnx` (fp32, or int8 by one of two methods), `tokenizer.json` and
`transformer.json` (see models.transformer); `parity` compares the served ONNX scores with the
PyTorch model's on the same texts.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from collections.abc import Callable, Collection, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.transformer import (
    FILES,
    KNOWN_INPUTS,
    MODEL_FILE,
    TOKENIZER_FILE,
    ServingConfig,
    TransformerBackend,
)
from training.span_head import SpanHead

logger = logging.getLogger(__name__)

# 17 is the first opset with LayerNormalization, which onnxruntime fuses into one kernel.
OPSET = 17
OUTPUT = "logits"
TOKEN_OUTPUT = "token_logits"


# Attention as the ONNX graph computes it. PyTorch's default (SDPA) exports as its decomposition
# with extra NaN guards (IsNaN / Where per layer) and split scaling; "eager" is the textbook
# MatMul -> scale -> mask -> Softmax -> MatMul, the same function in fewer nodes (its speed gain
# was within the noise of the one machine measured: training/EXPERIMENTS.md, "eager-attention export").
EXPORT_ATTENTION = "eager"


def _load_hf(hf_dir: Path, attn_implementation: str | None = None) -> tuple[Any, Any]:
    """The classifier (eval mode) and its fast tokenizer from a save_pretrained folder.

    `attn_implementation` ("eager", "sdpa"): the attention code path; None is transformers' default.
    """
    from training.network import load_classifier
    from training.transformer import load_tokenizer

    if not (hf_dir / "config.json").is_file():
        raise FileNotFoundError(f"{hf_dir} is not a Hugging Face model folder (no config.json)")
    options = {"attn_implementation": attn_implementation} if attn_implementation else {}
    model = load_classifier(hf_dir, **options)
    model.eval()
    tokenizer = load_tokenizer(hf_dir)
    if not tokenizer.is_fast:
        raise ValueError(
            f"{hf_dir}: serving needs a fast tokenizer (tokenizer.json); found {type(tokenizer)}"
        )
    return model, tokenizer


def _check_model(model: Any, max_length: int) -> None:
    problem = model.config.problem_type
    if problem != "multi_label_classification":
        # Serving applies a sigmoid per label; a softmax or regression head would be misread silently.
        raise ValueError(f"the model's problem_type is {problem!r}, not 'multi_label_classification'")
    limit = getattr(model.config, "max_position_embeddings", None)
    if isinstance(limit, int) and max_length > limit:
        raise ValueError(f"max_length {max_length} exceeds the model's {limit} positions")


def _export_graph(
    model: Any, tokenizer: Any, path: Path, opset: int, head: SpanHead | None = None
) -> list[str]:
    """Export the fp32 graph with dynamic batch and sequence axes; returns the graph's input names.

    With a span head, the graph has a second output: per-token logits (batch, sequence, K) read
    from the same forward pass's last hidden states.
    """
    import inspect

    import onnx
    import torch

    accepted = inspect.signature(model.forward).parameters
    names = [name for name in KNOWN_INPUTS if name in accepted]

    class LogitsOnly(torch.nn.Module):
        """The classifier with keyword inputs in a fixed order and tensor outputs."""

        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, tensors, strict=True))).logits  # type: ignore[no-any-return]

    class WithSpanHead(torch.nn.Module):
        def __init__(self, inner: Any, head: SpanHead):
            super().__init__()
            self.inner = inner
            self.head = torch.nn.Linear(head.weight.shape[0], head.weight.shape[1])
            with torch.no_grad():
                self.head.weight.copy_(torch.from_numpy(head.weight.T.copy()))
                self.head.bias.copy_(torch.from_numpy(head.bias.copy()))

        def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.inner(**dict(zip(names, tensors, strict=True)), output_hidden_states=True)
            return out.logits, self.head(out.hidden_states[-1])

    # Texts of different lengths, so that the traced graph carries a real padding mask.
    example = tokenizer(
        ["a short one", "a somewhat longer example sentence"], padding=True, return_tensors="pt"
    )
    args = tuple(example[name] for name in names)
    axes = {name: {0: "batch", 1: "sequence"} for name in names} | {OUTPUT: {0: "batch"}}
    outputs = [OUTPUT]
    wrapper: torch.nn.Module = LogitsOnly(model)
    if head is not None:
        axes[TOKEN_OUTPUT] = {0: "batch", 1: "sequence"}
        outputs.append(TOKEN_OUTPUT)
        wrapper = WithSpanHead(model, head)
    # The TorchScript exporter: the torch.export one needs onnxscript, which is not a dependency.
    # Its deprecation and tracer warnings are noise here; parity() is what vouches for the graph.
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            # eval(): the exporter restores the wrapper's (training) mode onto `model` afterwards.
            wrapper.eval(),
            args,
            str(path),
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    # The exporter drops inputs the graph never reads; feed exactly what is left.
    graph_inputs = {i.name for i in onnx.load(str(path), load_external_data=False).graph.input}
    return [name for name in names if name in graph_inputs]


def _quantize_dynamic(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # The recommended pre-processing (shape inference, basic fusions); symbolic shape inference
    # cannot follow the exported attention mask, and the ONNX one is enough for MatMul weights.
    prepared = source.with_name("prepared.onnx")
    quant_pre_process(source, prepared, skip_symbolic_shape=True)
    # Per-channel weight scales halve the score error against fp32 on MiniLM at no speed cost.
    # reduce_range: 7-bit weights, which cannot saturate on CPUs without VNNI (see WEIGHT_LEVELS).
    quantize_dynamic(prepared, target, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)


def _all_but_up_projections(model: Any) -> list[str]:
    """MatMuls with a constant weight that does not widen its input: all but the FFN up-projections."""
    weights = {init.name: tuple(init.dims) for init in model.graph.initializer}
    names = []
    for node in model.graph.node:
        shape = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) > 1 else None
        if shape is not None and len(shape) == 2 and shape[0] >= shape[1]:
            names.append(node.name)
    return names


def _quantize_blockwise(source: Path, target: Path, accuracy_level: int = 4) -> None:
    import onnx

    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )
    except ImportError as exc:  # the quantizer needs onnx_ir (the "train" extra)
        raise RuntimeError(f"int8-blockwise quantization needs the onnx-ir package ({exc})") from None

    # accuracy_level 4 computes in int8, quantizing activations per row block, so a comment's
    # scores do not depend on which other comments share its batch (they do with "dynamic");
    # 1 ("int8-weights") dequantizes the int8 weights and computes in fp32: no activation error.
    # Only the FFN up-projections: int8 anywhere else (or blocks of 32) took the first fine-tuned
    # MiniLM past 0.02 max |delta| on validation (training/EXPERIMENTS.md, "Int8 parity study").
    model = onnx.load(str(source))
    options: dict[str, Any] = {
        "bits": 8,
        "block_size": 16,
        "is_symmetric": True,
        "accuracy_level": accuracy_level,
    }
    quantizer = MatMulNBitsQuantizer(
        model,
        algo_config=DefaultWeightOnlyQuantConfig(**options),
        nodes_to_exclude=_all_but_up_projections(model),  # nodes_to_include only adds
        **options,
    )
    quantizer.process()
    quantizer.model.save_model_to_file(str(target), False)
    quantized = onnx.load(str(target))
    _quantize_embeddings(quantized)
    _store_weights_fp16(quantized)
    onnx.save(quantized, str(target))


def _linear_weights(model: Any) -> list[tuple[Any, Any]]:
    """(first node, weight initializer) of each MatMul / Gemm whose B is a 2-D fp32 constant, heads
    (fewer than `HEAD_COLUMNS` columns) left out: the weights the storage formats below rewrite."""
    from onnx import TensorProto

    initializers = {init.name: init for init in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2:
            continue
        init = initializers.pop(node.input[1], None)  # the weight: B of MatMul / Gemm; once if shared
        if (
            init is not None
            and init.data_type == TensorProto.FLOAT
            and len(init.dims) == 2
            and min(init.dims) >= HEAD_COLUMNS
        ):
            found.append((node, init))
    return found


def _store_weights_fp16(model: Any) -> list[str]:
    """Store the remaining fp32 weight matrices of linear layers in fp16, cast back to fp32 on load.

    Attention and FFN down-projections stay fp32 in the int8-blockwise model (int8 there costs
    parity), which made them half of its 55 MiB. ONNX Runtime folds each Cast of a constant into an
    fp32 initializer when the session starts, so the optimized graph, its speed and its memory are
    the same as before; only the file shrinks (to about 41 MiB) and the weights are rounded to fp16
    (relative error 0.05%: 0.0025 max score change on 400 comments, training/EXPERIMENTS.md).
    The label and span heads (fewer than `HEAD_COLUMNS` columns) stay fp32. Returns the names
    replaced.
    """
    from onnx import TensorProto, helper, numpy_helper

    replaced: list[str] = []
    for node, init in _linear_weights(model):
        name = init.name
        weights = numpy_helper.to_array(init).astype(np.float16)
        model.graph.initializer.remove(init)
        model.graph.initializer.append(numpy_helper.from_array(weights, f"{name}_fp16"))
        cast = helper.make_node("Cast", [f"{name}_fp16"], [name], name=f"{name}_cast", to=TensorProto.FLOAT)
        model.graph.node.insert(list(model.graph.node).index(node), cast)
        replaced.append(name)
    return replaced


def _int8_scales(largest: NDArray[np.float32]) -> NDArray[np.float16]:
    """fp16 scales that map each block's largest magnitude to 127. A block too small for an fp16
    scale (all zeros, or under 127 x 6e-8) gets 1, so it stores zeros instead of dividing by zero."""
    scales = (largest / 127.0).astype(np.float16)
    return np.where(scales > 0, scales, np.float16(1.0))


def _gptq_int8(
    weights: NDArray[np.float32],
    hessian: NDArray[np.float64],
    block: int,
    damping: float = 0.01,
    act_order: bool = False,
) -> tuple[NDArray[np.int8], NDArray[np.float16]]:
    """Round an (input, output) weight matrix to int8 with an fp16 scale per block of `block` rows
    and output column, each row's rounding error pushed onto the rows not yet rounded (GPTQ,
    Frantar et al. 2023), so that the layer's output on the calibration activations moves as
    little as possible; plain rounding ignores how the activations weigh and correlate the rows.

    `hessian`: X^T X of the layer's input over calibration tokens (`_activation_hessians`),
    damped by `damping` times its mean diagonal. Each block's scale is set from the block's
    weights as updated when it is reached. With `act_order`, the rows are rounded loudest input
    channel first (by X^T X's diagonal), so that the quiet rows absorb the loud ones' error; the
    blocks then no longer come in order, so each block's scale is set from its weights before any
    update ("static groups") and a weight pushed past it is clipped. Returns (values (rows/block,
    block, cols), scales (rows/block, 1, cols)), the layout of `_store_weights_int8`.
    """
    w = weights.astype(np.float64)
    rows, cols = w.shape
    h = hessian.astype(np.float64)
    dead = np.diag(h) <= 0  # channels never active in calibration: their weights cannot matter there
    h[dead, dead] = 1.0
    w[dead] = 0.0
    h[np.diag_indices(rows)] += damping * np.mean(np.diag(h))
    if act_order:
        return _gptq_int8_act_order(w, h, block)
    # Upper Cholesky factor U of H^-1 (H^-1 = U^T U): row i says how rounding row i should move
    # the rows after it, U[i, i] how much that row's error counts.
    u = np.linalg.cholesky(np.linalg.inv(h)).T
    values = np.empty((rows, cols), np.int8)
    scales = np.empty((rows // block, 1, cols), np.float16)
    for g in range(rows // block):
        a, b = g * block, (g + 1) * block
        scales[g, 0] = _int8_scales(np.abs(w[a:b]).max(axis=0).astype(np.float32))
        scale = scales[g, 0].astype(np.float64)
        errors = np.empty((block, cols))
        for i in range(a, b):
            q = np.clip(np.round(w[i] / scale), -127, 127)
            values[i] = q
            errors[i - a] = (w[i] - q * scale) / u[i, i]
            w[i + 1 : b] -= np.outer(u[i, i + 1 : b], errors[i - a])
        w[b:] -= u[a:b, b:].T @ errors
    return values.reshape(rows // block, block, cols), scales


def _gptq_int8_act_order(
    w: NDArray[np.float64], h: NDArray[np.float64], block: int, lazy: int = 128
) -> tuple[NDArray[np.int8], NDArray[np.float16]]:
    """`_gptq_int8` with `act_order` on a damped `h`: static block scales, rows in the order of
    H's diagonal, descending; updates to the rows after each run of `lazy` rows are batched."""
    rows, cols = w.shape
    scales = _int8_scales(np.abs(w.reshape(rows // block, block, cols)).max(axis=1).astype(np.float32))
    order = np.argsort(-np.diag(h), kind="stable")
    w = w[order]
    row_scales = scales.astype(np.float64)[order // block]
    u = np.linalg.cholesky(np.linalg.inv(h[np.ix_(order, order)])).T
    values = np.empty((rows, cols), np.int8)
    for a in range(0, rows, lazy):
        b = min(a + lazy, rows)
        errors = np.empty((b - a, cols))
        for i in range(a, b):
            q = np.clip(np.round(w[i] / row_scales[i]), -127, 127)
            values[order[i]] = q
            errors[i - a] = (w[i] - q * row_scales[i]) / u[i, i]
            w[i + 1 : b] -= np.outer(u[i, i + 1 : b], errors[i - a])
        w[b:] -= u[a:b, b:].T @ errors
    return values.reshape(rows // block, block, cols), scales[:, None, :]


def _store_weights_int8(
    model: Any,
    block: int,
    hessians: dict[str, NDArray[np.float64]] | None = None,
    only: Collection[str] | None = None,
    act_order: bool = False,
) -> list[str]:
    """Store every linear layer's weights in int8 with an fp16 scale per block of `block` rows,
    multiplied back to fp32 by constant nodes that ONNX Runtime folds when the session starts.

    The file holds 1.06 bytes a weight instead of fp16's 2 (MiniLM: 10.6 M linear weights), while
    the session computes with fp32 weights exactly as "int8-compact" does: same graph after
    folding, same speed and memory, no MatMulNBits. Each weight is rounded to 1/254 of its block's
    peak (symmetric, +-127) over `block` consecutive rows of the (input, output) matrix, i.e. along
    the dot product. The heads (fewer than `HEAD_COLUMNS` columns) stay fp32; a matrix whose rows
    do not divide into blocks stays as it was. Returns the names replaced.

    Rounded to nearest ("int8-folded") it is not in the parity fallback: on the shipped network it
    gives 24.9 MB at 0.028 max |delta| on validation (int8-compact: 35.0 MB, 0.0155); smaller
    blocks (16, 8, 4) or fp16 for some layer kinds stayed over 0.02 too (training/EXPERIMENTS.md);
    "int8-gptq" is the same storage with GPTQ rounding. With `hessians` (X^T X of each layer's
    input, keyed by the input's name) a layer is rounded by `_gptq_int8` instead of to nearest;
    with `only`, just the layers that read one of those inputs are stored; `act_order` is
    `_gptq_int8`'s.
    """
    from onnx import TensorProto, helper, numpy_helper

    replaced: list[str] = []
    for node, init in _linear_weights(model):
        if init.dims[0] % block or (only is not None and node.input[0] not in only):
            continue
        name = init.name
        weights = numpy_helper.to_array(init).astype(np.float32)
        rows, cols = weights.shape
        if hessians is not None and node.input[0] in hessians:
            values, scales = _gptq_int8(weights, hessians[node.input[0]], block, act_order=act_order)
        else:
            grouped = weights.reshape(rows // block, block, cols)
            scales = _int8_scales(np.abs(grouped).max(axis=1, keepdims=True))
            values = np.clip(np.round(grouped / scales.astype(np.float32)), -127, 127).astype(np.int8)
        model.graph.initializer.remove(init)
        p = f"{name}_q8"
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(values, f"{p}_values"),
                numpy_helper.from_array(scales, f"{p}_scales"),
                numpy_helper.from_array(np.array([rows, cols], np.int64), f"{p}_shape"),
            ]
        )
        at = list(model.graph.node).index(node)
        dequantize = [
            helper.make_node("Cast", [f"{p}_values"], [f"{p}_vf"], name=f"{p}_cast", to=TensorProto.FLOAT),
            helper.make_node("Cast", [f"{p}_scales"], [f"{p}_sf"], name=f"{p}_cast_s", to=TensorProto.FLOAT),
            helper.make_node("Mul", [f"{p}_vf", f"{p}_sf"], [f"{p}_x"], name=f"{p}_scale"),
            helper.make_node("Reshape", [f"{p}_x", f"{p}_shape"], [name], name=f"{p}_reshape"),
        ]
        for offset, new_node in enumerate(dequantize):
            model.graph.node.insert(at + offset, new_node)
        replaced.append(name)
    return replaced


def _quantize_embeddings(model: Any, min_rows: int = 1000, int8_block: int = 0) -> list[str]:
    """Store large embedding tables (the word-piece vocabulary) in fp16 or int8, fp32 after lookup.

    The vocabulary table is half of MiniLM's weights (30,522 x 384) and stayed fp32 in the first
    int8 model. fp16 (relative error 0.05%) stays at the fp32 table's parity and saves 22 MB; the
    lookup becomes Gather(fp16) -> Cast. With `int8_block` > 0 the table is int8 with an fp16 scale
    per block of that many columns of a row (symmetric, +-127), another 11 MB less: the lookup
    gathers the int8 rows and their scales and multiplies them back to fp32. One scale per whole
    row took an earlier fine-tuned model to 0.030 max |delta| on validation (training/EXPERIMENTS.md);
    blocks bound each value's rounding by its block's peak instead of the row's.
    Returns the tables replaced.
    """
    from onnx import TensorProto, helper, numpy_helper

    tables = {
        init.name: init
        for init in model.graph.initializer
        if len(init.dims) == 2 and init.dims[0] >= min_rows
    }
    replaced: list[str] = []
    for node in list(model.graph.node):
        if node.op_type != "Gather" or node.input[0] not in tables:
            continue
        name = node.input[0]
        table = numpy_helper.to_array(tables[name])
        rows, width = table.shape
        if int8_block and width % int8_block:
            raise ValueError(f"embedding {name}: width {width} is not a multiple of block {int8_block}")
        model.graph.initializer.remove(tables.pop(name))
        ids, out = node.input[1], node.output[0]
        at = list(model.graph.node).index(node)
        model.graph.node.remove(node)
        if int8_block:
            blocks = width // int8_block
            grouped = table.astype(np.float32).reshape(rows, blocks, int8_block)
            scales = _int8_scales(np.abs(grouped).max(axis=2))
            steps = grouped / scales.astype(np.float32)[:, :, None]
            values = np.clip(np.round(steps), -127, 127).astype(np.int8).reshape(rows, width)
            p = f"{name}_q8"
            model.graph.initializer.extend(
                [
                    numpy_helper.from_array(values, f"{p}_values"),
                    numpy_helper.from_array(scales, f"{p}_scales"),
                    numpy_helper.from_array(np.array([0, 0, blocks, int8_block], np.int64), f"{p}_blocked"),
                    numpy_helper.from_array(np.array([0, 0, blocks, 1], np.int64), f"{p}_per_block"),
                    numpy_helper.from_array(np.array([0, 0, width], np.int64), f"{p}_rows"),
                ]
            )
            lookup = [
                helper.make_node("Gather", [f"{p}_values", ids], [f"{p}_v"], name=f"{p}_gather", axis=0),
                helper.make_node("Cast", [f"{p}_v"], [f"{p}_vf"], name=f"{p}_cast", to=TensorProto.FLOAT),
                helper.make_node("Reshape", [f"{p}_vf", f"{p}_blocked"], [f"{p}_vb"], name=f"{p}_reshape"),
                helper.make_node("Gather", [f"{p}_scales", ids], [f"{p}_s"], name=f"{p}_gather_s", axis=0),
                helper.make_node("Cast", [f"{p}_s"], [f"{p}_sf"], name=f"{p}_cast_s", to=TensorProto.FLOAT),
                helper.make_node(
                    "Reshape", [f"{p}_sf", f"{p}_per_block"], [f"{p}_sb"], name=f"{p}_reshape_s"
                ),
                helper.make_node("Mul", [f"{p}_vb", f"{p}_sb"], [f"{p}_x"], name=f"{p}_scale"),
                helper.make_node("Reshape", [f"{p}_x", f"{p}_rows"], [out], name=f"{p}_rows"),
            ]
        else:
            model.graph.initializer.append(numpy_helper.from_array(table.astype(np.float16), f"{name}_fp16"))
            lookup = [
                helper.make_node(
                    "Gather", [f"{name}_fp16", ids], [f"{out}_fp16"], name=f"{node.name}_fp16", axis=0
                ),
                helper.make_node(
                    "Cast", [f"{out}_fp16"], [out], name=f"{node.name}_cast", to=TensorProto.FLOAT
                ),
            ]
        for offset, new_node in enumerate(lookup):
            model.graph.node.insert(at + offset, new_node)
        replaced.append(name)
    return replaced


# A MatMul with fewer output columns than this is a head (labels or span labels): kept fp32.
HEAD_COLUMNS = 16
# int8 weights times uint8 activations: on x86 CPUs without VNNI (AVX2 only: e.g. the AMD EPYC
# machines CI has run on) MLAS adds the products pairwise in int16, which saturates once
# 2 x 255 x |w| > 32767; it gave scores 0.12 away from fp32 there, against < 0.02 on a VNNI CPU.
# Weights within +-63 (7 bits) cannot saturate, so an artifact scores the same on every x86 CPU.
WEIGHT_LEVELS = 63.0


def _matmul_activations(
    model: Any, feeds: Sequence[dict[str, NDArray[np.int64]]], names: Sequence[str] | None = None
) -> Iterator[dict[str, NDArray[np.float32]]]:
    """For each feed, the real-token rows (tokens x channels) of every input of a MatMul with a
    constant weight (or of the tensors `names`), as `model` computes them."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    probe = type(model)()
    probe.CopyFrom(model)
    weights = {init.name for init in probe.graph.initializer}
    activations = (
        sorted(
            {
                node.input[0]
                for node in probe.graph.node
                if node.op_type == "MatMul" and node.input[1] in weights
            }
        )
        if names is None
        else list(names)
    )
    present = {out.name for out in probe.graph.output}
    probe.graph.output.extend(
        helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
        for name in activations
        if name not in present
    )
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    output_names = [out.name for out in session.get_outputs()]
    inputs = {inp.name for inp in session.get_inputs()}
    for feed in feeds:
        outputs = session.run(None, {key: value for key, value in feed.items() if key in inputs})
        values = dict(zip(output_names, outputs, strict=True))
        real = feed["attention_mask"].astype(bool)
        rows: dict[str, NDArray[np.float32]] = {}
        for name in activations:
            x = values[name]
            rows[name] = x[real] if x.ndim == 3 and x.shape[:2] == real.shape else x.reshape(-1, x.shape[-1])
        yield rows


def _activation_ranges(
    model: Any, feeds: Sequence[dict[str, NDArray[np.int64]]]
) -> dict[str, NDArray[np.float32]]:
    """Per-channel max |x| of every input of a MatMul with a constant weight, over the real tokens of `feeds`."""
    ranges: dict[str, NDArray[np.float32]] = {}
    for rows in _matmul_activations(model, feeds):
        for name, x in rows.items():
            peak = np.abs(x).max(axis=0)
            ranges[name] = np.maximum(ranges[name], peak) if name in ranges else peak
    return ranges


def _activation_hessians(
    model: Any, feeds: Sequence[dict[str, NDArray[np.int64]]], names: Sequence[str] | None = None
) -> dict[str, NDArray[np.float64]]:
    """X^T X of every input X (real tokens x channels) of a MatMul with a constant weight (or of
    the tensors `names`), summed over `feeds`: the curvature of that layer's squared output error
    in its weights."""
    hessians: dict[str, NDArray[np.float64]] = {}
    for rows in _matmul_activations(model, feeds, names):
        for name, x in rows.items():
            x64 = x.astype(np.float64)
            gram = x64.T @ x64
            hessians[name] = hessians[name] + gram if name in hessians else gram
    return hessians


def _quantize_per_token(
    source: Path,
    target: Path,
    calibration: Sequence[dict[str, NDArray[np.int64]]],
    alpha: float = 0.5,
    fp32_down_projections: bool = False,
) -> None:
    """int8 weights (per output channel) and int8 activations with one scale per token, smoothed.

    ORT's dynamic quantization gives a whole batch one activation scale: a comment's scores then
    depend on its neighbours, and one outlier token coarsens everyone's. Here each token's
    activations get their own scale (max |x| / 127, computed in the graph), so a comment scores the
    same alone or batched. Before that, SmoothQuant (Xiao et al., 2023) moves the activations'
    outlier channels into the weights: x / s and diag(s) W with s = max|x|^alpha / max|W|^(1-alpha),
    from per-channel maxima measured on `calibration` feeds (training comments). Each linear layer
    becomes MatMulIntegerToFloat (uint8 activations offset by 128, int8 weights) times the token
    scales. Heads (fewer than HEAD_COLUMNS outputs) stay fp32. Word-piece table in fp16 as above.
    Weights use 7 bits (`WEIGHT_LEVELS`), as `reduce_range` does in ORT's dynamic quantization.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    ranges = _activation_ranges(model, calibration)
    initializers = {init.name: init for init in graph.initializer}

    def weight_of(node: Any) -> NDArray[np.float32] | None:
        init = initializers.get(node.input[1]) if node.op_type == "MatMul" else None
        if init is None or len(init.dims) != 2 or init.dims[1] < HEAD_COLUMNS:
            return None
        if fp32_down_projections and init.dims[0] > init.dims[1]:  # FFN down-projection (narrows)
            return None
        return numpy_helper.to_array(init).astype(np.float32)

    # Layers that read the same activation (query, key, value) share one smoothing and quantization.
    weight_peaks: dict[str, NDArray[np.float32]] = {}
    for node in graph.node:
        w = weight_of(node)
        if w is not None:
            peak = np.abs(w).max(axis=1)
            x = node.input[0]
            weight_peaks[x] = np.maximum(weight_peaks[x], peak) if x in weight_peaks else peak

    added: list[Any] = []

    def constant(name: str, value: NDArray[Any]) -> str:
        added.append(numpy_helper.from_array(value, name))
        return name

    constant("pt_127", np.array(127.0, dtype=np.float32))
    constant("pt_128", np.array(128.0, dtype=np.float32))
    constant("pt_tiny", np.array(1e-8, dtype=np.float32))
    constant("pt_one", np.array(1.0, dtype=np.float32))
    constant("pt_zero_point", np.array(128, dtype=np.uint8))
    nodes: list[Any] = []
    quantized: dict[str, tuple[str, str, NDArray[np.float32]]] = {}  # activation -> (uint8, scales, s)
    replaced: set[str] = set()
    for node in graph.node:
        w = weight_of(node)
        if w is None:
            nodes.append(node)
            continue
        x = node.input[0]
        if x not in quantized:
            p = f"pt{len(quantized)}_"
            act_peak = np.maximum(ranges[x], 1e-5)
            factors: NDArray[np.float32] = np.clip(
                act_peak**alpha / np.maximum(weight_peaks[x], 1e-5) ** (1 - alpha), 1e-2, 1e2
            ).astype(np.float32)
            inverse = (1.0 / factors).astype(np.float32)
            nodes += [
                helper.make_node("Mul", [x, constant(p + "inv_smooth", inverse)], [p + "x"]),
                helper.make_node("Abs", [p + "x"], [p + "abs"]),
                helper.make_node("ReduceMax", [p + "abs"], [p + "peak"], axes=[-1], keepdims=1),
                helper.make_node("Max", [p + "peak", "pt_tiny"], [p + "peak_pos"]),
                helper.make_node("Div", [p + "peak_pos", "pt_127"], [p + "scale"]),
                helper.make_node("Div", [p + "x", p + "scale"], [p + "steps"]),
                helper.make_node("Round", [p + "steps"], [p + "rounded"]),
                helper.make_node("Add", [p + "rounded", "pt_128"], [p + "shifted"]),
                helper.make_node("Cast", [p + "shifted"], [p + "q"], to=TensorProto.UINT8),
            ]
            quantized[x] = (p + "q", p + "scale", factors)
        q, scale, smooth = quantized[x]
        w = (w * smooth[:, None]).astype(np.float32)
        w_scale = (np.maximum(np.abs(w).max(axis=0), 1e-12) / WEIGHT_LEVELS).astype(np.float32)
        w_int8 = np.clip(np.round(w / w_scale), -WEIGHT_LEVELS, WEIGHT_LEVELS).astype(np.int8)
        name = node.input[1]
        replaced.add(name)
        out = node.output[0]
        nodes += [
            helper.make_node(
                "MatMulIntegerToFloat",
                [
                    q,
                    constant(name + "_int8", w_int8),
                    "pt_one",
                    constant(name + "_scale", w_scale),
                    "pt_zero_point",
                ],
                [out + "_unscaled"],
                name=(node.name or out) + "_int8",
                domain="com.microsoft",
            ),
            helper.make_node("Mul", [out + "_unscaled", scale], [out], name=(node.name or out) + "_rescale"),
        ]
    kept = [init for init in graph.initializer if init.name not in replaced]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept + added)
    if not any(op.domain == "com.microsoft" for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    _quantize_embeddings(model)
    onnx.save(model, str(target))


def _store_fp16(source: Path, target: Path, table_block: int = 0) -> None:
    """Every linear layer's weights stored in fp16 and computed in fp32; the word-piece table in fp16,
    or with `table_block` in int8 (a scale per block of that many columns).

    Rounding the weights to fp16 moves scores by a few thousandths. With the fp16 table this is the
    last resort of the parity fallback ("fp16-weights", no int8, 44 MiB for MiniLM); with the int8
    table it is "int8-compact" (33 MiB), the first fallback: 0.0155 max |delta| on validation for
    the shipped network, about what int8 FFN weights with an fp16 table ("int8-weights", 41 MiB)
    gave on the same recipe (0.0159), with no MatMulNBits (training/EXPERIMENTS.md).
    """
    import onnx

    model = onnx.load(str(source))
    _quantize_embeddings(model, int8_block=table_block)
    _store_weights_fp16(model)
    onnx.save(model, str(target))


def _store_int8(source: Path, target: Path, block: int, table_block: int | None = None) -> None:
    """The word-piece table and every linear layer stored in int8 (an fp16 scale per block of
    `block` values; `table_block` for the table when given), all computed in fp32: "int8-folded",
    the smallest export that keeps fp32 compute.
    """
    import onnx

    model = onnx.load(str(source))
    _quantize_embeddings(model, int8_block=table_block or block)
    _store_weights_int8(model, block)
    onnx.save(model, str(target))


def _store_int8_gptq(
    source: Path,
    target: Path,
    calibration: Sequence[dict[str, NDArray[np.int64]]],
    block: int,
    table_block: int | None = None,
    act_order: bool = False,
    fp16_layers: Callable[[str], bool] | None = None,
) -> None:
    """The layout of "int8-folded" in blocks of `block` (`table_block` for the table when given),
    each linear layer rounded by GPTQ on the calibration comments' activations, not to nearest
    (`act_order`: `_gptq_int8`'s). Layers whose node name `fp16_layers` accepts are stored in
    fp16 instead.

    Sequential, as GPTQ itself: the table is stored first, then the layers that read each input in
    graph order, each input's X^T X measured through the graph as stored so far, so that a layer
    also makes up for the rounding upstream of it. (X^T X from the fp32 graph for all layers at
    once did worse on the shipped network: training/EXPERIMENTS.md.)
    """
    import onnx

    model = onnx.load(str(source))
    _quantize_embeddings(model, int8_block=table_block or block)
    layers = _linear_weights(model)
    kept = {node.input[0] for node, _ in layers if fp16_layers is not None and fp16_layers(node.name)}
    order = [name for name in dict.fromkeys(node.input[0] for node, _ in layers) if name not in kept]
    for name in order:
        hessians = _activation_hessians(model, calibration, [name])
        _store_weights_int8(model, block, hessians, only={name}, act_order=act_order)
    if kept:
        _store_weights_fp16(model)
    onnx.save(model, str(target))


def _is_up_projection(node_name: str) -> bool:
    """BERT's FFN up-projection (`.../layer.N/intermediate/dense/...`), the part whose int8 weights
    add the most to the parity tail (figures above DEFAULT_METHOD); "int8-mixed" keeps it in fp16."""
    return "/intermediate/dense" in node_name


def _is_down_projection(node_name: str) -> bool:
    """BERT's FFN down-projection: `.../layer.N/output/dense/...`, not the attention output's."""
    return "/output/dense" in node_name and "/attention/" not in node_name


def _is_attention(node_name: str) -> bool:
    """BERT's attention layers: query, key, value (`.../attention/self/...`) and its output dense."""
    return "/attention/" in node_name


def _is_query_or_key(node_name: str) -> bool:
    """The two layers whose products make the attention scores, before the softmax."""
    return "/attention/self/query" in node_name or "/attention/self/key" in node_name


# Parts of every encoder layer, by node name (the study layouts `gptqa16PART-L-T` keep one in fp16).
LAYER_PARTS: dict[str, Callable[[str], bool]] = {
    "up": _is_up_projection,
    "down": _is_down_projection,
    "ffn": lambda name: _is_up_projection(name) or _is_down_projection(name),
    "attn": _is_attention,
    "qk": _is_query_or_key,
}


def _no_calibration(method: Callable[[Path, Path], None]) -> Quantizer:
    return lambda source, target, _calibration: method(source, target)


Quantizer = Callable[[Path, Path, Sequence[dict[str, NDArray[np.int64]]]], None]
# Columns of the word-piece table that share one int8 scale in "int8-compact" (MiniLM: 12 per row).
TABLE_BLOCK = 32
# Rows of a linear layer (and columns of the word-piece table) that share one int8 scale in
# "int8-gptq" (in-order GPTQ; the default export until GPTQ exports were measured off validation,
# below). On the [CLS] network of `…0692`, blocks of 8 gave 29.2 MB at 0.0191 max |delta| on
# validation; 16: 26.4 MB, 0.0220; 32: 25.0 MB, 0.0253; rounding to nearest in blocks of 8:
# 29.2 MB, 0.0299 (training/EXPERIMENTS.md).
GPTQ_BLOCK = 8
QUANTIZERS: dict[str, Quantizer] = {
    "int8-blockwise": _no_calibration(_quantize_blockwise),
    "int8-weights": _no_calibration(partial(_quantize_blockwise, accuracy_level=1)),
    # The word-piece table in int8 (a scale per TABLE_BLOCK columns), the linear layers in fp16.
    "int8-compact": _no_calibration(partial(_store_fp16, table_block=TABLE_BLOCK)),
    # The table and the linear layers in int8 blocks, multiplied back to fp32 when the session starts.
    "int8-folded": _no_calibration(partial(_store_int8, block=TABLE_BLOCK)),
    # int8-folded's layout in blocks of GPTQ_BLOCK, each linear layer rounded by GPTQ on
    # calibration comments' activations.
    "int8-gptq": partial(_store_int8_gptq, block=GPTQ_BLOCK),
    # int8-gptq's layout with act-order rounding and the table in blocks of TABLE_BLOCK, the FFN
    # up-projections in fp16 (MiniLM: 29.4 MB; on the parity bar, so not in the chain below).
    "int8-mixed": partial(
        _store_int8_gptq,
        block=GPTQ_BLOCK,
        table_block=TABLE_BLOCK,
        act_order=True,
        fp16_layers=_is_up_projection,
    ),
    "int8-dynamic": _no_calibration(_quantize_dynamic),
    "fp16-weights": _no_calibration(_store_fp16),
    "int8-token": _quantize_per_token,
}
# The default export and its parity fallback (`moderation train` tries them in this order and keeps
# the first within MAX_PARITY of PyTorch on validation): all three compute in fp32 and run at the
# fp32 graph's speed, so the order is by file size (MiniLM: int8-compact 35 MB, int8-weights 43 MB,
# fp16-weights 46 MB). The largest difference is a tail figure, and int8 layers give it a heavier
# tail than fp16 ones. Every layout with all linear layers in int8 ("int8-gptq", the act-order
# layouts of `training.export_study`; 27-32 MB) measured 0.011-0.019 on validation and
# 0.022-0.032 on the test split for the `…9ad9` network, where int8-compact measured 0.0148 and
# 0.0145. The FFN up-projections add the most to that tail: with only them in fp16
# ("int8-mixed", 29.4 MB) three calibration samples gave 0.0168 / 0.0177, 0.0192 / 0.0190 and
# 0.0199 / 0.0201 (validation / test), on the bar rather than under it, so it is not in the chain
# either; with the down-projections or attention in fp16 instead, 0.024-0.027 on test, and with
# attention alone in int8 (32 MB) 0.0138 / 0.0208. Parity on unseen training comments did not
# show the tail, the network being surer of the comments it was trained on. int8 compute
# ("int8-blockwise": the FFN up-projections only, the most that stayed near the bar) bought no
# speed on any CPU measured (1.0x the fp32 graph with VNNI, 0.85x without) and cost parity
# (0.022-0.035 where int8-weights gave 0.016-0.018); "int8-dynamic" is 2x the fp32 graph but
# 0.2-0.3 max |delta| off PyTorch (training/EXPERIMENTS.md). All stay selectable for `make bench`
# and `training.export_study`.
DEFAULT_METHOD = "int8-compact"
# Methods that read activations of calibration comments.
CALIBRATED = ("int8-token", "int8-gptq", "int8-mixed")
# Exports whose session runs int8-folded's graph (the same operators and fp32 weights after
# folding, so the same speed): `make bench` times int8-folded only.
SAME_GRAPH_AS_FOLDED = ("int8-gptq", "int8-mixed")
# The bar for the network's int8 scores against PyTorch's (max |difference| on validation).
MAX_PARITY = 0.02
PARITY_FALLBACK = {
    "int8-compact": "int8-weights",
    "int8-weights": "fp16-weights",
}
# Up to 4 windows of 128 tokens overlapping by 32: the first ~410 tokens of a long comment are read.
DEFAULT_WINDOWS = 4
DEFAULT_OVERLAP = 32
# Training comments whose activation ranges calibrate "int8-token" (a few batches suffice).
CALIBRATION_TEXTS = 256


def _calibration_feeds(
    tokenizer: Any, texts: Sequence[str], names: Sequence[str], max_length: int, batch_size: int = 32
) -> list[dict[str, NDArray[np.int64]]]:
    feeds = []
    for i in range(0, len(texts), batch_size):
        batch = tokenizer(
            list(texts[i : i + batch_size]),
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="np",
        )
        feed = {name: batch[name].astype(np.int64) for name in names}
        feed.setdefault("attention_mask", batch["attention_mask"].astype(np.int64))
        feeds.append(feed)
    return feeds


def export_onnx(
    hf_dir: Path,
    out_dir: Path,
    *,
    max_length: int = 128,
    quantize: bool = True,
    method: str = DEFAULT_METHOD,
    opset: int = OPSET,
    max_windows: int = DEFAULT_WINDOWS,
    window_overlap: int = DEFAULT_OVERLAP,
    calibration_texts: Sequence[str] = (),
) -> list[str]:
    """Write model.onnx, tokenizer.json and transformer.json into `out_dir`; returns their names.

    Serving reads a comment longer than `max_length` tokens in up to `max_windows` overlapping
    windows (the highest logit per label wins); 1 truncates it. The `CALIBRATED` methods read
    every one of `calibration_texts` (`moderation train` passes CALIBRATION_TEXTS of them).
    """
    from tokenizers import Tokenizer

    if quantize and method not in QUANTIZERS:
        raise ValueError(f"unknown quantization method {method!r} (known: {', '.join(QUANTIZERS)})")
    model, tokenizer = _load_hf(hf_dir, EXPORT_ATTENTION)
    _check_model(model, max_length)
    if quantize and method in CALIBRATED and not calibration_texts:
        raise ValueError(f"{method} quantization needs calibration_texts (training comments)")
    head = SpanHead.load(hf_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="onnx-export-") as tmp:
        fp32 = Path(tmp) / MODEL_FILE
        inputs = _export_graph(model, tokenizer, fp32, opset, head)
        if quantize:
            feeds = _calibration_feeds(tokenizer, calibration_texts, inputs, max_length)
            QUANTIZERS[method](fp32, out_dir / MODEL_FILE, feeds)
        else:
            shutil.move(fp32, out_dir / MODEL_FILE)

    # A copy of the fast tokenizer's own state, with the truncation the graph was exported for.
    served = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    served.enable_truncation(max_length)
    served.no_padding()
    served.save(str(out_dir / TOKENIZER_FILE))

    id2label = model.config.id2label
    ServingConfig(
        max_length=max_length,
        inputs=tuple(inputs),
        output=OUTPUT,
        outputs_logits=True,
        pad_token_id=int(tokenizer.pad_token_id or 0),
        labels=tuple(str(id2label[i]) for i in range(model.config.num_labels)),
        quantization=method if quantize else "none",
        token_output=TOKEN_OUTPUT if head is not None else "",
        span_labels=head.labels if head is not None else (),
        span_thresholds=head.thresholds if head is not None else (),
        max_windows=max_windows,
        # A short max_length (tests, experiments) gets a proportionally short overlap.
        window_overlap=min(window_overlap, max_length // 4) if max_windows > 1 else 0,
    ).write(out_dir)
    size = (out_dir / MODEL_FILE).stat().st_size / 2**20
    logger.info("exported %s to %s (%s, %.1f MiB)", hf_dir, out_dir, method if quantize else "fp32", size)
    return list(FILES)


class TorchBackend:
    """The PyTorch model behind the Backend interface: the reference for parity and benchmarks."""

    def __init__(self, model: Any, tokenizer: Any, max_length: int, batch_size: int = 32):
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size

    @classmethod
    def load(cls, hf_dir: Path, max_length: int = 128, batch_size: int = 32) -> TorchBackend:
        """Load a save_pretrained folder."""
        model, tokenizer = _load_hf(hf_dir)
        _check_model(model, max_length)
        return cls(model, tokenizer, max_length, batch_size)

    def predict_raw(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """Sigmoid of the logits, shape (len(texts), n_labels)."""
        import torch

        texts = list(texts)
        parts = [np.zeros((0, self.model.config.num_labels), dtype=np.float64)]
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    texts[i : i + self.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                logits = self.model(**batch).logits
                parts.append(torch.sigmoid(logits.double()).numpy())
        return np.vstack(parts)


def network_scores(
    hf_dir: Path, backend: TransformerBackend, texts: Sequence[str], batch_size: int = 32
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """PyTorch and ONNX sigmoid scores of `texts`, both reading the first max_length tokens."""
    texts = list(texts)
    if not texts:
        raise ValueError("parity needs at least one text")
    reference = TorchBackend.load(hf_dir, backend.config.max_length, batch_size).predict_raw(texts)
    return reference, onnx_network_scores(backend, texts)


def onnx_network_scores(backend: TransformerBackend, texts: Sequence[str]) -> NDArray[np.float64]:
    """The ONNX network's sigmoid scores of the first max_length tokens (serving's extra windows of
    long comments aside), to compare with PyTorch's."""
    windows, backend.max_windows = backend.max_windows, 1
    try:
        return backend.predict_raw(list(texts))
    finally:
        backend.max_windows = windows


def parity_report(
    backend: TransformerBackend, reference: NDArray[np.float64], served: NDArray[np.float64]
) -> dict[str, Any]:
    """Max and mean absolute difference between the two score arrays of `network_scores`."""
    diff = np.abs(reference - served)
    return {
        "n": len(diff),
        "quantization": backend.config.quantization,
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "max_abs_diff_per_label": dict(
            zip(
                backend.config.labels or map(str, range(diff.shape[1])),
                map(float, diff.max(axis=0)),
                strict=True,
            )
        ),
    }


def parity(
    hf_dir: Path, backend: TransformerBackend, texts: Sequence[str], batch_size: int = 32
) -> dict[str, Any]:
    """Max and mean absolute difference between PyTorch and ONNX sigmoid scores on `texts`."""
    return parity_report(backend, *network_scores(hf_dir, backend, texts, batch_size))
