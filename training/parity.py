"""Parity of the served scores: `python -m training.parity ARTIFACT --hf-dir DIR`.

`training.export.parity` compares the network's raw sigmoid scores, ONNX against PyTorch. What a
newsroom sees is the artifact's final score: for an ensemble, the transformer's logit blended with
the linear model's, then calibrated. This scores the validation split through the artifact twice,
once with its ONNX transformer and once with the PyTorch model it was exported from in its place
(the first max_length tokens in both, as PyTorch truncates), and reports the largest differences of
the raw network score and of the served (blended, calibrated) score. `--split test` does the same
on the test split: `moderation train` picks the export by its validation parity, so the test
rows show the difference on comments that choice never saw.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.ensemble import EnsembleBackend, blend
from models.errors import ModerationError
from models.registry import Registry, default_registry_dir
from models.scoring import Model
from models.transformer import TransformerBackend
from training.export import network_scores, parity_report


def served_parity(
    model: Model,
    hf_dir: Path,
    texts: Sequence[str],
    batch_size: int = 32,
    scores: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
) -> dict[str, Any]:
    """Max and mean |difference| of raw and served scores, ONNX transformer vs its PyTorch source.

    `scores`: the PyTorch and ONNX network scores of `texts` (as `network_scores` returns them),
    when already computed; else computed here.
    """
    backend = model.backend
    onnx_half = backend.transformer if isinstance(backend, EnsembleBackend) else backend
    if not isinstance(onnx_half, TransformerBackend):
        raise ValueError(f"{model.id} has no ONNX transformer (kind {model.info.kind})")
    texts = list(texts)
    if scores is None:
        torch_raw, onnx_raw = network_scores(hf_dir, onnx_half, texts, batch_size)
    else:
        torch_raw, onnx_raw = scores
        expected = (len(texts), len(model.labels))
        if torch_raw.shape != expected or onnx_raw.shape != expected:
            raise ValueError(
                f"network scores of shapes {torch_raw.shape} and {onnx_raw.shape} do not match {expected}"
            )
    if isinstance(backend, EnsembleBackend):
        linear_raw = backend.linear.predict_raw(texts)
        served_onnx = model.calibrate(blend(onnx_raw, linear_raw, backend.weights))
        served_torch = model.calibrate(blend(torch_raw, linear_raw, backend.weights))
    else:
        served_onnx, served_torch = model.calibrate(onnx_raw), model.calibrate(torch_raw)
    network = parity_report(onnx_half, torch_raw, onnx_raw)
    served_diff = np.abs(served_onnx - served_torch)
    return {
        "model": model.id,
        "n": len(texts),
        "quantization": network["quantization"],
        "raw_max_abs_diff": network["max_abs_diff"],
        "raw_mean_abs_diff": network["mean_abs_diff"],
        "served_max_abs_diff": float(served_diff.max()),
        "served_mean_abs_diff": float(served_diff.mean()),
        "served_max_abs_diff_per_label": dict(
            zip(model.labels, map(float, served_diff.max(axis=0)), strict=True)
        ),
        # Decisions that change: a score on one side of its label's threshold with ONNX, the other with PyTorch.
        "flag_changes": int((model.flags(served_onnx, texts) != model.flags(served_torch, texts)).sum()),
        # The network's own parity, as `training.export.parity` reports it.
        "network": network,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print the parity report as JSON; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m training.parity", description=__doc__)
    parser.add_argument("model", help="artifact id (ensemble or transformer)")
    parser.add_argument(
        "--hf-dir", type=Path, required=True, help="the fine-tuned PyTorch folder it was exported from"
    )
    parser.add_argument(
        "--split",
        choices=("validation", "test"),
        default="validation",
        help="rows compared (default: validation, where moderation train measured the export and"
        " chose it among the parity fallback's; test: rows that choice never saw)",
    )
    parser.add_argument("--n", type=int, default=0, help="rows of the split, sampled (default: all)")
    args = parser.parse_args(argv)
    if args.n < 0:
        parser.error(f"--n must be 0 (all) or positive, not {args.n}")
    from training.dataset import build_dataset

    try:
        model = Registry(default_registry_dir(os.environ)).load(args.model)
        df = build_dataset()
        rows = df[df["split"] == args.split]
        if args.n:
            rows = rows.sample(n=min(args.n, len(rows)), random_state=0)
        report = {"split": args.split, **served_parity(model, args.hf_dir, rows["text"].tolist())}
    except (ModerationError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
