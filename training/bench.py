"""`make bench`: throughput and latency of the scorers on the same 2,000 test comments.

One run times the fine-tuned network as PyTorch fp32, ONNX fp32 and each ONNX int8 export (from
the newest artifact's Hugging Face folder, or the pretrained encoder with an untrained head when
none is here: same computation), then the active model exactly as the service serves it (for an
ensemble: int8 transformer + linear), and the linear baseline. "x pytorch" is throughput relative
to the PyTorch fp32 row of the same run.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.artifact import ArtifactInfo
from models.calibration import Calibrator
from models.errors import ModerationError
from models.labels import LABEL_NAMES
from models.registry import Registry, default_registry_dir
from models.scoring import Model
from models.transformer import THREADS_ENV
from training.export import DEFAULT_METHOD, QUANTIZERS, SAME_GRAPH_AS_FOLDED

HF_SUBDIR = "hf"


def bench_model(model: Model, texts: list[str], batch_size: int, single: int) -> dict[str, float]:
    """Comments per second in batches, and single-comment latency percentiles (ms)."""
    model.score(texts[:batch_size])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        model.score(texts[i : i + batch_size])
    throughput = len(texts) / (time.perf_counter() - start)
    latencies = []
    for text in texts[:single]:
        t0 = time.perf_counter()
        model.score([text])
        latencies.append((time.perf_counter() - t0) * 1000)
    q = np.percentile(latencies, [50, 95, 99])
    return {
        "per_s": throughput,
        "p50": float(q[0]),
        "p95": float(q[1]),
        "p99": float(q[2]),
        "mean": statistics.fmean(latencies),
    }


@dataclass
class Candidate:
    """One row of the table, loaded only when its turn comes (one model in memory at a time)."""

    name: str
    variant: str
    load: Callable[[], Model]


def _hf_only_info(hf_dir: Path) -> ArtifactInfo:
    """Identity calibration for an HF folder that is not (yet) part of an artifact."""
    return ArtifactInfo(
        id=f"hf:{hf_dir.name}",
        kind="transformer",
        labels=LABEL_NAMES,
        thresholds=dict.fromkeys(LABEL_NAMES, 0.5),
        calibration={name: Calibrator() for name in LABEL_NAMES},
        files={},
        versions={},
        created_at="",
    )


def _latest_with_hf(registry: Registry) -> ArtifactInfo | None:
    """The newest transformer or ensemble artifact that still has its Hugging Face folder."""
    for info in reversed(registry.list()):
        if (
            info.kind in ("transformer", "ensemble")
            and info.path is not None
            and (info.path / HF_SUBDIR).is_dir()
        ):
            return info
    return None


def stand_in_hf(directory: Path) -> Path:
    """The pretrained MiniLM encoder with an untrained head of our labels, saved to `directory`.

    Speed depends on the architecture and sequence lengths, not on the weights' values, so when no
    fine-tuned PyTorch folder is at hand (a fresh clone ships only the ONNX model) this stands in
    for it in the PyTorch / ONNX fp32 / int8 rows.
    """
    from transformers import AutoTokenizer

    from training.network import new_classifier
    from training.transformer import encoder_dir

    base = encoder_dir()
    model = new_classifier(base, "mean", LABEL_NAMES)  # the shipped network's pooling
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(base).save_pretrained(directory)
    return directory


def transformer_candidates(
    hf_dir: Path,
    name: str,
    workdir: Path,
    *,
    max_length: int = 128,
    threads: int | None = None,
    calibration_texts: Sequence[str] = (),
) -> list[Candidate]:
    """The same network as PyTorch fp32, ONNX fp32 and each ONNX int8 export (identity calibration).

    `calibration_texts` (training comments) calibrate the int8-token export's activation ranges.
    """
    info = _hf_only_info(hf_dir)

    def torch_backend() -> Model:
        import torch

        from training.export import TorchBackend

        if threads is not None:
            torch.set_num_threads(threads)
        return Model(info, TorchBackend.load(hf_dir, max_length, batch_size=64))

    def exported(quantization: str) -> Callable[[], Model]:
        def load() -> Model:
            from models.transformer import TransformerBackend
            from training.export import export_onnx

            out = workdir / quantization
            quantize = quantization != "none"
            method = quantization if quantize else DEFAULT_METHOD
            # One window, as PyTorch truncates: the same computation in every row (serving reads
            # long comments in several windows; the "as served" row shows that).
            export_onnx(
                hf_dir,
                out,
                max_length=max_length,
                quantize=quantize,
                method=method,
                max_windows=1,
                calibration_texts=calibration_texts,
            )
            return Model(info, TransformerBackend.load(out, len(LABEL_NAMES), labels=LABEL_NAMES))

        return load

    # GPTQ layouts run int8-folded's graph after loading: int8-folded stands for them.
    timed = [m for m in QUANTIZERS if m not in SAME_GRAPH_AS_FOLDED]
    return [
        Candidate(name, "pytorch fp32", torch_backend),
        Candidate(name, "onnx fp32", exported("none")),
        *(Candidate(name, f"onnx {method}", exported(method)) for method in sorted(timed)),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Print a benchmark table; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m training.bench", description=__doc__)
    parser.add_argument("--model", help="artifact timed as served (default: the active model)")
    parser.add_argument(
        "--transformer",
        help="artifact whose hf/ folder gives the PyTorch row (default: the newest one with it)",
    )
    parser.add_argument(
        "--hf-dir", type=Path, help=f"its Hugging Face folder (default: <artifact>/{HF_SUBDIR} when present)"
    )
    parser.add_argument("--linear", help="linear artifact id (default: the newest linear one)")
    parser.add_argument(
        "--max-length", type=int, default=128, help="tokens per comment for the transformer rows"
    )
    parser.add_argument(
        "--threads", type=int, help="intra-op threads of torch and onnxruntime (default: their own)"
    )
    parser.add_argument("--n", type=int, default=2000, help="test comments to score")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--single", type=int, default=300, help="comments timed one at a time")
    args = parser.parse_args(argv)

    from training.dataset import build_dataset

    if args.threads is not None:
        # onnxruntime sessions read it when they open; torch is only imported by the rows that need it.
        os.environ[THREADS_ENV] = str(args.threads)
    registry = Registry(default_registry_dir(os.environ))
    try:
        served_id = args.model or registry.active_id()
        linear_id = args.linear or _linear_id(registry, served_id)
        for artifact_id in (served_id, linear_id):
            if artifact_id:
                registry.path(artifact_id)
        source = registry.get(args.transformer) if args.transformer else _latest_with_hf(registry)
    except ModerationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    df = build_dataset()
    test = df[df["split"] == "test"].sample(frac=1.0, random_state=0)
    texts = test["text"].head(args.n).tolist()
    threads = args.threads or "default"
    print(f"{len(texts)} test comments, batch {args.batch_size}, {os.cpu_count()} CPUs, threads {threads}")

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        hf_dir: Path | None = args.hf_dir
        name = f"hf:{hf_dir.name}" if hf_dir else ""
        if hf_dir is None and source is not None and source.path is not None:
            hf_dir, name = source.path / HF_SUBDIR, source.id
        if hf_dir is None:
            hf_dir, name = stand_in_hf(Path(tmp) / "stand-in"), "MiniLM-L6 stand-in (same network)"
            print("no fine-tuned PyTorch folder here: the transformer rows time the pretrained encoder")
            print("with an untrained head, which runs exactly the same computation")
        calibration = df[df["split"] == "train"].sample(n=256, random_state=0)["text"].tolist()
        rows = transformer_candidates(
            hf_dir,
            name,
            Path(tmp),
            max_length=args.max_length,
            threads=args.threads,
            calibration_texts=calibration,
        )
        if served_id:
            rows.append(Candidate(served_id, "as served", functools.partial(registry.load, served_id)))
        if linear_id and linear_id != served_id:
            rows.append(Candidate(linear_id, "linear", functools.partial(registry.load, linear_id)))

        print(
            f"{'model':<36} {'variant':<22} {'comments/s':>11} {'x pytorch':>10} "
            f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        )
        reference: float | None = None
        for row in rows:
            model = row.load()
            r = bench_model(model, texts, args.batch_size, args.single)
            if row.variant == "pytorch fp32":
                reference = r["per_s"]
            ratio = f"{r['per_s'] / reference:.2f}" if reference else "-"
            print(
                f"{row.name[:36]:<36} {row.variant:<22} {r['per_s']:>11.0f} {ratio:>10} "
                f"{r['p50']:>8.2f} {r['p95']:>8.2f} {r['p99']:>8.2f}",
                flush=True,
            )
            del model
    return 0


def _linear_id(registry: Registry, served_id: str | None) -> str | None:
    """The served model when it is linear, else the newest linear artifact (the shipped baseline)."""
    infos = registry.list()
    if served_id and any(i.id == served_id and i.kind == "linear" for i in infos):
        return served_id
    linear = [i.id for i in infos if i.kind == "linear"]
    return linear[-1] if linear else None


if __name__ == "__main__":
    sys.exit(main())
