"""Handlers of `moderation train` and `moderation evaluate` (called by cli.main)."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from models.errors import InputDataError
from models.registry import Registry
from training.options import config_from_args


def command_line(argv: list[str], kind: str) -> str:
    """The `moderation train ...` command this process runs, for the artifact's record.

    The console script (`moderation train ...`) and a launcher such as `python -c "...main(sys.argv[1:])"
    train ...` both leave the subcommand and its options after argv[0]; anything else (a test
    calling `train` directly) records the kind alone.
    """
    if argv[1:2] == ["train"]:
        return "moderation " + shlex.join(argv[1:])
    return f"moderation train --kind {kind}"


def train(args: argparse.Namespace, registry: Registry) -> int:
    """Train a model, store it, print its evaluation summary; exit code."""
    from training.train import summary
    from training.train import train as run_training

    try:
        config = config_from_args(args)
    except ValueError as exc:
        raise InputDataError(str(exc)) from None
    started = time.monotonic()
    info, report = run_training(config, registry, command_line(sys.argv, config.kind))
    print(summary(report))
    print(f"\ntrained {info.id} in {time.monotonic() - started:.0f}s -> {info.path}")
    print(f"report: {info.path}/report.md; promote with: moderation models promote {info.id}")
    return 0


def recalibrate(args: argparse.Namespace, registry: Registry) -> int:
    """Store a recalibrated copy of a model, print its evaluation summary; exit code."""
    from training.train import recalibrate as run_recalibration
    from training.train import summary

    command = f"moderation models recalibrate {args.model_id}"
    started = time.monotonic()
    info, report = run_recalibration(registry, args.model_id, command, data_dir=args.data_dir)
    print(summary(report))
    print(f"\nrecalibrated {args.model_id} as {info.id} in {time.monotonic() - started:.0f}s -> {info.path}")
    print(f"report: {info.path}/report.md; promote with: moderation models promote {info.id}")
    return 0


def evaluate(args: argparse.Namespace, registry: Registry) -> int:
    """Evaluate a stored model on the standing test splits; exit code."""
    from training.evaluate import evaluate_model, load_eval_data
    from training.report import format_summary, write_report
    from training.train import baseline_evaluation

    model = registry.load(args.model_id)
    data = load_eval_data(args.data_dir)
    baseline, baseline_scores = None, None
    if not args.no_compare and registry.active_id() != model.id:
        baseline, baseline_scores = baseline_evaluation(registry, data)
    report, inputs = evaluate_model(model, data, baseline=baseline, baseline_scores=baseline_scores)
    out: Path | None = args.out
    if out is None and model.info.path is not None and not registry.is_shipped(model.id):
        out = model.info.path
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_report(report, out, inputs)
    print(format_summary(report))
    if out is not None:
        print(f"\nreport written to {out}/report.md")
    return 0
