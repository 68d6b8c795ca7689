"""Evaluation report: arrays and figures in; a JSON-safe dict, Markdown, PNG plots and a terminal table out.

The report knows nothing about models: the caller scores the test split through the served scorer,
chooses thresholds on validation, and hands the results here as an `EvalInputs`.
"""

from __future__ import annotations

import json
import logging
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import precision_recall_curve

from models.labels import validate_labels
from training.metrics import (
    bias_metrics,
    binary_metrics,
    calibration_curve_points,
    cross_domain_flag_rate,
)

logger = logging.getLogger(__name__)

REPORT_VERSION = 1
BIAS_LABEL = "toxicity"
_MISSING = "–"

FloatArray = NDArray[np.float64]
SpanResults = Mapping[str, Mapping[str, float | int | None]]
CrossDomain = Mapping[str, Mapping[str, float | ArrayLike | None]]


@dataclass(frozen=True)
class EvalInputs:
    """Everything the report needs about one model's test-split evaluation, as plain data."""

    labels: tuple[str, ...]
    y: FloatArray  # n × L, NaN where the row's corpus does not judge the label
    scores: FloatArray  # n × L calibrated probabilities, as served
    corpus: Sequence[str] | NDArray[np.str_]  # n corpus names
    thresholds: Mapping[str, float]  # chosen on validation, as served
    # label -> corpus -> flag rate (None: no rows), or that corpus's scores to compute it at the threshold
    cross_domain: CrossDomain = field(default_factory=dict)
    # Identity-term evaluation set (e.g. bias_madlibs) scored for `bias_label`: 0/1 labels, that label's
    # scores, and one identity term per row (None/NaN for rows that name none).
    bias_y: FloatArray | None = None
    bias_scores: FloatArray | None = None
    bias_identities: Sequence[str | None] | NDArray[Any] | None = None
    bias_label: str = BIAS_LABEL
    # group (e.g. corpus) -> figure name -> value, e.g. {"civil_comments": {"char_f1": 0.61}}
    spans: SpanResults | None = None
    task_metrics: Mapping[str, float | None] = field(default_factory=dict)
    # Per-row cuts as served (n × L, and one per bias row), where a model holds some rows to other
    # cuts than `thresholds` (identity cuts: `Model.cuts`); None: every row at `thresholds`.
    cuts: FloatArray | None = None
    bias_cuts: FloatArray | None = None
    # label -> the cut for comments that name an identity group, for the record (the rows' cuts are in `cuts`)
    identity_thresholds: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        labels = tuple(validate_labels(self.labels))
        if not labels or len(set(labels)) != len(labels):
            raise ValueError(f"labels must be non-empty and unique, got {labels}")
        y = np.asarray(self.y, dtype=np.float64)
        scores = np.asarray(self.scores, dtype=np.float64)
        corpus = np.asarray(self.corpus, dtype=np.str_)
        n_labels = len(labels)
        if y.ndim != 2 or y.shape[0] == 0 or y.shape[1] != n_labels:
            raise ValueError(f"y must be a non-empty n × {n_labels} array, got shape {y.shape}")
        if scores.shape != y.shape:
            raise ValueError(f"scores shape {scores.shape} differs from y shape {y.shape}")
        if corpus.shape != (y.shape[0],):
            raise ValueError(f"corpus must have one name per row ({y.shape[0]}), got shape {corpus.shape}")
        missing = [label for label in labels if label not in self.thresholds]
        if missing:
            raise ValueError(f"no threshold for label(s): {', '.join(missing)}")
        for label in labels:
            if not math.isfinite(float(self.thresholds[label])):
                raise ValueError(f"threshold of {label!r} is not finite")
        unknown = [label for label in self.cross_domain if label not in labels]
        if unknown:
            raise ValueError(f"cross_domain names label(s) not evaluated: {', '.join(unknown)}")
        self._check_bias(labels)
        if self.cuts is not None:
            cuts = np.asarray(self.cuts, dtype=np.float64)
            if cuts.shape != y.shape or not np.isfinite(cuts).all():
                raise ValueError(f"cuts must be a finite array of shape {y.shape}, got {cuts.shape}")
            object.__setattr__(self, "cuts", cuts)
        if self.bias_cuts is not None:
            bias_cuts = np.asarray(self.bias_cuts, dtype=np.float64)
            if self.bias_y is None or bias_cuts.shape != np.shape(self.bias_y):
                raise ValueError("bias_cuts needs the bias rows and one cut per bias row")
            object.__setattr__(self, "bias_cuts", bias_cuts)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "corpus", corpus)

    def served_cuts(self) -> FloatArray:
        """Each row's cut per label (n × L): `cuts`, or every row at its label's threshold."""
        if self.cuts is not None:
            return self.cuts
        thresholds = np.array([self.thresholds[label] for label in self.labels], dtype=np.float64)
        return np.broadcast_to(thresholds, self.y.shape)

    def _check_bias(self, labels: tuple[str, ...]) -> None:
        y, scores, identities = self.bias_y, self.bias_scores, self.bias_identities
        if y is None and scores is None and identities is None:
            return
        if y is None or scores is None or identities is None:
            raise ValueError("bias_y, bias_scores and bias_identities come together or not at all")
        if self.bias_label not in labels:
            raise ValueError(f"bias label {self.bias_label!r} is not among the evaluated labels")
        bias_y = np.asarray(y, dtype=np.float64)
        bias_scores = np.asarray(scores, dtype=np.float64)
        if bias_y.ndim != 1 or bias_y.size == 0 or bias_scores.shape != bias_y.shape:
            raise ValueError(
                f"bias_y {bias_y.shape} and bias_scores {bias_scores.shape} must be non-empty 1-D"
            )
        if len(identities) != bias_y.shape[0]:
            raise ValueError(f"bias_identities has {len(identities)} rows, bias_y {bias_y.shape[0]}")
        object.__setattr__(self, "bias_y", bias_y)
        object.__setattr__(self, "bias_scores", bias_scores)


