"""`make bench`: throughput and latency of the scorers on the same 2,000 test comments.

One run compares the transformer as PyTorch fp32, ONNX fp32 and ONNX int8 (all with the
transformer artifact's calibration) with the linear baseline. The ONNX variant the artifact does
not hold is exported on the fly from its Hugging Face folder; whatever cannot be built is skipped
and said so.
"""

from __future__ import annotations

import argparse
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
from models.scoring import Backend, Model
from models.transformer import THREADS_ENV
from training.export import DEFAULT_METHOD, QUANTIZERS

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


def _latest_transformer(registry: Registry) -> str | None:
    ids = [info.id for info in registry.list() if info.kind == "transformer"]
    return ids[-1] if ids else None


def transformer_candidates(
    info: ArtifactInfo | None,
    hf_dir: Path | None,
    workdir: Path,
    *,
    max_length: int = 128,
    int8: str = DEFAULT_METHOD,
    threads: int | None = None,
) -> tuple[list[Candidate], list[str]]:
    """PyTorch fp32, ONNX fp32 and ONNX int8 rows for an artifact and/or its HF folder."""
    from models.transformer import read_serving_config

    rows: list[Candidate] = []
    skipped: list[str] = []
    if info is not None:
        base = info
    elif hf_dir is not None:
        base = _hf_only_info(hf_dir)
    else:
        return rows, ["transformer: no transformer artifact (pass --transformer or --hf-dir)"]
    held = "none"
    if info is not None and info.path is not None:
        served = read_serving_config(info.path)
        held, max_length = served.quantization, served.max_length

    def artifact_model() -> Model:
        assert base.path is not None
        return Model.load(base.path)

    def with_backend(make: Callable[[], Backend]) -> Callable[[], Model]:
        return lambda: Model(base, make())

    def exported(quantization: str) -> Callable[[], Model]:
        def make() -> Backend:
            from models.transformer import TransformerBackend
            from training.export import export_onnx

            assert hf_dir is not None
            out = workdir / quantization
            quantize = quantization != "none"
            export_onnx(hf_dir, out, max_length=max_length, quantize=quantize, method=int8)
            return TransformerBackend.load(out, len(LABEL_NAMES), labels=LABEL_NAMES)

        return with_backend(make)

    def torch_backend() -> Backend:
        import torch

        from training.export import TorchBackend

        assert hf_dir is not None
        if threads is not None:
            torch.set_num_threads(threads)
        return TorchBackend.load(hf_dir, max_length, batch_size=64)

    no_hf = "no Hugging Face folder (pass --hf-dir)"
    if hf_dir is not None:
        rows.append(Candidate(base.id, "pytorch fp32", with_backend(torch_backend)))
    else:
        skipped.append(f"pytorch fp32: {no_hf}")
    for quantized in (False, True):
        if info is not None and (held != "none") == quantized:
            rows.append(Candidate(base.id, "onnx " + (held if quantized else "fp32"), artifact_model))
        elif hf_dir is not None:
            wanted = int8 if quantized else "none"
            label = "onnx " + (int8 if quantized else "fp32") + " (exported)"
            rows.append(Candidate(base.id, label, exported(wanted)))
        else:
            what = "onnx int8" if quantized else "onnx fp32"
            skipped.append(f"{what}: the artifact holds {'fp32' if held == 'none' else held}; {no_hf}")
    return rows, skipped


def main(argv: Sequence[str] | None = None) -> int:
    """Print a benchmark table; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m training.bench", description=__doc__)
    parser.add_argument("--transformer", help="transformer artifact id (default: the newest one)")
    parser.add_argument(
        "--hf-dir", type=Path, help=f"its Hugging Face folder (default: <artifact>/{HF_SUBDIR} when present)"
    )
    parser.add_argument("--linear", help="linear artifact id (default: the shipped model)")
    parser.add_argument(
        "--max-length", type=int, default=128, help="tokens, for an --hf-dir without artifact"
    )
    parser.add_argument(
        "--int8",
        default=DEFAULT_METHOD,
        choices=sorted(QUANTIZERS),
        help="quantization of an int8 model exported from the HF folder",
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
        transformer_id = args.transformer or _latest_transformer(registry)
        info = registry.get(transformer_id) if transformer_id else None
        linear_id = args.linear or registry.shipped_default()
        if linear_id:
            registry.path(linear_id)
    except ModerationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    hf_dir: Path | None = args.hf_dir
    if hf_dir is None and info is not None and info.path is not None and (info.path / HF_SUBDIR).is_dir():
        hf_dir = info.path / HF_SUBDIR

    df = build_dataset()
    test = df[df["split"] == "test"].sample(frac=1.0, random_state=0)
    texts = test["text"].head(args.n).tolist()
    threads = args.threads or "default"
    print(f"{len(texts)} test comments, batch {args.batch_size}, {os.cpu_count()} CPUs, threads {threads}")

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        rows: list[Candidate] = []
        skipped: list[str] = []
        if info is None and hf_dir is None:
            skipped.append(
                "transformer: no transformer artifact in the registry (pass --transformer or --hf-dir)"
            )
        else:
            rows, skipped = transformer_candidates(
                info, hf_dir, Path(tmp), max_length=args.max_length, int8=args.int8, threads=args.threads
            )
        if linear_id:
            rows.append(Candidate(linear_id, "linear", lambda: registry.load(linear_id)))
        else:
            skipped.append("linear: no shipped model (pass --linear)")

        print(f"{'model':<36} {'variant':<26} {'comments/s':>11} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
        for row in rows:
            model = row.load()
            r = bench_model(model, texts, args.batch_size, args.single)
            print(
                f"{row.name:<36} {row.variant:<26} {r['per_s']:>11.0f} "
                f"{r['p50']:>8.2f} {r['p95']:>8.2f} {r['p99']:>8.2f}",
                flush=True,
            )
            del model
    for reason in skipped:
        print(f"skipped {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
