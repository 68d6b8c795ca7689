"""MODEL_CARD.md generated from an artifact's metadata and its evaluation report."""

from __future__ import annotations

from typing import Any

from models.artifact import ArtifactInfo
from models.labels import LABELS


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("-" if value is None else str(value))


def render_model_card(info: ArtifactInfo, report: dict[str, Any]) -> str:
    """Markdown model card: what it is, data, metrics, bias, intended use, limits."""
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
        "| label | definition | threshold |",
        "|---|---|---|",
    ]
    lines += [f"| {lab.name} | {lab.definition} | {info.thresholds[lab.name]:.3f} |" for lab in LABELS]
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
        "",
        "## Test metrics",
        "",
        "| label | n | positives | ROC-AUC | PR-AUC | F1 | precision | recall | ECE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in (report.get("labels") or {}).items():
        if not isinstance(m, dict):
            lines.append(f"| {name} | 0 | - | - | - | - | - | - | - |")
            continue
        lines.append(
            f"| {name} | {m.get('n')} | {m.get('positives')} | {_fmt(m.get('roc_auc'))} | {_fmt(m.get('pr_auc'))} "
            f"| {_fmt(m.get('f1'))} | {_fmt(m.get('precision'))} | {_fmt(m.get('recall'))} | {_fmt(m.get('ece'))} |"
        )
    lines += ["", "Shared-task figures:", ""]
    lines += [f"- {k}: {_fmt(v)}" for k, v in (report.get("task_metrics") or {}).items()]
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
        f"- toxicity ROC-AUC: {_fmt(bias.get('roc_auc'))}",
        f"- NOT_BAD rows flagged at the served threshold: {_fmt(bias.get('fpr'))}",
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
    ]
    return "\n".join(lines)
