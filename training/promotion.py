"""The promotion gate's figures, computed as training reports them.

Used by `moderation models promote` and `moderation retrain`; the comparison itself is
`models.gate.compare`. For each model: its stored report.json when it was computed on the current
standing test splits (same test_data_hash), else a fresh evaluation (without spans, which the gate
does not read); and, given a feedback corpus, its figures on the held-out feedback slice, always
fresh (the slice is small and grows with every export).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from models.errors import NoActiveModelError
from models.gate import GateMetrics, GateResult, compare, metrics_from_report
from models.registry import Registry
from training.dataset import DEFAULT_DATA_DIR, build_dataset
from training.evaluate import EvalData, evaluate_model, load_eval_data
from training.feedback import FeedbackSet, evaluate_feedback, load_feedback

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
    return compare(candidate, active, **limits)
