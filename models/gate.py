"""The promotion gate: may a candidate model replace the active one?

A comparison of two models' figures, with no scoring. The training side computes the figures
(`training.promotion`, used by `moderation models promote` and `moderation retrain`); the
service's admin promote route reads them from the artifacts' stored report.json
(`compare_stored`). Both then call `compare`, so the rule is written once:

- on the standing test splits, any label whose ROC-AUC drops by more than `max_auc_drop`
  (0.005) refuses the candidate;
- on the bias set (bias_madlibs), a false-positive rate on the NOT_BAD rows that rises at all
  (more than `max_bias_fpr_rise`, 0 by default) refuses it;
- on the held-out slice of moderator feedback, the same ROC-AUC rule, for the labels that have at
  least `min_feedback_rows` judged rows with both classes (a handful of rows is noise, not
  evidence); smaller labels are shown but not gated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from models.errors import ModerationError, NoActiveModelError
from models.labels import LABEL_NAMES
from models.registry import Registry

MAX_AUC_DROP = 0.005
MAX_BIAS_FPR_RISE = 0.0
MIN_FEEDBACK_ROWS = 20
# Figures are floats computed on identical rows: equal within this is equal.
_EPSILON = 1e-9


class GateError(ModerationError):
    """The promotion gate could not compare, or refused, a candidate."""


class IncomparableReportsError(GateError):
    """The two models' figures were computed on different test data."""


class PromotionRefusedError(GateError):
    """The candidate is worse than the active model; `result` says where."""

    def __init__(self, result: GateResult):
        worse = "; ".join(result.regression_lines())
        super().__init__(
            f"promotion of {result.candidate_id} refused: worse than the active model "
            f"{result.active_id} on {worse}"
        )
        self.result = result


@dataclass(frozen=True)
class GateMetrics:
    """One model's figures the gate compares.

    `roc_auc`: per label on the standing test splits; `bias_fpr`: false-positive rate on the bias
    set's NOT_BAD rows at the served threshold; `feedback_*`: per label on the held-out feedback
    slice identified by `feedback_hash` (empty when not measured).
    """

    model_id: str
    test_data_hash: str | None
    roc_auc: Mapping[str, float | None]
    bias_fpr: float | None
    feedback_hash: str | None = None
    feedback_roc_auc: Mapping[str, float | None] = field(default_factory=dict)
    feedback_rows: Mapping[str, int] = field(default_factory=dict)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _per_label(section: object, key: str) -> dict[str, Any]:
    labels = section.get("labels") if isinstance(section, Mapping) else None
    if not isinstance(labels, Mapping):
        return {}
    return {
        name: metrics.get(key) if isinstance(metrics, Mapping) else None for name, metrics in labels.items()
    }


def metrics_from_report(
    report: Mapping[str, Any], *, model_id: str | None = None, feedback: Mapping[str, Any] | None = None
) -> GateMetrics:
    """The gate's figures from an evaluation report (report.json).

    `feedback` is a feedback-slice section (`{"data_hash", "labels": {label: metrics}}`); by
    default the report's own `feedback` section, if it has one.
    """
    section = feedback if feedback is not None else report.get("feedback")
    bias = report.get("bias")
    rows = _per_label(section, "n")
    return GateMetrics(
        model_id=model_id or str(report.get("model_id", "")),
        test_data_hash=report.get("test_data_hash") or None,
        roc_auc={name: _number(v) for name, v in _per_label(report, "roc_auc").items()},
        bias_fpr=_number(bias.get("fpr")) if isinstance(bias, Mapping) else None,
        feedback_hash=(section.get("data_hash") or None) if isinstance(section, Mapping) else None,
        feedback_roc_auc={name: _number(v) for name, v in _per_label(section, "roc_auc").items()},
        feedback_rows={name: int(v) for name, v in rows.items() if isinstance(v, int)},
    )


def stored_metrics(
    candidate_report: Mapping[str, Any], active_report: Mapping[str, Any], active_id: str
) -> tuple[GateMetrics, GateMetrics]:
    """Both models' figures from stored reports alone (what the HTTP promote route has).

    The active model's feedback-slice figures come from the candidate's report when it was
    trained while that model was active (train scores the then-active model on the same slice).
    """
    candidate = metrics_from_report(candidate_report)
    section = candidate_report.get("feedback")
    baseline = section.get("baseline") if isinstance(section, Mapping) else None
    active_feedback: Mapping[str, Any] = {}
    if (
        isinstance(baseline, Mapping)
        and baseline.get("model_id") == active_id
        and isinstance(section, Mapping)
    ):
        active_feedback = {"data_hash": section.get("data_hash"), "labels": baseline.get("labels")}
    active = metrics_from_report(active_report, model_id=active_id, feedback=active_feedback)
    return candidate, active


@dataclass(frozen=True)
class GateRow:
    """One compared figure."""

    scope: str
    figure: str
    active: float | None
    candidate: float | None
    rule: str
    worse: bool = False
    note: str = ""

    @property
    def delta(self) -> float | None:
        """Candidate minus active, when both were measured."""
        if self.active is None or self.candidate is None:
            return None
        return self.candidate - self.active