def _json_safe(value: object) -> Any:
    """Plain Python containers and numbers, with NaN/inf as None, so json.dumps(allow_nan=False) works."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_json_safe(v) for v in value.tolist()]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"cannot put {type(value).__name__} into a report")


def lookup(tree: object, *keys: str) -> object:
    """`tree[k1][k2]...`, or None where a level is missing or not a mapping (reports read back from JSON)."""
    for key in keys:
        if not isinstance(tree, Mapping):
            return None
        tree = tree.get(key)
    return tree


def _keys(tree: object) -> set[str]:
    return {str(key) for key in tree} if isinstance(tree, Mapping) else set()


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _delta(candidate: object, baseline: object) -> dict[str, float | None]:
    cand, base = _number(candidate), _number(baseline)
    delta = cand - base if cand is not None and base is not None else None
    return {"candidate": cand, "baseline": base, "delta": delta}


def _cross_domain(inputs: EvalInputs) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for label, per_corpus in inputs.cross_domain.items():
        threshold = float(inputs.thresholds[label])
        rates: dict[str, float | None] = {}
        for corpus, value in per_corpus.items():
            if value is None:
                rate = None  # no rows of that corpus in this split
            elif np.ndim(value) == 0:
                rate = float(np.asarray(value, dtype=np.float64))
                if not 0.0 <= rate <= 1.0:
                    raise ValueError(f"cross-domain flag rate {label}/{corpus} must be in [0, 1], got {rate}")
            else:
                rate = cross_domain_flag_rate(np.asarray(value, dtype=np.float64), threshold)
            rates[corpus] = rate
        out[label] = rates
    return out


def _comparison(report: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, Any]:
    labels: dict[str, Any] = {}
    for label in report["labels"]:
        cand = report["labels"][label]
        base = lookup(baseline, "labels", label)
        per_corpus: dict[str, Any] = {}
        corpora = sorted(
            _keys(lookup(report, "per_corpus", label)) | _keys(lookup(baseline, "per_corpus", label))
        )
        for corpus in corpora:
            cand_c = lookup(report, "per_corpus", label, corpus)
            base_c = lookup(baseline, "per_corpus", label, corpus)
            per_corpus[corpus] = {
                "roc_auc": _delta(lookup(cand_c, "roc_auc"), lookup(base_c, "roc_auc")),
                "same_n": lookup(cand_c, "n") == lookup(base_c, "n"),
            }
        labels[label] = {
            "roc_auc": _delta(lookup(cand, "roc_auc"), lookup(base, "roc_auc")),
            "same_n": lookup(cand, "n") == lookup(base, "n"),
            "per_corpus": per_corpus,
        }
    task_names = sorted(_keys(report["task_metrics"]) | _keys(lookup(baseline, "task_metrics")))
    return {
        "baseline_model_id": lookup(baseline, "model_id"),
        "labels": labels,
        "bias": {
            "fpr": _delta(lookup(report, "bias", "fpr"), lookup(baseline, "bias", "fpr")),
            "roc_auc": _delta(lookup(report, "bias", "roc_auc"), lookup(baseline, "bias", "roc_auc")),
        },
        "task_metrics": {
            name: _delta(lookup(report, "task_metrics", name), lookup(baseline, "task_metrics", name))
            for name in task_names
        },
    }


def build_report(
    inputs: EvalInputs, *, model_id: str, kind: str, baseline: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Per-label, per-corpus, cross-domain, bias and task metrics, plus deltas vs a baseline, as JSON data."""
    corpus = np.asarray(inputs.corpus)
    corpora = sorted(set(corpus.tolist()))
    per_label: dict[str, Any] = {}
    per_corpus: dict[str, dict[str, Any]] = {}
    row_cuts = inputs.served_cuts()
    for j, label in enumerate(inputs.labels):
        y, scores = inputs.y[:, j], inputs.scores[:, j]
        threshold = float(inputs.thresholds[label])
        cut = row_cuts[:, j]
        known = ~np.isnan(y)
        # A label no test row judges has no metrics; None says so instead of a made-up zero.
        per_label[label] = {**binary_metrics(y, scores, cut), "threshold": threshold} if known.any() else None
        per_corpus[label] = {
            name: binary_metrics(y[rows], scores[rows], cut[rows])
            for name in corpora
            if (rows := (corpus == name) & known).any()
        }

    bias: dict[str, Any] | None = None
    if inputs.bias_y is not None and inputs.bias_scores is not None and inputs.bias_identities is not None:
        identities = np.asarray(inputs.bias_identities, dtype=object)
        served = float(inputs.thresholds[inputs.bias_label]) if inputs.bias_cuts is None else inputs.bias_cuts
        figures = bias_metrics(inputs.bias_y, inputs.bias_scores, identities, served)
        bias = {"label": inputs.bias_label, **figures}

    report: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "model_id": model_id,
        "kind": kind,
        "labels": per_label,  # label -> metrics on its native rows (None if no test row judges it)
        "n_rows": int(inputs.y.shape[0]),
        "corpora": corpora,
        "thresholds": {label: float(inputs.thresholds[label]) for label in inputs.labels},
        "identity_thresholds": {k: float(v) for k, v in inputs.identity_thresholds.items()},
        "per_corpus": per_corpus,
        "cross_domain": _cross_domain(inputs),
        "bias": bias,
        "spans": None if inputs.spans is None else {k: dict(v) for k, v in inputs.spans.items()},
        "task_metrics": dict(inputs.task_metrics),
    }
    report = _json_safe(report)
    if baseline is not None:
        report["comparison"] = _json_safe(_comparison(report, baseline))
    return report


