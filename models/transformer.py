"""Transformer backend: a fine-tuned encoder served through ONNX Runtime, without torch.

An artifact of kind "transformer" holds three model files: `model.onnx` (the exported
classifier, fp32 or int8), `tokenizer.json` (a `tokenizers` tokenizer with its truncation set)
and `transformer.json` (a `ServingConfig`). `training.export` writes them.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from models.errors import ArtifactError

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "transformer.json"
FILES = (MODEL_FILE, TOKENIZER_FILE, CONFIG_FILE)
# ONNX models run on any later onnxruntime and tokenizer.json is a stable format: nothing to pin.
PINNED_LIBRARIES: tuple[str, ...] = ()
KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
THREADS_ENV = "MODERATION_ONNX_THREADS"
CONFIG_FORMAT = 1
# "int8-dynamic": int8 weights and per-batch int8 activations (quantize_dynamic);
# "int8-blockwise": FFN up-projections only, int8 weights in blocks of 16
# (MatMulNBits) with activations quantized per row block, the rest fp32 (stored as fp16); no
# batch dependence; "int8-weights": the same int8 weights, dequantized and computed in fp32 (no
# activation error);
# "int8-token": every linear layer but the heads in int8, activations smoothed (SmoothQuant) and
# quantized with one scale per token (MatMulIntegerToFloat); no batch dependence.
# "int8-compact": the word-piece table in int8 (a scale per block of 32), every linear layer stored
# in fp16, all computed in fp32.
# "int8-folded": the table and every linear layer in int8 (a scale per block of 32), multiplied
# back to fp32 by constant nodes that ONNX Runtime folds when the session starts: int8-compact's
# session in a smaller file; "int8-gptq": the same in blocks of 8, each layer rounded by GPTQ on
# calibration comments instead of to nearest; "int8-mixed": int8-gptq's layout (act-order) with
# the FFN up-projections in fp16. "int8-compact" is the export default; `moderation train` falls
# back to "int8-weights", then "fp16-weights" when it misses parity.
# "fp16-weights": no int8; weights stored in fp16 and computed in fp32 (the fallback's last resort).
QUANTIZATIONS = (
    "none",
    "int8-dynamic",
    "int8-blockwise",
    "int8-weights",
    "int8-compact",
    "int8-folded",
    "int8-gptq",
    "int8-mixed",
    "int8-token",
    "fp16-weights",
)


@dataclass(frozen=True)
class ServingConfig:
    """The contents of transformer.json: how to feed the ONNX graph and read its output."""

    max_length: int
    inputs: tuple[str, ...]
    output: str = "logits"
    outputs_logits: bool = True
    pad_token_id: int = 0
    labels: tuple[str, ...] = ()
    quantization: str = "none"
    # The token-level span head, when the graph has one: its output (batch, sequence, K) of logits,
    # the K labels it explains and each one's probability threshold (chosen on validation).
    token_output: str = ""
    span_labels: tuple[str, ...] = ()
    span_thresholds: tuple[float, ...] = ()
    # Comments longer than max_length are read in up to `max_windows` windows of max_length tokens,
    # each overlapping the previous by `window_overlap`; a label's logit is its maximum over the
    # windows. 1 = truncate at max_length.
    max_windows: int = 1
    window_overlap: int = 0

    def __post_init__(self) -> None:
        if self.max_length < 2:
            raise ValueError(f"max_length must be at least 2, not {self.max_length}")
        unknown = [name for name in self.inputs if name not in KNOWN_INPUTS]
        if "input_ids" not in self.inputs or unknown:
            raise ValueError(f"inputs must include input_ids and be among {KNOWN_INPUTS}, not {self.inputs}")
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization must be one of {QUANTIZATIONS}, not {self.quantization!r}")
        if self.max_windows < 1:
            raise ValueError(f"max_windows must be at least 1, not {self.max_windows}")
        if not 0 <= self.window_overlap < self.max_length - 2:
            raise ValueError(
                f"window_overlap must be within 0..{self.max_length - 3}, not {self.window_overlap}"
            )
        if len(self.span_labels) != len(self.span_thresholds):
            raise ValueError("span_labels and span_thresholds must have the same length")
        if self.span_labels and not self.token_output:
            raise ValueError("span_labels need a token_output")
        if self.labels and not set(self.span_labels) <= set(self.labels):
            raise ValueError(f"span_labels {self.span_labels} must be among labels {self.labels}")
        if any(not 0.0 <= t <= 1.0 for t in self.span_thresholds):
            raise ValueError("span_thresholds must be within 0..1")

    def to_json(self) -> dict[str, Any]:
        """Serialise to the transformer.json structure."""
        data = {"format": CONFIG_FORMAT, **asdict(self)}
        if not self.token_output:  # files of models without a span head stay as they were
            for key in ("token_output", "span_labels", "span_thresholds"):
                data.pop(key)
        if self.max_windows == 1:
            for key in ("max_windows", "window_overlap"):
                data.pop(key)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServingConfig:
        """Parse transformer.json; raises ValueError, KeyError or TypeError when malformed."""
        if data.get("format") != CONFIG_FORMAT:
            raise ValueError(f"unsupported format {data.get('format')!r}")
        return cls(
            max_length=int(data["max_length"]),
            inputs=tuple(str(x) for x in data["inputs"]),
            output=str(data.get("output", "logits")),
            outputs_logits=bool(data.get("outputs_logits", True)),
            pad_token_id=int(data.get("pad_token_id", 0)),
            labels=tuple(str(x) for x in data.get("labels", ())),
            quantization=str(data.get("quantization", "none")),
            token_output=str(data.get("token_output", "")),
            span_labels=tuple(str(x) for x in data.get("span_labels", ())),
            span_thresholds=tuple(float(x) for x in data.get("span_thresholds", ())),
            max_windows=int(data.get("max_windows", 1)),
            window_overlap=int(data.get("window_overlap", 0)),
        )

    def write(self, directory: Path) -> None:
        """Write transformer.json into `directory`."""
        text = json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"
        (directory / CONFIG_FILE).write_text(text, encoding="utf-8")


def default_threads(env: dict[str, str] | None = None) -> int:
    """Intra-op threads: $MODERATION_ONNX_THREADS, else every CPU."""
    value = (os.environ if env is None else env).get(THREADS_ENV, "")
    if value.strip():
        try:
            threads = int(value)
        except ValueError:
            raise ArtifactError(f"{THREADS_ENV}={value!r} is not a whole number") from None
        if threads < 1:
            raise ArtifactError(f"{THREADS_ENV} must be at least 1, not {threads}")
        return threads
    return os.cpu_count() or 1


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    # Split by sign so large negative logits never overflow exp().
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


@dataclass(frozen=True)
class TokenScores:
    """The span head's output for one text: token character ranges (T, 2) and probabilities (T, K)."""

    offsets: NDArray[np.int64]
    probs: NDArray[np.float64]


