"""The promotion gate: the comparison rules, reading reports, stored-report gating, the registry's record."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from models.gate import (
    GateMetrics,
    IncomparableReportsError,
    PromotionRefusedError,
    compare,
    compare_stored,
    metrics_from_report,
    stored_metrics,
)
from models.labels import LABEL_NAMES
from models.registry import Registry
from tests.conftest import store_tiny_model

AUC = dict.fromkeys(LABEL_NAMES, 0.9)


def _metrics(model_id: str = "m", **changes: Any) -> GateMetrics:
    base: dict[str, Any] = {
        "model_id": model_id,
        "test_data_hash": "h",
        "roc_auc": dict(AUC),
        "bias_fpr": 0.3,
        "feedback_hash": "f",
        "feedback_roc_auc": dict(AUC),
        "feedback_rows": dict.fromkeys(LABEL_NAMES, 50),
    }
    base.update(changes)
    return GateMetrics(**base)


def test_equal_models_pass() -> None:
    result = compare(_metrics("cand"), _metrics("act"))
    assert result.passed and not result.regressions and result.notes == ()
    assert len(result.rows) == 2 * len(LABEL_NAMES) + 1
    assert "WORSE" not in result.table()


def test_an_auc_drop_over_0_005_refuses() -> None:
    candidate = _metrics(roc_auc=AUC | {"threat": 0.9 - 0.0051, "spam": 0.9 - 0.005, "insult": 0.95})
    result = compare(candidate, _metrics())
    assert [row.figure for row in result.regressions] == ["threat ROC-AUC"]
    assert result.regressions[0].scope == "test splits"
    assert result.regressions[0].delta == pytest.approx(-0.0051)
    assert "WORSE" in result.table() and "threat ROC-AUC" in result.table(only_worse=True)
    assert "spam" not in result.table(only_worse=True)
    assert result.regression_lines() == ["test splits: threat ROC-AUC 0.9000 -> 0.8949 (-0.0051)"]
    assert not compare(candidate, _metrics(), max_auc_drop=0.01).regressions


def test_any_rise_of_the_bias_false_positive_rate_refuses() -> None:
    result = compare(_metrics(bias_fpr=0.3001), _metrics())
    assert [row.scope for row in result.regressions] == ["bias set"]
    assert compare(_metrics(bias_fpr=0.2), _metrics()).passed
    assert compare(_metrics(bias_fpr=0.3001), _metrics(), max_bias_fpr_rise=0.001).passed


def test_the_feedback_slice_is_gated_where_it_has_enough_rows() -> None:
    candidate = _metrics(
        feedback_roc_auc=AUC | {"toxicity": 0.8, "spam": 0.7},
        feedback_rows=dict.fromkeys(LABEL_NAMES, 50) | {"spam": 5},
    )
    result = compare(candidate, _metrics())
    assert [(row.scope, row.figure) for row in result.regressions] == [("feedback slice", "toxicity ROC-AUC")]
    spam = next(r for r in result.rows if r.scope == "feedback slice" and r.figure == "spam ROC-AUC")
    assert not spam.worse and "not gated: 5 rows" in spam.note
    # another slice, or none: not compared, and said so
    other = compare(candidate, _metrics(feedback_hash="g"))
    assert other.passed and any("feedback slice not compared" in note for note in other.notes)


def test_unmeasured_figures_are_shown_not_gated() -> None:
    result = compare(_metrics(roc_auc=AUC | {"threat": None}, bias_fpr=None), _metrics())
    threat = next(r for r in result.rows if r.figure == "threat ROC-AUC")
    assert not threat.worse and threat.note == "not measured for both" and result.passed
    assert any("bias" in note for note in result.notes)


def test_different_test_data_cannot_be_compared() -> None:
    with pytest.raises(IncomparableReportsError, match="different test data"):
        compare(_metrics(test_data_hash="x"), _metrics())
    with pytest.raises(IncomparableReportsError):
        compare(_metrics(test_data_hash=None), _metrics(test_data_hash=None))


def _report(model_id: str, auc: float = 0.9, fpr: float = 0.3, test_hash: str = "h") -> dict[str, Any]:
    return {
        "model_id": model_id,
        "labels": {label: {"roc_auc": auc, "n": 100} for label in LABEL_NAMES} | {"threat": None},
        "bias": {"fpr": fpr},
        "test_data_hash": test_hash,
    }


def test_metrics_from_report_and_stored_baseline() -> None:
    report = _report("cand") | {
        "feedback": {
            "data_hash": "f",
            "labels": {"toxicity": {"roc_auc": 0.8, "n": 40}, "spam": None},
            "baseline": {"model_id": "act", "labels": {"toxicity": {"roc_auc": 0.85, "n": 40}}},
        }
    }
    metrics = metrics_from_report(report)
    assert metrics.model_id == "cand" and metrics.bias_fpr == 0.3 and metrics.roc_auc["threat"] is None
    assert metrics.feedback_hash == "f" and metrics.feedback_roc_auc == {"toxicity": 0.8, "spam": None}
    assert metrics.feedback_rows == {"toxicity": 40}
    candidate, active = stored_metrics(report, _report("act"), "act")
    assert active.feedback_hash == "f" and active.feedback_roc_auc == {"toxicity": 0.85}
    assert [r.figure for r in compare(candidate, active).regressions] == ["toxicity ROC-AUC"]
    # the baseline was another model: no feedback comparison
    _, other = stored_metrics(report, _report("x"), "x")
    assert other.feedback_hash is None


def _with_report(registry: Registry, report: dict[str, Any]) -> str:
    model_id = store_tiny_model(registry)
    (registry.path(model_id) / "report.json").write_text(json.dumps(report | {"model_id": model_id}))
    return model_id


def test_compare_stored_and_the_registry_record(registry: Registry) -> None:
    assert compare_stored(registry, "anything") is None  # no active model: nothing to compare with
    active = _with_report(registry, _report("a"))
    registry.promote(active, actor="key:admin")
    assert compare_stored(registry, active) is None
    better = _with_report(registry, _report("b", auc=0.91, fpr=0.2))
    result = compare_stored(registry, better)
    assert result is not None and result.passed
    worse = _with_report(registry, _report("w", auc=0.8))
    refused = compare_stored(registry, worse)
    assert refused is not None and not refused.passed
    assert str(PromotionRefusedError(refused)).startswith(f"promotion of {worse} refused")
    elsewhere = _with_report(registry, _report("e", test_hash="other"))
    with pytest.raises(IncomparableReportsError):
        compare_stored(registry, elsewhere)
    unreported = store_tiny_model(registry)
    with pytest.raises(IncomparableReportsError, match="no stored evaluation report"):
        compare_stored(registry, unreported)

    registry.promote(
        worse, actor="cli:ops", forced=True, reason="known regression", regressions=refused.regression_lines()
    )
    registry.rollback()
    log = registry.promotions()
    assert [(e["action"], e["id"]) for e in log] == [
        ("promote", active),
        ("promote", worse),
        ("rollback", active),
    ]
    assert (
        log[1]["forced"] is True and log[1]["reason"] == "known regression" and log[1]["actor"] == "cli:ops"
    )
    assert log[1]["regressions"] == refused.regression_lines() and log[1]["previous"] == active
    assert log[0]["forced"] is False and log[0]["reason"] is None


def test_reports_are_read_through_the_registry(registry: Registry) -> None:
    model_id = store_tiny_model(registry)
    assert registry.report(model_id) is None
    report = copy.deepcopy(_report(model_id))
    (registry.path(model_id) / "report.json").write_text(json.dumps(report))
    assert registry.report(model_id) == report