# ---- rendering -------------------------------------------------------------------------------------


def _fmt(value: object, digits: int = 3, *, signed: bool = False) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    number = _number(value)
    if number is None:
        return _MISSING
    return f"{number:+.{digits}f}" if signed else f"{number:.{digits}f}"


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


_METRIC_COLUMNS = ("n", "positives", "roc_auc", "pr_auc", "f1", "precision", "recall", "ece", "brier")
_METRIC_HEADERS = ("n", "positives", "ROC-AUC", "PR-AUC", "F1", "precision", "recall", "ECE", "Brier")


def _metric_cells(metrics: object) -> list[str]:
    return [_fmt(lookup(metrics, column)) for column in _METRIC_COLUMNS]


def _bias_markdown(bias: Mapping[str, Any]) -> list[str]:
    means = bias["generalized_means"]
    lines = [
        "## Identity-term bias",
        "",
        f"Label `{bias['label']}` at threshold {_fmt(bias['threshold'])}: ROC-AUC {_fmt(bias['roc_auc'])}, "
        f"false-positive rate on negatives (NOT_BAD) {_fmt(bias['fpr'])} "
        f"({bias['negatives']} negatives of {bias['n']} rows; of the negatives that name no identity term, "
        f"{_fmt(bias.get('fpr_without_identity'))}).",
        "",
        f"Generalized means (power {bias['power']:g}) over identity terms: subgroup AUC "
        f"{_fmt(means['subgroup_auc'])}, BPSN AUC {_fmt(means['bpsn_auc'])}, BNSP AUC "
        f"{_fmt(means['bnsp_auc'])}; Jigsaw final score {_fmt(bias['final_score'])}.",
        "",
    ]
    headers = ("term", "n", "positives", "subgroup AUC", "BPSN AUC", "BNSP AUC", "FPR")

    def row(term: str) -> list[str]:
        t = bias["terms"][term]
        cells = [t["subgroup_auc"], t["bpsn_auc"], t["bnsp_auc"], t["fpr"]]
        return [f"`{term}`", str(t["n"]), str(t["positives"]), *(_fmt(c) for c in cells)]

    lines += ["### Worst identity terms (lowest bias AUC)", ""]
    lines += _md_table(headers, [row(term) for term in bias["worst_terms"]])
    lines += ["### All identity terms", ""]
    lines += _md_table(headers, [row(term) for term in sorted(bias["terms"])])
    return lines


