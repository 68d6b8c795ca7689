"""`moderation models ...`: list, show, promote (through the gate), rollback, history."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from models.errors import InputDataError, NoActiveModelError
from models.gate import (
    MAX_AUC_DROP,
    MAX_BIAS_FPR_RISE,
    MIN_FEEDBACK_ROWS,
    GateError,
    GateResult,
    compare_stored,
)
from models.registry import Registry

EXIT_REFUSED = 1


def _active(registry: Registry) -> str | None:
    try:
        return registry.active_id()
    except NoActiveModelError:
        return None


def _headline(metrics: dict[str, object]) -> str:
    value = metrics.get("macro_roc_auc")
    return f"{value:.3f}" if isinstance(value, float) else "-"


def run(args: argparse.Namespace, registry: Registry) -> int:
    """Dispatch one `models` action; returns the exit code."""
    action = args.models_command
    if action == "list":
        active = _active(registry)
        infos = registry.list()
        if not infos:
            print("no models; train one with `moderation train --kind linear`")
            return 0
        print(f"{'':2}{'id':<36} {'kind':<12} {'created':<20} {'macro AUC':>9}  source")
        for info in infos:
            mark = "* " if info.id == active else "  "
            source = "shipped" if registry.is_shipped(info.id) else "local"
            print(
                f"{mark}{info.id:<36} {info.kind:<12} {info.created_at[:19]:<20} {_headline(info.metrics):>9}  {source}"
            )
        return 0
    if action == "show":
        info = registry.get(args.model_id)
        data = info.to_json()
        data["active"] = info.id == _active(registry)
        data["path"] = str(info.path)
        data.pop("calibration", None)
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    if action == "promote":
        return promote(args, registry)
    if action == "recalibrate":
        from training.cli import recalibrate

        return recalibrate(args, registry)
    if action == "history":
        for entry in registry.promotions():
            print(json.dumps(entry, sort_keys=True))
        return 0
    if action == "rollback":
        restored = registry.rollback()
        print(f"active model: {restored}")
        return 0
    raise AssertionError(f"unhandled models action {action}")


def cli_actor() -> str:
    """How the registry's history names a command-line user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def feedback_for_gate(given: Path | None) -> Path | None:
    """The feedback corpus the gate compares on: the one given, else the default export if it exists."""
    from training.options import default_feedback_path

    if given is not None:
        return given
    default = default_feedback_path(os.environ)
    return default if default.is_file() else None


def gate_limits(args: argparse.Namespace) -> dict[str, Any]:
    """The gate's tolerances from the command line."""
    return {
        "max_auc_drop": args.max_auc_drop,
        "max_bias_fpr_rise": args.max_bias_fpr_rise,
        "min_feedback_rows": args.min_feedback_rows,
    }


def gated_promote(
    registry: Registry,
    model_id: str,
    *,
    actor: str,
    feedback: Path | None = None,
    data_dir: Path | None = None,
    limits: dict[str, Any] | None = None,
) -> tuple[int, GateResult | None]:
    """Promote `model_id` if the gate passes, printing the comparison; EXIT_REFUSED when refused."""
    from training.promotion import check_promotion

    result = check_promotion(registry, model_id, data_dir=data_dir, feedback_path=feedback, **(limits or {}))
    if result is None:
        print(f"no other active model to compare {model_id} with")
    else:
        print(f"{model_id} (candidate) against the active model {result.active_id}:")
        print(result.table())
        if not result.passed:
            print(
                f"moderation: promotion refused: {len(result.regressions)} figure(s) got worse; "
                f"promote anyway with --force --reason TEXT\n{result.table(only_worse=True)}",
                file=sys.stderr,
            )
            return EXIT_REFUSED, result
    previous = registry.promote(model_id, actor=actor)
    print(f"active model: {model_id} (previous: {previous or 'none'})")
    return 0, result


def forced_promote(registry: Registry, model_id: str, *, actor: str, reason: str) -> int:
    """Promote over the gate; what got worse (if the stored reports can tell) is recorded with the reason."""
    try:
        result = compare_stored(registry, model_id)
        regressions = result.regression_lines() if result is not None else []
    except GateError as exc:
        regressions = [f"not compared: {exc}"]
    previous = registry.promote(model_id, actor=actor, forced=True, reason=reason, regressions=regressions)
    for line in regressions:
        print(f"forced over: {line}")
    print(f"active model: {model_id} (previous: {previous or 'none'}), forced: {reason}")
    return 0


def promote(args: argparse.Namespace, registry: Registry) -> int:
    """`moderation models promote ID [--force --reason TEXT]`."""
    if args.force:
        if not (args.reason or "").strip():
            raise InputDataError("--force needs --reason TEXT (it is recorded in the registry's history)")
        return forced_promote(registry, args.model_id, actor=cli_actor(), reason=args.reason.strip())
    code, _ = gated_promote(
        registry,
        args.model_id,
        actor=cli_actor(),
        feedback=feedback_for_gate(args.feedback),
        data_dir=args.data_dir,
        limits=gate_limits(args),
    )
    return code


def add_gate_arguments(parser: argparse.ArgumentParser, *, sources: bool = True) -> None:
    """The gate's tolerances, and (with `sources`) where its data comes from."""
    if sources:
        parser.add_argument(
            "--feedback",
            type=Path,
            metavar="FILE",
            help="feedback corpus whose held-out slice is compared too "
            "(default: $MODERATION_DATA_DIR/feedback/feedback.jsonl when it exists)",
        )
        parser.add_argument("--data-dir", type=Path, help="corpora folder (default training/data)")
    parser.add_argument(
        "--max-auc-drop",
        type=float,
        default=MAX_AUC_DROP,
        help="refuse when a label's ROC-AUC drops by more (default %(default)s)",
    )
    parser.add_argument(
        "--max-bias-fpr-rise",
        type=float,
        default=MAX_BIAS_FPR_RISE,
        help="refuse when the bias set's false-positive rate rises by more (default %(default)s)",
    )
    parser.add_argument(
        "--min-feedback-rows",
        type=int,
        default=MIN_FEEDBACK_ROWS,
        help="gate a label on the feedback slice only with this many judged rows (default %(default)s)",
    )
