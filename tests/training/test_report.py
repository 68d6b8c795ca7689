"""Tests of the evaluation report builder and writer on synthetic scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.labels import LABEL_NAMES
from training.metrics import binary_metrics, cross_domain_flag_rate
from training.report import EvalInputs, _markdown, build_report, format_summary, write_report

# Which labels each synthetic corpus judges (the rest are NaN = unknown), as in the real data.
_JUDGES = {
    "civil_comments": ("toxicity", "insult", "threat", "identity_attack", "profanity"),
    "tubespam": ("spam",),
    "constraint": ("misinformation",),
}
_ROWS_PER_CORPUS = 60


def _inputs(seed: int = 0, *, with_bias: bool = True, noise: float = 0.6) -> EvalInputs:
    rng = np.random.default_rng(seed)
    labels = LABEL_NAMES
    corpora = np.repeat(list(_JUDGES), _ROWS_PER_CORPUS)
    n = corpora.size
    y = np.full((n, len(labels)), np.nan)
    for corpus, judged in _JUDGES.items():
        rows = corpora == corpus
        for label in judged:
            y[rows, labels.index(label)] = rng.integers(0, 2, rows.sum())
    truth = np.nan_to_num(y, nan=0.0)
    scores = np.clip((1 - noise) * truth + noise * rng.random(y.shape), 0.0, 1.0)
    # 'threat' has no positive on the test rows: its AUCs must come out as None, not NaN.
    y[corpora == "civil_comments", labels.index("threat")] = 0.0

    bias: dict[str, Any] = {}
    if with_bias:
        bias_y = np.repeat(np.tile([1.0, 0.0], 10), 4)  # every term gets both classes
        identities = np.array(["gay", "muslim", "tall", None] * 20, dtype=object)
        bias_p = np.clip(0.5 * bias_y + 0.5 * rng.random(80), 0, 1)
        bias_p[(identities == "gay") & (bias_y == 0)] = 0.95  # a biased term
        bias = {"bias_y": bias_y, "bias_scores": bias_p, "bias_identities": identities}

    return EvalInputs(
        labels=labels,
        y=y,
        scores=scores,
        corpus=corpora,
        thresholds=dict.fromkeys(labels, 0.5),
        cross_domain={
            "spam": {"civil_comments": scores[corpora == "civil_comments", labels.index("spam")]},
            "misinformation": {"civil_comments": 0.02, "tubespam": None},
        },
        spans={"civil_comments": {"char_f1": 0.61, "n": 120}},
        task_metrics={"olid_macro_f1": 0.74, "constraint_weighted_f1": None},
        **bias,
    )


@pytest.fixture
def inputs() -> EvalInputs:
    return _inputs()


def test_report_is_json_safe_and_has_every_section(inputs: EvalInputs) -> None:
    report = build_report(inputs, model_id="cand-1", kind="linear")
    text = json.dumps(report, allow_nan=False)
    assert json.loads(text) == report
    assert list(report["labels"]) == list(LABEL_NAMES)
    assert report["model_id"] == "cand-1"
    assert report["kind"] == "linear"
    assert report["corpora"] == sorted(_JUDGES)
    assert report["task_metrics"] == {"olid_macro_f1": 0.74, "constraint_weighted_f1": None}
    assert report["spans"] == {"civil_comments": {"char_f1": 0.61, "n": 120}}
    assert "comparison" not in report


def test_per_label_metrics_use_native_rows_only(inputs: EvalInputs) -> None:
    report = build_report(inputs, model_id="m", kind="linear")
    j = LABEL_NAMES.index("toxicity")
    rows = ~np.isnan(inputs.y[:, j])
    expected = binary_metrics(inputs.y[rows, j], inputs.scores[rows, j], 0.5)
    assert report["labels"]["toxicity"] == {**expected, "threshold": 0.5}
    assert report["labels"]["toxicity"]["n"] == _ROWS_PER_CORPUS
    assert list(report["per_corpus"]["toxicity"]) == ["civil_comments"]
    assert list(report["per_corpus"]["spam"]) == ["tubespam"]
    # A label no test row judges has no metrics rather than zeros.
    assert report["labels"]["conspiracy"] is None
    assert report["per_corpus"]["conspiracy"] == {}
    # A single-class label: AUCs are None in the dict and null in JSON.
    assert report["labels"]["threat"]["roc_auc"] is None
    assert report["labels"]["threat"]["pr_auc"] is None


def test_cross_domain_rates_are_computed_or_passed_through(inputs: EvalInputs) -> None:
    report = build_report(inputs, model_id="m", kind="linear")
    corpus = np.asarray(inputs.corpus)
    spam_scores = inputs.scores[corpus == "civil_comments", LABEL_NAMES.index("spam")]
    expected = cross_domain_flag_rate(spam_scores, 0.5)
    assert report["cross_domain"]["spam"] == {"civil_comments": pytest.approx(expected)}
    assert report["cross_domain"]["misinformation"] == {"civil_comments": 0.02, "tubespam": None}


def test_bias_section(inputs: EvalInputs) -> None:
    report = build_report(inputs, model_id="m", kind="linear")
    bias = report["bias"]
    assert bias["label"] == "toxicity"
    assert bias["threshold"] == 0.5
    assert set(bias["terms"]) == {"gay", "muslim", "tall"}
    assert bias["worst_terms"][0] == "gay"
    assert bias["terms"]["gay"]["fpr"] == 1.0


def test_no_bias_inputs_gives_none() -> None:
    report = build_report(_inputs(with_bias=False), model_id="m", kind="linear")
    assert report["bias"] is None


def test_comparison_deltas() -> None:
    candidate_inputs = _inputs(seed=0, noise=0.3)
    baseline = build_report(_inputs(seed=0, noise=0.8), model_id="active-0", kind="linear")
    report = build_report(candidate_inputs, model_id="cand-1", kind="transformer", baseline=baseline)
    json.dumps(report, allow_nan=False)
    comparison = report["comparison"]
    assert comparison["baseline_model_id"] == "active-0"

    tox = comparison["labels"]["toxicity"]
    cand_auc = report["labels"]["toxicity"]["roc_auc"]
    base_auc = baseline["labels"]["toxicity"]["roc_auc"]
    assert tox["roc_auc"] == {
        "candidate": cand_auc,
        "baseline": base_auc,
        "delta": pytest.approx(cand_auc - base_auc),
    }
    assert tox["roc_auc"]["delta"] > 0  # less noise, better ranking
    assert tox["same_n"] is True
    spam_corpus = comparison["labels"]["spam"]["per_corpus"]["tubespam"]
    cand_spam = report["per_corpus"]["spam"]["tubespam"]["roc_auc"]
    base_spam = baseline["per_corpus"]["spam"]["tubespam"]["roc_auc"]
    assert spam_corpus["roc_auc"]["delta"] == pytest.approx(cand_spam - base_spam)
    assert comparison["labels"]["threat"]["roc_auc"]["delta"] is None  # undefined AUCs give no delta
    no_data = {"candidate": None, "baseline": None, "delta": None}
    assert comparison["labels"]["conspiracy"]["roc_auc"] == no_data

    fpr = comparison["bias"]["fpr"]
    assert fpr["delta"] == pytest.approx(report["bias"]["fpr"] - baseline["bias"]["fpr"])
    assert comparison["task_metrics"]["olid_macro_f1"]["delta"] == pytest.approx(0.0)


def test_comparison_tolerates_a_sparse_baseline(inputs: EvalInputs) -> None:
    baseline = {"model_id": "old", "labels": {"toxicity": {"roc_auc": 0.5, "n": 1}}, "bias": None}
    report = build_report(inputs, model_id="m", kind="linear", baseline=baseline)
    tox = report["comparison"]["labels"]["toxicity"]
    assert tox["roc_auc"]["baseline"] == 0.5
    assert tox["same_n"] is False  # evaluated on other rows: the delta is flagged as not like for like
    assert report["comparison"]["bias"]["fpr"]["delta"] is None


def test_write_report_round_trip(tmp_path: Path) -> None:
    inputs = _inputs(seed=1)
    baseline = build_report(_inputs(seed=1, noise=0.8), model_id="active-0", kind="linear")
    report = build_report(inputs, model_id="cand-1", kind="linear", baseline=baseline)
    write_report(report, tmp_path / "out", inputs)
    out = tmp_path / "out"

    assert json.loads((out / "report.json").read_text(encoding="utf-8")) == report
    md = (out / "report.md").read_text(encoding="utf-8")
    for heading in (
        "## Per label (native rows)",
        "## Per label and corpus",
        "## Cross-domain flag rate",
        "## Identity-term bias",
        "### Worst identity terms",
        "## Spans",
        "## Task metrics",
        "## Comparison with baseline `active-0`",
    ):
        assert heading in md
    assert "| label | threshold | n | positives | ROC-AUC |" in md
    assert "| toxicity | civil_comments |" in md
    assert "| `gay` |" in md

    for label in LABEL_NAMES:
        if label == "conspiracy":  # no test row judges it: nothing to plot
            assert not (out / "plots" / f"calibration_{label}.png").exists()
            continue
        calibration = out / "plots" / f"calibration_{label}.png"
        assert calibration.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"plots/calibration_{label}.png" in md
        if label != "threat":  # single class: no PR curve
            pr = out / "plots" / f"pr_{label}.png"
            assert pr.stat().st_size > 1000


def test_write_report_rejects_mismatched_inputs(tmp_path: Path, inputs: EvalInputs) -> None:
    report = build_report(inputs, model_id="m", kind="linear")
    report["labels"] = {"toxicity": report["labels"]["toxicity"]}
    with pytest.raises(ValueError, match="disagree on the labels"):
        write_report(report, tmp_path, inputs)


def test_write_report_turns_nan_into_null(tmp_path: Path, inputs: EvalInputs) -> None:
    report = build_report(inputs, model_id="m", kind="linear")
    report["extra"] = {"value": float("nan"), "count": np.int64(3)}
    write_report(report, tmp_path, inputs)
    saved = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert saved["extra"] == {"value": None, "count": 3}


def test_format_summary(inputs: EvalInputs) -> None:
    plain = format_summary(build_report(inputs, model_id="m", kind="linear"))
    assert "ΔAUC" not in plain
    lines = plain.splitlines()
    assert lines[0] == "model m (linear)"
    assert lines[1].split()[:4] == ["label", "n", "pos", "ROC-AUC"]
    for label in LABEL_NAMES:
        assert any(line.startswith(label) for line in lines)
    assert "cross-domain flag rate spam:" in plain
    assert "bias toxicity@0.50" in plain
    assert "worst terms: gay" in plain
    assert "olid_macro_f1 0.740" in plain

    baseline = build_report(_inputs(noise=0.8), model_id="old", kind="linear")
    compared = format_summary(build_report(inputs, model_id="m", kind="linear", baseline=baseline))
    assert "vs baseline old" in compared
    assert "ΔAUC" in compared
    tox_line = next(line for line in compared.splitlines() if line.startswith("toxicity"))
    assert tox_line.split()[-1].startswith(("+", "-"))


def test_summary_works_on_a_report_read_back_from_json(inputs: EvalInputs) -> None:
    report = build_report(inputs, model_id="m", kind="linear")
    assert format_summary(json.loads(json.dumps(report))) == format_summary(report)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"y": np.zeros((0, len(LABEL_NAMES)))}, "non-empty"),
        ({"scores": np.zeros((3, len(LABEL_NAMES)))}, "differs from y"),
        ({"corpus": np.array(["x"])}, "one name per row"),
        ({"labels": ("toxicity",)}, "array"),
        ({"thresholds": {"toxicity": 0.5}}, "no threshold"),
        ({"cross_domain": {"toxicity": {"x": 0.1}, "bogus": {}}}, "not evaluated"),
        ({"bias_scores": None}, "together"),
        ({"bias_identities": ["gay"]}, "bias_identities has 1 rows"),
        ({"cuts": np.full((3, len(LABEL_NAMES)), 0.5)}, "cuts must be"),
        ({"cuts": np.full((_ROWS_PER_CORPUS * len(_JUDGES), len(LABEL_NAMES)), np.nan)}, "cuts must be"),
        ({"bias_cuts": np.full(3, 0.5)}, "bias_cuts"),
    ],
)
def test_eval_inputs_validation(change: dict[str, Any], match: str) -> None:
    base = _inputs()
    fields = {name: getattr(base, name) for name in base.__dataclass_fields__}
    fields.update(change)
    with pytest.raises(ValueError, match=match):
        EvalInputs(**fields)


def test_eval_inputs_rejects_unknown_label() -> None:
    base = _inputs()
    with pytest.raises(ValueError, match="unknown label"):
        EvalInputs(
            labels=("toxicity", "rudeness"),
            y=base.y[:, :2],
            scores=base.scores[:, :2],
            corpus=base.corpus,
            thresholds={"toxicity": 0.5, "rudeness": 0.5},
        )


def test_cross_domain_rejects_rate_out_of_range(inputs: EvalInputs) -> None:
    bad = EvalInputs(
        labels=inputs.labels,
        y=inputs.y,
        scores=inputs.scores,
        corpus=inputs.corpus,
        thresholds=inputs.thresholds,
        cross_domain={"spam": {"civil_comments": 3.0}},
    )
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        build_report(bad, model_id="m", kind="linear")


def test_per_row_cuts_as_served_drive_every_flag_figure(inputs: EvalInputs) -> None:
    """A model's identity cuts reach the report: F1s, the bias false-positive rate, the markdown."""
    from dataclasses import replace

    tox = LABEL_NAMES.index("toxicity")
    cuts = np.full(inputs.y.shape, 0.5)
    cuts[::2, tox] = 0.99  # half the rows held to a stricter toxicity cut
    bias_cuts = np.where(np.asarray(inputs.bias_identities) == "gay", 0.99, 0.5)
    served = replace(inputs, cuts=cuts, bias_cuts=bias_cuts, identity_thresholds={"toxicity": 0.99})
    plain = build_report(inputs, model_id="m", kind="linear")
    report = build_report(served, model_id="m", kind="linear")
    y, s = inputs.y[:, tox], inputs.scores[:, tox]
    known = ~np.isnan(y)
    flagged = (s >= cuts[:, tox])[known]
    tp = float((flagged & (y[known] == 1)).sum())
    expected = (
        2
        * tp
        / (2 * tp + float((flagged & (y[known] == 0)).sum()) + float((~flagged & (y[known] == 1)).sum()))
    )
    assert report["labels"]["toxicity"]["f1"] == pytest.approx(expected)
    assert report["labels"]["toxicity"]["f1"] != plain["labels"]["toxicity"]["f1"]
    assert (
        report["labels"]["toxicity"]["roc_auc"] == plain["labels"]["toxicity"]["roc_auc"]
    )  # ranking untouched
    assert report["labels"]["insult"] == plain["labels"]["insult"]
    assert report["bias"]["fpr"] < plain["bias"]["fpr"]  # the biased term's negatives are no longer flagged
    assert report["bias"]["threshold"] is None  # rows held to different cuts
    assert report["identity_thresholds"] == {"toxicity": 0.99} and plain["identity_thresholds"] == {}
    assert "names an identity group is held to a stricter cut instead: toxicity 0.990" in _markdown(
        report, {}
    )
