"""Honest evaluation: the standing test splits, cross-domain false positives, identity bias.

Every score comes from `models.scoring.Model.score`, the code path the service uses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from models.scoring import Model
from training import metrics
from training.dataset import (
    DEFAULT_DATA_DIR,
    NEGATIVE_SOURCES,
    build_dataset,
    load_bias_madlibs,
    negative_source_mask,
)
from training.intervals import bootstrap_intervals, mean_interval, paired_intervals
from training.report import EvalInputs, build_report

logger = logging.getLogger(__name__)

POLITE_COMMENTS = Path(__file__).parent / "behaviour" / "polite_comments.txt"
FloatArray = NDArray[np.float64]


@dataclass
class EvalData:
    """The rows every model is judged on."""

    test: pd.DataFrame
    bias: pd.DataFrame
    polite: list[str]
    data_hash: str


def load_polite_comments(path: Path = POLITE_COMMENTS) -> list[str]:
    """The hand-written polite reader comments (behavioural check)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def load_eval_data(
    data_dir: Path | None = None, corpora: tuple[str, ...] | None = None, frame: pd.DataFrame | None = None
) -> EvalData:
    """Test split of the corpora (from `frame` when given), the bias set and the polite comments."""
    from training.dataset import dataset_hash

    data_dir = data_dir or DEFAULT_DATA_DIR
    df = frame if frame is not None else build_dataset(data_dir, corpora)
    test = df[df["split"] == "test"].reset_index(drop=True)
    return EvalData(
        test=test,
        bias=load_bias_madlibs(data_dir),
        polite=load_polite_comments(),
        data_hash=dataset_hash(test),
    )


def _rate(flags: NDArray[np.bool_]) -> float | None:
    return float(flags.mean()) if len(flags) else None


def cross_domain_rates(
    labels: tuple[str, ...], test: pd.DataFrame, scores: FloatArray, row_cuts: FloatArray
) -> dict[str, dict[str, float | None]]:
    """Flag rate of each borrowed-negative label on test rows of corpora that do not carry it.

    `row_cuts`: each row's cuts as served (`Model.cuts`), shaped like `scores`.
    """
    out: dict[str, dict[str, float | None]] = {}
    corpus = test["corpus"].to_numpy()
    for label in NEGATIVE_SOURCES:
        j = labels.index(label)
        safe = negative_source_mask(test, label)
        flagged = scores[:, j] >= row_cuts[:, j]
        rates: dict[str, float | None] = {}
        for name in NEGATIVE_SOURCES[label]:
            rows = safe & (corpus == name)
            if rows.any():
                rates[name] = metrics.cross_domain_flag_rate(scores[rows, j], row_cuts[rows, j])
        rates["all"] = float(flagged[safe].mean()) if safe.any() else None
        out[label] = rates
    return out


@dataclass(frozen=True)
class TaskFigure:
    """A shared-task figure: `metric` of `label`'s served flags (or scores) on `corpus`'s test rows."""

    corpus: str
    label: str
    metric: str  # one of FLAG_METRICS, or "roc_auc" (on the scores)


# The figures each corpus is known by (OffensEval, CONSTRAINT, PAN, ...), under their official metric.
TASK_FIGURES: dict[str, TaskFigure] = {
    "olid_macro_f1": TaskFigure("olid", "toxicity", "macro_f1"),
    "constraint_weighted_f1": TaskFigure("constraint", "misinformation", "weighted_f1"),
    "pan2024_conspiracy_mcc": TaskFigure("pan2024", "conspiracy", "mcc"),
    "davidson_toxicity_macro_f1": TaskFigure("davidson", "toxicity", "macro_f1"),
    "tubespam_spam_f1": TaskFigure("tubespam", "spam", "f1"),
    "prct_conspiracy_roc_auc": TaskFigure("prct_youtube", "conspiracy", "roc_auc"),
}


def _positive_f1(y: FloatArray, flags: FloatArray) -> float | None:
    """F1 of the positive class (None when there is nothing to find and nothing is flagged)."""
    f1 = metrics.binary_metrics(y, flags, 0.5)["f1"]
    return None if f1 is None else float(f1)


# metric name -> function of (0/1 labels, 0/1 flags)
FLAG_METRICS: dict[str, Callable[[FloatArray, FloatArray], float | None]] = {
    "macro_f1": metrics.macro_f1,
    "weighted_f1": metrics.weighted_f1,
    "mcc": metrics.mcc,
    "f1": _positive_f1,
}


def task_figure(metric: str, y: FloatArray, scores: FloatArray, cuts: FloatArray) -> float | None:
    """One task figure from a corpus's labels, served scores and cuts; None where it is undefined."""
    if not len(y):
        return None
    if metric == "roc_auc":
        return metrics.binary_metrics(y, scores, cuts)["roc_auc"]
    flags = (scores >= cuts).astype(np.float64)
    if metric == "f1":
        return _positive_f1(y, flags)
    if len(np.unique(y)) < 2:
        return None  # the two-class averages need both classes
    return FLAG_METRICS[metric](y, flags)


