"""`make bench`: throughput and latency of the served scorers on the same 2,000 test comments."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence

import numpy as np

from models.registry import Registry, default_registry_dir
from models.scoring import Model


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


def main(argv: Sequence[str] | None = None) -> int:
    """Print a benchmark table; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m training.bench", description=__doc__)
    parser.add_argument("--models", nargs="*", help="artifact ids (default: the active model)")
    parser.add_argument("--n", type=int, default=2000, help="test comments to score")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--single", type=int, default=300, help="comments timed one at a time")
    args = parser.parse_args(argv)

    from training.dataset import build_dataset

    df = build_dataset()
    test = df[df["split"] == "test"].sample(frac=1.0, random_state=0)
    texts = test["text"].head(args.n).tolist()
    registry = Registry(default_registry_dir(os.environ))
    ids = args.models or [registry.active_id()]
    print(f"{len(texts)} test comments, batch {args.batch_size}, {os.cpu_count()} CPUs")
    print(f"{'model':<36} {'kind':<12} {'comments/s':>11} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for artifact_id in ids:
        model = registry.load(artifact_id)
        r = bench_model(model, texts, args.batch_size, args.single)
        print(
            f"{model.id:<36} {model.info.kind:<12} {r['per_s']:>11.0f} {r['p50']:>8.2f} {r['p95']:>8.2f} {r['p99']:>8.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