def _comparison_markdown(comparison: Mapping[str, Any]) -> list[str]:
    lines = [f"## Comparison with baseline `{comparison['baseline_model_id']}`", ""]
    rows: list[list[str]] = []
    for label, entry in comparison["labels"].items():
        rows.append([label, "all", _fmt(entry["same_n"]), *_delta_cells(entry["roc_auc"])])
        for corpus, c_entry in entry["per_corpus"].items():
            rows.append([label, corpus, _fmt(c_entry["same_n"]), *_delta_cells(c_entry["roc_auc"])])
    lines += _md_table(("label", "corpus", "same n", "baseline ROC-AUC", "ROC-AUC", "Δ"), rows)
    other = [["bias FPR on negatives", *_delta_cells(comparison["bias"]["fpr"])]]
    other.append(["bias ROC-AUC", *_delta_cells(comparison["bias"]["roc_auc"])])
    other += [[name, *_delta_cells(d)] for name, d in comparison["task_metrics"].items()]
    lines += _md_table(("figure", "baseline", "candidate", "Δ"), other)
    paired = comparison.get("paired")
    if paired:
        level = round(100 * float(paired["level"]))
        lines += [
            f"### Paired changes: {level}% intervals",
            "",
            f"{paired['method']}; {paired['resamples']} resamples. Both models' figures are recomputed on "
            "the same resamples of the same rows, so the interval is that of the change itself. "
            "*worse* / *better*: the whole interval is on that side of no change.",
            "",
        ]
        rows = [
            [
                name,
                _fmt(figure["baseline"]),
                _fmt(figure["candidate"]),
                _fmt(figure["delta"], signed=True),
                f"[{_fmt(figure['low'], signed=True)}, {_fmt(figure['high'], signed=True)}]"
                if figure["low"] is not None
                else _MISSING,
                paired_reading(name, figure),
            ]
            for name, figure in paired["figures"].items()
        ]
        lines += _md_table(("figure", "baseline", "candidate", "Δ", "interval of Δ", "reading"), rows)
    return lines


# Figures where a rise is a loss (a flag rate on rows that should not be flagged).
LOWER_IS_BETTER = frozenset({"bias/fpr"})


def paired_reading(name: str, figure: Mapping[str, Any]) -> str:
    """ "worse", "better" or "within noise": where a paired interval of a change lies."""
    low, high = _number(figure.get("low")), _number(figure.get("high"))
    if low is None or high is None:
        return _MISSING
    sign = -1.0 if name in LOWER_IS_BETTER else 1.0
    low, high = sorted((sign * low, sign * high))
    return "worse" if high < 0 else "better" if low > 0 else "within noise"