@dataclass(frozen=True)
class GateResult:
    """Every compared figure and the verdict."""

    candidate_id: str
    active_id: str
    rows: tuple[GateRow, ...]
    notes: tuple[str, ...] = ()

    @property
    def regressions(self) -> tuple[GateRow, ...]:
        """The figures on which the candidate is worse beyond the rule."""
        return tuple(row for row in self.rows if row.worse)

    @property
    def passed(self) -> bool:
        """True when nothing got worse."""
        return not self.regressions

    def regression_lines(self) -> list[str]:
        """One short line per regression, e.g. `test splits: toxicity ROC-AUC 0.914 -> 0.880 (-0.034)`."""
        return [
            f"{row.scope}: {row.figure} {_fmt(row.active)} -> {_fmt(row.candidate)} ({_fmt(row.delta, sign=True)})"
            for row in self.regressions
        ]

    def table(self, *, only_worse: bool = False) -> str:
        """A fixed-width table of the compared figures (or only of those that got worse)."""
        rows = self.regressions if only_worse else self.rows
        header = ("scope", "figure", "active", "candidate", "change", "rule", "")
        cells = [
            (
                row.scope,
                row.figure,
                _fmt(row.active),
                _fmt(row.candidate),
                _fmt(row.delta, sign=True),
                row.rule,
                "WORSE" if row.worse else row.note,
            )
            for row in rows
        ]
        widths = [max(len(str(line[i])) for line in [header, *cells]) for i in range(len(header))]
        lines = [
            "  ".join(
                f"{value:<{widths[i]}}" if i in (0, 1, 5, 6) else f"{value:>{widths[i]}}"
                for i, value in enumerate(line)
            ).rstrip()
            for line in [header, *cells]
        ]
        return "\n".join([*lines, *(f"note: {note}" for note in self.notes)])


def _fmt(value: float | None, *, sign: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.4f}" if sign else f"{value:.4f}"


def _auc_rows(
    scope: str,
    candidate: Mapping[str, float | None],
    active: Mapping[str, float | None],
    max_drop: float,
    support: Mapping[str, int] | None = None,
    min_rows: int = 0,
) -> list[GateRow]:
    rows = []
    rule = f"drop <= {max_drop:g}"
    for label in LABEL_NAMES:
        cand, act = candidate.get(label), active.get(label)
        if cand is None and act is None:
            continue
        note = ""
        gated = cand is not None and act is not None
        if not gated:
            note = "not measured for both"
        elif support is not None and support.get(label, 0) < min_rows:
            gated, note = False, f"not gated: {support.get(label, 0)} rows < {min_rows}"
        worse = gated and cand is not None and act is not None and act - cand > max_drop + _EPSILON
        rows.append(GateRow(scope, f"{label} ROC-AUC", act, cand, rule, worse, note))
    return rows


def compare(
    candidate: GateMetrics,
    active: GateMetrics,
    *,
    max_auc_drop: float = MAX_AUC_DROP,
    max_bias_fpr_rise: float = MAX_BIAS_FPR_RISE,
    min_feedback_rows: int = MIN_FEEDBACK_ROWS,
) -> GateResult:
    """Compare the candidate with the active model; IncomparableReportsError if their test data differ."""
    if not candidate.test_data_hash or candidate.test_data_hash != active.test_data_hash:
        raise IncomparableReportsError(
            f"{candidate.model_id} and {active.model_id} were evaluated on different test data "
            f"({candidate.test_data_hash or 'unknown'} vs {active.test_data_hash or 'unknown'}); "
            "evaluate both on the same standing test splits"
        )
    rows = _auc_rows("test splits", candidate.roc_auc, active.roc_auc, max_auc_drop)
    notes: list[str] = []
    if candidate.bias_fpr is not None and active.bias_fpr is not None:
        rise = candidate.bias_fpr - active.bias_fpr
        rows.append(
            GateRow(
                "bias set",
                "toxicity FPR on NOT_BAD",
                active.bias_fpr,
                candidate.bias_fpr,
                f"rise <= {max_bias_fpr_rise:g}",
                rise > max_bias_fpr_rise + _EPSILON,
            )
        )
    else:
        notes.append("bias false-positive rate not measured for both models")
    if candidate.feedback_hash and candidate.feedback_hash == active.feedback_hash:
        rows += _auc_rows(
            "feedback slice",
            candidate.feedback_roc_auc,
            active.feedback_roc_auc,
            max_auc_drop,
            support=candidate.feedback_rows,
            min_rows=min_feedback_rows,
        )
    else:
        notes.append("held-out feedback slice not compared (no feedback, or not measured for both models)")
    return GateResult(candidate.model_id, active.model_id, tuple(rows), tuple(notes))


def compare_stored(registry: Registry, candidate_id: str, **limits: Any) -> GateResult | None:
    """The gate on both artifacts' stored report.json; None when there is no other active model.

    IncomparableReportsError when either has no stored report, or they cover different test data.
    """
    try:
        active_id = registry.active_id()
    except NoActiveModelError:
        return None
    if active_id == candidate_id:
        return None
    reports = {model_id: registry.report(model_id) for model_id in (candidate_id, active_id)}
    missing = [model_id for model_id, report in reports.items() if report is None]
    if missing:
        raise IncomparableReportsError(
            f"cannot compare: {', '.join(missing)} has no stored evaluation report "
            "(`moderation models promote` evaluates it)"
        )
    candidate_report, active_report = reports[candidate_id], reports[active_id]
    assert candidate_report is not None and active_report is not None
    candidate, active = stored_metrics(candidate_report, active_report, active_id)
    return compare(candidate, active, **limits)