def task_metrics(
    labels: tuple[str, ...], test: pd.DataFrame, scores: FloatArray, row_cuts: FloatArray
) -> dict[str, float | None]:
    """The shared-task figures of `TASK_FIGURES`.

    `row_cuts`: each row's cuts as served (`Model.cuts`), shaped like `scores`.
    """
    out: dict[str, float | None] = {}
    for name, task in TASK_FIGURES.items():
        rows = ((test["corpus"] == task.corpus) & test[task.label].notna()).to_numpy()
        j = labels.index(task.label)
        y = test.loc[rows, task.label].to_numpy(dtype=np.float64)
        value = task_figure(task.metric, y, scores[rows, j], row_cuts[rows, j])
        out[name] = None if value is None else float(value)
    return out


TOXIC_SPAN_LABELS = ("toxicity", "insult", "threat", "identity_attack", "profanity")


def span_metrics(model: Model, test: pd.DataFrame) -> dict[str, dict[str, float | int | None]]:
    """Character F1 of the served spans against civil_comments' majority toxic spans (SemEval 2021)."""
    rows = test[test["corpus"] == "civil_comments"]
    if rows.empty:
        return {}
    texts = rows["text"].tolist()
    predictions = model.predict(texts, spans=True)
    scores = [
        metrics.span_f1(
            metrics.span_chars(p.spans, TOXIC_SPAN_LABELS), metrics.span_chars(list(gold), ("toxicity",))
        )
        for p, gold in zip(predictions, rows["spans"], strict=True)
    ]
    with_gold = [
        f
        for f, gold in zip(scores, rows["spans"], strict=True)
        if metrics.span_chars(list(gold), ("toxicity",))
    ]
    low, high = mean_interval(scores)  # the mean F1 over posts, resampled over posts
    return {
        "civil_comments toxic spans": {
            "n": len(scores),
            "char_f1": float(np.mean(scores)),
            "char_f1_low": low,
            "char_f1_high": high,
            "n_with_gold_spans": len(with_gold),
            "char_f1_on_gold_posts": float(np.mean(with_gold)) if with_gold else None,
        }
    }


def polite_flag_rates(model: Model, polite: list[str]) -> dict[str, float]:
    """Share of the polite comments flagged, per label (should be 0)."""
    flags = model.flags(model.score(polite), polite)
    return {name: float(flags[:, j].mean()) for j, name in enumerate(model.labels)}


def evaluate_model(
    model: Model,
    data: EvalData,
    *,
    baseline: dict[str, Any] | None = None,
    baseline_scores: EvalInputs | None = None,
    with_spans: bool = True,
    intervals: bool = True,
) -> tuple[dict[str, Any], EvalInputs]:
    """Score the test rows, the bias set and the polite comments; build the report dict.

    `intervals`: add bootstrap confidence intervals of the headline figures (`training.intervals`),
    and, with `baseline_scores` (the baseline's evaluation of the same rows), paired intervals of
    each figure's change in the comparison section.
    """
    labels = model.labels
    test = data.test
    logger.info("evaluating %s on %d test rows and %d bias rows", model.id, len(test), len(data.bias))
    texts = test["text"].tolist()
    scores = model.score(texts)
    cuts = model.cuts(texts)  # as served: identity cuts where the artifact has them
    y = test[list(labels)].to_numpy(dtype=np.float64)
    tox = labels.index("toxicity")
    bias_texts = data.bias["text"].tolist()
    bias_scores = model.score(bias_texts)[:, tox]
    identity = model.info.identity_cut
    inputs = EvalInputs(
        labels=labels,
        y=y,
        scores=scores,
        corpus=test["corpus"].to_numpy(dtype=str),
        thresholds=dict(model.info.thresholds),
        cross_domain=cross_domain_rates(labels, test, scores, cuts),
        bias_y=data.bias["label"].to_numpy(dtype=np.float64),
        bias_scores=bias_scores,
        bias_identities=data.bias["identity"].to_numpy(dtype=object),
        task_metrics=task_metrics(labels, test, scores, cuts),
        spans=span_metrics(model, test) if with_spans else None,
        cuts=cuts,
        bias_cuts=model.cuts(bias_texts)[:, tox],
        identity_thresholds=dict(identity.thresholds) if identity is not None else {},
    )
    report = build_report(inputs, model_id=model.id, kind=model.info.kind, baseline=baseline)
    report["polite_flag_rate"] = polite_flag_rates(model, data.polite)
    report["test_data_hash"] = data.data_hash
    if intervals:
        report["intervals"] = bootstrap_intervals(inputs, TASK_FIGURES)
        if baseline is not None and baseline_scores is not None:
            try:
                report["comparison"]["paired"] = paired_intervals(inputs, baseline_scores, TASK_FIGURES)
            except ValueError as exc:  # scored on other rows: no paired figures
                logger.warning("no paired comparison: %s", exc)
    return report, inputs
