"""The promotion gate's figures, computed as training reports them.

Used by `moderation models promote` and `moderation retrain`; the comparison itself is
`models.gate.compare`. For each model: its stored report.json when it was computed on the current
standing test splits (same test_data_hash), else a fresh evaluation (without spans, which the gate
does not read); and, given a feedback corpus, its figures on the held-out feedback slice, always
fresh (the slice is small and grows with every export).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from models.errors import NoActiveModelError
from models.gate import GateMetrics, GateResult, GateRow, compare, metrics_from_report
from models.registry import Registry
from training.dataset import DEFAULT_DATA_DIR, build_dataset
from training.evaluate import EvalData, evaluate_model, load_eval_data
from training.feedback import FeedbackSet, evaluate_feedback, load_feedback
from training.report import lookup, paired_reading

logger = logging.getLogger(__name__)


def gate_metrics(
    registry: Registry, model_id: str, data: EvalData, feedback: FeedbackSet | None = None
) -> GateMetrics:
    """One model's figures on the standing test splits, the bias set and the held-out feedback slice."""
    report = registry.report(model_id)
    model = None
    if report is None or report.get("test_data_hash") != data.data_hash:
        logger.info("evaluating %s on the standing test splits (no stored report for them)", model_id)
        model = registry.load(model_id)
        report, _ = evaluate_model(model, data, with_spans=False, intervals=False)
    section: dict[str, Any] = {}
    if feedback is not None and not feedback.heldout.empty:
        model = model or registry.load(model_id)
        section = {"data_hash": feedback.heldout_hash, **evaluate_feedback(model, feedback.heldout)}
    return metrics_from_report(report, model_id=model_id, feedback=section)


def check_promotion(
    registry: Registry,
    candidate_id: str,
    *,
    data_dir: Path | None = None,
    feedback_path: Path | None = None,
    **limits: Any,
) -> GateResult | None:
    """Compare the candidate with the active model; None when there is no other active model."""
    try:
        active_id = registry.active_id()
    except NoActiveModelError:
        return None
    if active_id == candidate_id:
        return None
    registry.get(candidate_id)  # an unknown id fails here, before any data is loaded
    frame = build_dataset(data_dir or DEFAULT_DATA_DIR)
    data = load_eval_data(data_dir, frame=frame)
    feedback = load_feedback(feedback_path, data_dir=data_dir, frame=frame) if feedback_path else None
    candidate = gate_metrics(registry, candidate_id, data, feedback)
    active = gate_metrics(registry, active_id, data, feedback)
    result = compare(candidate, active, **limits)
    notes = paired_notes(registry.report(candidate_id), result)
    return dataclasses.replace(result, notes=(*result.notes, *notes)) if notes else result


def _paired_name(row: GateRow) -> str | None:
    """The name, in a report's paired comparison, of the figure a gate row compares."""
    if row.scope == "test splits" and row.figure.endswith(" ROC-AUC"):
        return "roc_auc/" + row.figure.removesuffix(" ROC-AUC")
    if row.scope == "bias set":
        return "bias/fpr"
    return None


def paired_notes(report: Mapping[str, Any] | None, result: GateResult) -> list[str]:
    """For each figure the gate finds worse, its paired interval from the candidate's report.

    The candidate's report has one when it was compared with the same active model through stored
    scores (`training.intervals.paired_intervals`). The gate's verdict does not change; the note
    says whether the drop it ruled on is beyond the test split's noise, for whoever decides on --force.
    """
    if lookup(report, "comparison", "baseline_model_id") != result.active_id:
        return []
    paired = lookup(report, "comparison", "paired")
    figures = lookup(paired, "figures")
    if not isinstance(figures, Mapping):
        return []
    level_value = lookup(paired, "level")
    level = round(100 * (level_value if isinstance(level_value, float) else 0.95))
    notes = []
    for row in result.regressions:
        name = _paired_name(row)
        figure = figures.get(name) if name else None
        if isinstance(figure, Mapping) and figure.get("low") is not None and figure.get("high") is not None:
            notes.append(
                f"{row.figure}: paired {level}% interval of the change [{figure['low']:+.4f}, "
                f"{figure['high']:+.4f}], {paired_reading(str(name), figure)} (candidate's report.md)"
            )
    return notes
