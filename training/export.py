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
from collections.abc import Sequence
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


def _load_hf(hf_dir: Path) -> tuple[Any, Any]:
    """The classifier (eval mode) and its fast tokenizer from a save_pretrained folder."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if not (hf_dir / "config.json").is_file():
        raise FileNotFoundError(f"{hf_dir} is not a Hugging Face model folder (no config.json)")
    model = AutoModelForSequenceClassification.from_pretrained(hf_dir)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
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
    quantize_dynamic(prepared, target, weight_type=QuantType.QInt8, per_channel=True)


def _all_but_up_projections(model: Any) -> list[str]:
    """MatMuls with a constant weight that does not widen its input: all but the FFN up-projections."""
    weights = {init.name: tuple(init.dims) for init in model.graph.initializer}
    names = []
    for node in model.graph.node:
        shape = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) > 1 else None
        if shape is not None and len(shape) == 2 and shape[0] >= shape[1]:
            names.append(node.name)
    return names


def _quantize_blockwise(source: Path, target: Path) -> None:
    import onnx

    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )
    except ImportError as exc:  # the quantizer needs onnx_ir (the "train" extra)
        raise RuntimeError(f"int8-blockwise quantization needs the onnx-ir package ({exc})") from None

    # accuracy_level 4 computes in int8, quantizing activations per row block, so a comment's
    # scores do not depend on which other comments share its batch (they do with "dynamic").
    # Only the FFN up-projections: int8 anywhere else (or blocks of 32) took the first fine-tuned
    # MiniLM past 0.02 max |delta| on validation (training/EXPERIMENTS.md, "Int8 parity study").
    model = onnx.load(str(source))
    options: dict[str, Any] = {"bits": 8, "block_size": 16, "is_symmetric": True, "accuracy_level": 4}
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
    onnx.save(quantized, str(target))


def _quantize_embeddings(model: Any, min_rows: int = 1000) -> list[str]:
    """Store large embedding tables (the word-piece vocabulary) in fp16, cast to fp32 after lookup.

    The vocabulary table is half of MiniLM's weights (30,522 x 384) and stayed fp32 in the int8
    model. int8 with a scale per row took the fine-tuned model to 0.030 max |delta| on validation
    (over the 0.02 bar); fp16 (relative error 0.05%) stays at the fp32 table's figure and saves 22 MB
    (training/EXPERIMENTS.md). The lookup becomes Gather(fp16) -> Cast. Returns the tables replaced.
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
        weights = numpy_helper.to_array(tables[name]).astype(np.float16)
        model.graph.initializer.remove(tables.pop(name))
        model.graph.initializer.append(numpy_helper.from_array(weights, f"{name}_fp16"))
        ids, out = node.input[1], node.output[0]
        at = list(model.graph.node).index(node)
        model.graph.node.remove(node)
        model.graph.node.insert(
            at,
            helper.make_node(
                "Gather", [f"{name}_fp16", ids], [f"{out}_fp16"], name=f"{node.name}_fp16", axis=0
            ),
        )
        model.graph.node.insert(
            at + 1,
            helper.make_node("Cast", [f"{out}_fp16"], [out], name=f"{node.name}_cast", to=TensorProto.FLOAT),
        )
        replaced.append(name)
    return replaced


QUANTIZERS = {"int8-blockwise": _quantize_blockwise, "int8-dynamic": _quantize_dynamic}
# Blockwise meets the 0.02 parity bar on real fine-tuned weights (~1.1x the fp32 graph's speed);
# "int8-dynamic" is ~2x the fp32 graph's speed but was 0.32 max |delta| off PyTorch (EXPERIMENTS.md).
DEFAULT_METHOD = "int8-blockwise"
# Up to 4 windows of 128 tokens overlapping by 32: the first ~410 tokens of a long comment are read.
DEFAULT_WINDOWS = 4
DEFAULT_OVERLAP = 32


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
) -> list[str]:
    """Write model.onnx, tokenizer.json and transformer.json into `out_dir`; returns their names.

    Serving reads a comment longer than `max_length` tokens in up to `max_windows` overlapping
    windows (the highest logit per label wins); 1 truncates it.
    """
    from tokenizers import Tokenizer

    if quantize and method not in QUANTIZERS:
        raise ValueError(f"unknown quantization method {method!r} (known: {', '.join(QUANTIZERS)})")
    model, tokenizer = _load_hf(hf_dir)
    _check_model(model, max_length)
    head = SpanHead.load(hf_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="onnx-export-") as tmp:
        fp32 = Path(tmp) / MODEL_FILE
        inputs = _export_graph(model, tokenizer, fp32, opset, head)
        if quantize:
            QUANTIZERS[method](fp32, out_dir / MODEL_FILE)
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


def parity(
    hf_dir: Path, backend: TransformerBackend, texts: Sequence[str], batch_size: int = 32
) -> dict[str, Any]:
    """Max and mean absolute difference between PyTorch and ONNX sigmoid scores on `texts`."""
    texts = list(texts)
    if not texts:
        raise ValueError("parity needs at least one text")
    reference = TorchBackend.load(hf_dir, backend.config.max_length, batch_size).predict_raw(texts)
    # The network's parity: both read the first max_length tokens (serving's extra windows aside).
    windows, backend.max_windows = backend.max_windows, 1
    try:
        served = backend.predict_raw(texts)
    finally:
        backend.max_windows = windows
    diff = np.abs(reference - served)
    return {
        "n": len(texts),
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