def _delta_cells(entry: Mapping[str, Any]) -> list[str]:
    return [_fmt(entry["baseline"]), _fmt(entry["candidate"]), _fmt(entry["delta"], signed=True)]


def interval_text(intervals: object, name: str) -> str:
    """ "[low, high]" of a figure in a report's "intervals" section; "" when it has none."""
    figure = lookup(intervals, "figures", name)
    low, high = _number(lookup(figure, "low")), _number(lookup(figure, "high"))
    return "" if low is None or high is None else f"[{_fmt(low)}, {_fmt(high)}]"


def _intervals_markdown(intervals: Mapping[str, Any]) -> list[str]:
    level = round(100 * float(intervals["level"]))
    lines = [
        f"## Uncertainty: {level}% intervals",
        "",
        f"{intervals['method']}; {intervals['resamples']} resamples, seed {intervals['seed']}. They measure "
        "how far each figure could move on another test sample of the same make-up, not the noise of "
        "training. `n/a`: resamples where the figure is undefined (one class only).",
        "",
    ]
    rows = [
        [
            name,
            _fmt(lookup(figure, "value")),
            interval_text(intervals, name) or _MISSING,
            str(lookup(figure, "undefined_resamples") or ""),
        ]
        for name, figure in intervals["figures"].items()
    ]
    return lines + _md_table(("figure", "value", "interval", "n/a"), rows)


def _markdown(report: Mapping[str, Any], plots: Mapping[str, list[str]]) -> str:
    lines = [
        f"# Evaluation report: `{report['model_id']}` ({report['kind']})",
        "",
        f"{report['n_rows']} test rows from {', '.join(report['corpora'])}. A label is scored only on rows "
        "whose corpus judges it (native rows); a row is flagged when its score is ≥ the label's threshold.",
        "",
    ]
    identity = report.get("identity_thresholds") or {}
    if identity:
        cuts = ", ".join(f"{label} {_fmt(value)}" for label, value in identity.items())
        lines += [
            f"A comment that names an identity group is held to a stricter cut instead: {cuts}.",
            "",
        ]
    lines += [
        "## Per label (native rows)",
        "",
    ]
    rows = [
        [label, _fmt(report["thresholds"][label]), *_metric_cells(report["labels"][label])]
        for label in report["labels"]
    ]
    lines += _md_table(("label", "threshold", *_METRIC_HEADERS), rows)

    lines += ["## Per label and corpus", ""]
    rows = [
        [label, corpus, *_metric_cells(metrics)]
        for label in report["labels"]
        for corpus, metrics in report["per_corpus"][label].items()
    ]
    lines += _md_table(("label", "corpus", *_METRIC_HEADERS), rows)

    if report["cross_domain"]:
        lines += [
            "## Cross-domain flag rate",
            "",
            "Share of rows flagged in corpora that do not judge the label (no ground truth there; "
            "a high rate means the label fires on unrelated content).",
            "",
        ]
        rows = [
            [label, corpus, _fmt(rate)]
            for label, per_corpus in report["cross_domain"].items()
            for corpus, rate in per_corpus.items()
        ]
        lines += _md_table(("label", "corpus", "flag rate"), rows)

    if report["bias"] is not None:
        lines += _bias_markdown(report["bias"])

    if report["spans"]:
        names = list(dict.fromkeys(name for figures in report["spans"].values() for name in figures))
        lines += ["## Spans", ""]
        rows = [[group, *(_fmt(figures.get(n)) for n in names)] for group, figures in report["spans"].items()]
        lines += _md_table(("group", *names), rows)

    if report["task_metrics"]:
        lines += ["## Task metrics", ""]
        lines += _md_table(("figure", "value"), [[k, _fmt(v)] for k, v in report["task_metrics"].items()])

    if report.get("intervals"):
        lines += _intervals_markdown(report["intervals"])

    if report.get("comparison"):
        lines += _comparison_markdown(report["comparison"])

    if any(plots.values()):
        lines += ["## Plots", ""]
        for paths in plots.values():
            lines += [f"![{Path(path).stem}]({path})" for path in paths]
        lines.append("")
    return "\n".join(lines)