class TransformerBackend:
    """Raw (uncalibrated) per-label probabilities from an ONNX sequence classifier."""

    def __init__(
        self,
        session: Any,
        tokenizer: Tokenizer,
        config: ServingConfig,
        source: Path,
        n_labels: int,
        batch_size: int = 32,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self.session = session
        self.tokenizer = tokenizer
        self.config = config
        self.source = source
        self.n_labels = n_labels
        self.batch_size = batch_size
        self.max_windows = config.max_windows  # 1 reads only the first window (parity checks do)
        self._dtypes = _input_dtypes(session)

    @property
    def span_labels(self) -> tuple[str, ...]:
        """Labels the graph's token-level head explains (empty without one)."""
        return self.config.span_labels

    @property
    def span_thresholds(self) -> tuple[float, ...]:
        """The span head's probability threshold per label in `span_labels`."""
        return self.config.span_thresholds

    def predict_raw(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """Uncalibrated probabilities, shape (len(texts), n_labels), in the order of `texts`."""
        return self._run(texts, with_tokens=False)[0]

    def predict_raw_with_tokens(self, texts: Sequence[str]) -> tuple[NDArray[np.float64], list[TokenScores]]:
        """Raw probabilities and, per text, the span head's token probabilities with their offsets."""
        if not self.config.token_output:
            raise ArtifactError(f"transformer model {self.source.name} has no span head")
        return self._run(texts, with_tokens=True)

    def _run(
        self, texts: Sequence[str], *, with_tokens: bool
    ) -> tuple[NDArray[np.float64], list[TokenScores]]:
        texts = list(texts)
        out = np.zeros((len(texts), self.n_labels), dtype=np.float64)
        tokens: list[TokenScores] = []
        if not texts:
            return out, tokens
        # A text's windows: its encoding (the first max_length tokens) and the overflowing ones.
        windows: list[tuple[int, Encoding]] = []
        for i, enc in enumerate(self.tokenizer.encode_batch(texts)):
            windows.append((i, enc))
            windows.extend((i, extra) for extra in enc.overflowing[: self.max_windows - 1])
        names = [self.config.output, self.config.token_output] if with_tokens else [self.config.output]
        lengths = np.fromiter((len(e.ids) for _, e in windows), dtype=np.intp, count=len(windows))
        logits = np.full((len(texts), self.n_labels), -np.inf, dtype=np.float64)
        token_parts: list[list[TokenScores]] = [[] for _ in texts]
        # Sorting by length keeps padding (wasted attention) small within each sub-batch.
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(windows), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = int(lengths[rows].max())
            ids = np.full((len(rows), width), self.config.pad_token_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros((len(rows), width), dtype=np.int64)
            for r, w in enumerate(rows):
                enc = windows[w][1]
                n = len(enc.ids)
                ids[r, :n] = enc.ids
                mask[r, :n] = 1
                types[r, :n] = enc.type_ids
            arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            feeds = {name: arrays[name].astype(self._dtypes[name], copy=False) for name in self.config.inputs}
            results = self.session.run(names, feeds)
            result = np.asarray(results[0], dtype=np.float64)
            for r, w in enumerate(rows):
                i = windows[w][0]
                logits[i] = np.maximum(logits[i], result[r])
            if with_tokens:
                token_probs = _sigmoid(np.asarray(results[1], dtype=np.float64))
                for r, w in enumerate(rows):
                    i, enc = windows[w]
                    n = len(enc.ids)
                    offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
                    # Special tokens ([CLS], [SEP]) carry no characters.
                    offsets[np.asarray(enc.special_tokens_mask, dtype=bool)] = 0
                    token_parts[i].append(TokenScores(offsets=offsets, probs=token_probs[r, :n]))
        out = _sigmoid(logits) if self.config.outputs_logits else logits
        if with_tokens:
            # Overlapping windows score some tokens twice; spans take each word's highest probability.
            tokens = [
                TokenScores(
                    offsets=np.vstack([t.offsets for t in parts]), probs=np.vstack([t.probs for t in parts])
                )
                for parts in token_parts
            ]
        return out, tokens

    def save(self, directory: Path) -> list[str]:
        """Copy the model files into `directory`; returns the file names written."""
        if directory.resolve() != self.source.resolve():
            for name in FILES:
                shutil.copyfile(self.source / name, directory / name)
        return list(FILES)

    @classmethod
    def load(
        cls,
        directory: Path,
        n_labels: int,
        *,
        labels: Sequence[str] | None = None,
        threads: int | None = None,
        batch_size: int = 32,
    ) -> TransformerBackend:
        """Load from an artifact folder; `labels`, when given, must match the exported head's."""
        name = directory.name
        config = read_serving_config(directory)
        if labels is not None and config.labels and tuple(labels) != config.labels:
            raise ArtifactError(
                f"transformer model {name}: its head's labels {list(config.labels)} "
                f"do not match the artifact's {list(labels)}"
            )
        tokenizer = _read_tokenizer(directory, config)
        session = _open_session(directory, threads if threads is not None else default_threads())
        session_inputs = set(_input_dtypes(session))
        if session_inputs != set(config.inputs):
            raise ArtifactError(
                f"transformer model {name}: {MODEL_FILE} takes {sorted(session_inputs)}, "
                f"{CONFIG_FILE} feeds {sorted(config.inputs)}"
            )
        outputs = {o.name: o.shape for o in session.get_outputs()}
        if config.output not in outputs:
            raise ArtifactError(f"transformer model {name}: {MODEL_FILE} has no output {config.output!r}")
        shape = outputs[config.output]
        width = shape[-1] if shape else None
        if not isinstance(width, int):
            # A symbolic width: learn it from one tiny run, which also proves the graph executes.
            width = _probe_width(session, tokenizer, config, name)
        if width != n_labels:
            raise ArtifactError(f"transformer model {name}: {width} outputs for {n_labels} labels")
        if config.token_output and config.token_output not in outputs:
            raise ArtifactError(
                f"transformer model {name}: {MODEL_FILE} has no span-head output {config.token_output!r}"
            )
        return cls(session, tokenizer, config, directory, n_labels, batch_size)


def _input_dtypes(session: Any) -> dict[str, type[np.integer[Any]]]:
    # Token ids are int64 in graphs exported from torch; honour an int32 graph all the same.
    return {i.name: np.int32 if i.type == "tensor(int32)" else np.int64 for i in session.get_inputs()}


def _probe_width(session: Any, tokenizer: Tokenizer, config: ServingConfig, name: str) -> int:
    enc = tokenizer.encode("")
    dtypes = _input_dtypes(session)
    arrays = {
        "input_ids": np.array([enc.ids]),
        "attention_mask": np.ones((1, len(enc.ids))),
        "token_type_ids": np.array([enc.type_ids]),
    }
    feeds = {n: arrays[n].astype(dtypes[n]) for n in config.inputs}
    try:
        (result,) = session.run([config.output], feeds)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ArtifactError(f"transformer model {name}: a test run failed ({exc})") from None
    return int(np.asarray(result).shape[-1])


def read_serving_config(directory: Path) -> ServingConfig:
    """Read and validate `directory/transformer.json`; raises ArtifactError with a one-line reason."""
    try:
        data = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError("not an object")
        return ServingConfig.from_json(data)
    except FileNotFoundError:
        raise ArtifactError(f"transformer model {directory.name}: {CONFIG_FILE} is missing") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"transformer model {directory.name}: malformed {CONFIG_FILE} ({exc})") from None


def _read_tokenizer(directory: Path, config: ServingConfig) -> Tokenizer:
    from tokenizers import Tokenizer

    file = directory / TOKENIZER_FILE
    if not file.is_file():
        raise ArtifactError(f"transformer model {directory.name}: {TOKENIZER_FILE} is missing")
    try:
        tokenizer = Tokenizer.from_file(str(file))
    except Exception as exc:  # the Rust side raises a bare Exception for any parse error
        raise ArtifactError(
            f"transformer model {directory.name}: cannot read {TOKENIZER_FILE} ({exc})"
        ) from None
    # The graph was exported for max_length tokens, whatever the file says; padding is ours (per sub-batch).
    # Texts beyond max_length overflow into further windows when the model reads several.
    tokenizer.enable_truncation(
        config.max_length, stride=config.window_overlap if config.max_windows > 1 else 0
    )
    tokenizer.no_padding()
    return tokenizer


def _open_session(directory: Path, threads: int) -> Any:
    import onnxruntime as ort

    file = directory / MODEL_FILE
    if not file.is_file():
        raise ArtifactError(f"transformer model {directory.name}: {MODEL_FILE} is missing")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    # One request runs one graph at a time; parallelism comes from intra-op threads.
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(str(file), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable graphs
        raise ArtifactError(f"transformer model {directory.name}: cannot load {MODEL_FILE} ({exc})") from None