def _plot_label(
    label: str, y: FloatArray, scores: FloatArray, threshold: float, plot_dir: Path
) -> list[Path]:
    """Write the PR curve (both classes needed) and the reliability diagram of one label's native rows."""
    # Figures built without pyplot use the Agg canvas and leave the process-wide backend alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    written: list[Path] = []
    positives = int((y == 1.0).sum())
    if 0 < positives < y.size:
        precision, recall, _ = precision_recall_curve(y, scores)
        flagged = scores >= threshold
        fig = Figure(figsize=(5, 4), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.step(recall, precision, where="post", label="precision-recall")
        ax.axhline(positives / y.size, color="grey", linestyle=":", label="prevalence")
        if flagged.any():
            tp = float((flagged & (y == 1.0)).sum())
            ax.plot(tp / positives, tp / flagged.sum(), "o", color="C3", label=f"threshold {threshold:.3f}")
        ax.set(
            xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=f"{label} (n={y.size})"
        )
        ax.legend(loc="lower left")
        path = plot_dir / f"pr_{label}.png"
        fig.savefig(path)
        written.append(path)

    curve = calibration_curve_points(y, scores)
    fig = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    top.plot(curve.mean_predicted, curve.fraction_positive, "o-", label="model")
    top.set(ylabel="fraction positive", xlim=(0, 1), ylim=(0, 1), title=f"{label} reliability (n={y.size})")
    top.legend(loc="upper left")
    bottom.bar(curve.mean_predicted, curve.counts, width=0.05, color="C0")
    bottom.set(xlabel="mean predicted probability", ylabel="rows")
    path = plot_dir / f"calibration_{label}.png"
    fig.savefig(path)
    written.append(path)
    return written


SCORES_FILE = "eval_scores.npz"


def save_scores(path: Path, inputs: EvalInputs, data_hash: str) -> None:
    """The evaluation's labels, served scores and cuts, so a later model can be compared row by row."""
    arrays: dict[str, Any] = {
        "labels": np.array(inputs.labels),
        "thresholds": np.array([inputs.thresholds[label] for label in inputs.labels], dtype=np.float64),
        "y": inputs.y,
        "scores": inputs.scores,
        "cuts": inputs.served_cuts(),
        "corpus": np.asarray(inputs.corpus, dtype=np.str_),
        "data_hash": np.array(data_hash),
        "bias_label": np.array(inputs.bias_label),
    }
    if inputs.bias_y is not None and inputs.bias_scores is not None:
        arrays["bias_y"] = inputs.bias_y
        arrays["bias_scores"] = inputs.bias_scores
        if inputs.bias_cuts is not None:
            arrays["bias_cuts"] = inputs.bias_cuts
    with path.open("wb") as fh:
        np.savez_compressed(fh, **arrays)


def load_scores(path: Path, data_hash: str) -> EvalInputs | None:
    """The scores `save_scores` wrote, when they are of the test rows `data_hash` names; else None.

    An unreadable file is None too (with a warning): a comparison is not worth failing a run over.
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["data_hash"]) != data_hash:
                return None
            labels = tuple(str(label) for label in npz["labels"])
            bias: dict[str, Any] = {}
            if "bias_y" in npz:
                bias = {
                    "bias_y": npz["bias_y"],
                    "bias_scores": npz["bias_scores"],
                    "bias_identities": np.full(len(npz["bias_y"]), None, dtype=object),
                    "bias_cuts": npz.get("bias_cuts"),
                }
            return EvalInputs(
                labels=labels,
                y=npz["y"],
                scores=npz["scores"],
                corpus=npz["corpus"],
                thresholds=dict(zip(labels, npz["thresholds"].tolist(), strict=True)),
                cuts=npz["cuts"],
                bias_label=str(npz["bias_label"]),
                **bias,
            )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        logger.warning("ignoring unreadable evaluation scores %s: %s", path, exc)
        return None


def write_report(report: Mapping[str, Any], out_dir: str | Path, inputs: EvalInputs) -> None:
    """Write report.json, report.md, the scores (`SCORES_FILE`) and per-label PR and calibration plots."""
    if list(report.get("labels", [])) != list(inputs.labels):
        raise ValueError("report and inputs disagree on the labels; build the report from these inputs")
    out = Path(out_dir)
    plot_dir = out / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)

    plots: dict[str, list[str]] = {}
    for j, label in enumerate(inputs.labels):
        y, scores = inputs.y[:, j], inputs.scores[:, j]
        known = ~np.isnan(y)
        if not known.any():
            plots[label] = []
            continue
        paths = _plot_label(label, y[known], scores[known], float(inputs.thresholds[label]), plot_dir)
        plots[label] = [path.relative_to(out).as_posix() for path in paths]

    text = json.dumps(_json_safe(report), indent=2, allow_nan=False)
    (out / "report.json").write_text(text + "\n", encoding="utf-8")
    (out / "report.md").write_text(_markdown(report, plots), encoding="utf-8")
    save_scores(out / SCORES_FILE, inputs, str(report.get("test_data_hash") or ""))


def _fixed_row(cells: Sequence[str], widths: Sequence[int]) -> str:
    # First column left-aligned (label names), numbers right-aligned.
    padded = [
        f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(cells, widths, strict=False))
    ]
    return "  ".join(padded).rstrip()


def format_summary(report: Mapping[str, Any]) -> str:
    """A compact fixed-width table of the report for the terminal."""
    comparison = report.get("comparison")
    title = f"model {report['model_id']} ({report['kind']})"
    if comparison:
        title += f" vs baseline {comparison['baseline_model_id']}"
    columns = ["label", "n", "pos", "ROC-AUC", "PR-AUC", "F1", "P", "R", "ECE", "thr"]
    if comparison:
        columns.append("ΔAUC")
    widths = [16, 7, 7, 8, 8, 6, 6, 6, 6, 6, 7]
    lines = [title, _fixed_row(columns, widths)]
    for label in report["labels"]:
        m = report["labels"][label]
        cells = [label, *(_fmt(lookup(m, k)) for k in ("n", "positives", "roc_auc", "pr_auc"))]
        cells += [_fmt(lookup(m, k), 2) for k in ("f1", "precision", "recall", "ece")]
        cells.append(_fmt(report["thresholds"][label], 2))
        if comparison:
            cells.append(_fmt(comparison["labels"][label]["roc_auc"]["delta"], signed=True))
        lines.append(_fixed_row(cells, widths))

    for label, per_corpus in report["cross_domain"].items():
        rates = ", ".join(f"{corpus} {_fmt(rate)}" for corpus, rate in per_corpus.items())
        lines.append(f"cross-domain flag rate {label}: {rates}")
    bias = report["bias"]
    if bias is not None:
        line = (
            f"bias {bias['label']}@{_fmt(bias['threshold'], 2)}: ROC-AUC {_fmt(bias['roc_auc'])}, "
            f"FPR on negatives {_fmt(bias['fpr'])}"
        )
        if comparison:
            line += f" (Δ {_fmt(comparison['bias']['fpr']['delta'], signed=True)})"
        line += f", final {_fmt(bias['final_score'])}"
        worst = [f"{t} (BPSN {_fmt(bias['terms'][t]['bpsn_auc'], 2)})" for t in bias["worst_terms"]]
        if worst:
            line += "; worst terms: " + ", ".join(worst)
        lines.append(line)
    paired = lookup(comparison, "paired", "figures")
    if isinstance(paired, Mapping):
        readings = {name: paired_reading(name, figure) for name, figure in paired.items()}
        worse = [name for name, r in readings.items() if r == "worse"]
        better = [name for name, r in readings.items() if r == "better"]
        lines.append(
            f"paired changes ({len(readings)} figures): worse {', '.join(worse) or 'none'}; "
            f"better {', '.join(better) or 'none'}; the rest within noise"
        )
    if report["task_metrics"]:
        intervals = report.get("intervals")
        lines.append(
            "task: "
            + ", ".join(
                f"{k} {_fmt(v)}" + (f" {text}" if (text := interval_text(intervals, k)) else "")
                for k, v in report["task_metrics"].items()
            )
        )
    return "\n".join(lines)
