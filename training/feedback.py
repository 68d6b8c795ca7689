"""The feedback corpus: what moderators decided, as training rows and a held-out evaluation slice.

`moderation feedback export` writes it as JSON Lines, one record per line (the service's
`FeedbackExample.to_json`)::

    {"id": "decision-42", "source": "moderator" | "suggestion", "site": "...", "created_at": ISO 8601,
     "moderator": "key:...", "decision": "approve" | "reject" | null,
     "labels": {"toxicity": 1.0, "insult": 0.0, ...}, "text": "..."}

`labels` names only the labels the record judges (the others are unknown, as in the corpora);
values of 0.5 and above are positives, and a value strictly between 0 and 1 (a suggested score)
is also kept as the soft target.

Cleaning, applied both when exporting and when loading, against the corpora as committed:

- a record whose normalised text (`training.dataset.normalize_text`) is in a test or validation
  split of any corpus, or in the bias set, is dropped: feedback never leaks into the rows models
  are judged on or calibrated on;
- of records with the same normalised text, the newest wins.

The split is a pure function of the normalised text: a text is held out when
crc32(normalised text) % 100 < HELDOUT_PERCENT. So a text stays on the same side in every export,
and no model trained with feedback has seen any text of any later held-out slice.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.errors import InputDataError
from models.labels import LABEL_NAMES
from models.scoring import Model
from training import metrics
from training.corpora import COLUMNS, DEFAULT_DATA_DIR
from training.dataset import build_dataset, dataset_hash, load_bias_madlibs, normalize_text

logger = logging.getLogger(__name__)

CORPUS = "feedback"
TRAIN, HELDOUT = "train", "heldout"
HELDOUT_PERCENT = 20
DEFAULT_WEIGHT = 1.0
_REQUIRED = ("id", "text", "labels", "created_at")


@dataclass
class FeedbackSet:
    """Cleaned feedback: training rows (with weight_<label> columns) and the held-out slice."""

    train: pd.DataFrame
    heldout: pd.DataFrame
    removed: dict[str, int] = field(default_factory=dict)
    path: Path | None = None

    @property
    def heldout_hash(self) -> str:
        """Identifies the held-out slice (rows and labels), so that two evaluations can be matched."""
        return dataset_hash(self.heldout)


def is_heldout(normalised: str) -> bool:
    """Whether a normalised text belongs to the held-out slice (see the module docstring)."""
    return zlib.crc32(normalised.encode("utf-8")) % 100 < HELDOUT_PERCENT


def _check_record(record: object, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise InputDataError(f"{where}: expected a JSON object")
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        raise InputDataError(f"{where}: missing {', '.join(missing)}")
    if not isinstance(record["text"], str) or not isinstance(record["labels"], dict):
        raise InputDataError(f"{where}: text must be a string and labels an object")
    unknown = [label for label in record["labels"] if label not in LABEL_NAMES]
    if unknown:
        raise InputDataError(f"{where}: unknown label(s) {', '.join(map(str, unknown))}")
    for label, value in record["labels"].items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
            raise InputDataError(f"{where}: label {label} must be a number within 0..1")
    return record


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a feedback corpus file; InputDataError for a missing or malformed one."""
    if not path.is_file():
        raise InputDataError(f"{path}: file not found (write it with `moderation feedback export`)")
    records = []
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    records.append(_check_record(json.loads(line), f"{path}:{number}"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputDataError(f"{path}: not JSON Lines ({exc})") from None
    return records


def write_records(records: Iterable[Mapping[str, Any]], path: Path) -> int:
    """Write records as JSON Lines, atomically (a reader never sees half a file); returns the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    count = 0
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    Path(tmp).replace(path)
    return count


def standing_texts(data_dir: Path | None = None, frame: pd.DataFrame | None = None) -> set[str]:
    """Normalised texts feedback must never contain: every corpus's test and validation rows, the bias set.

    `frame` may pass an already built dataset of *all* corpora, to save building it again.
    """
    data_dir = data_dir or DEFAULT_DATA_DIR
    df = frame if frame is not None else build_dataset(data_dir)
    judged = df.loc[df["split"].isin(("test", "validation")), "text"]
    texts = {normalize_text(str(t)) for t in judged}
    texts.update(normalize_text(str(t)) for t in load_bias_madlibs(data_dir)["text"])
    return texts


def clean_records(
    records: Iterable[Mapping[str, Any]], standing: set[str]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Drop empty texts and texts of the standing splits, keep the newest record per normalised text."""
    removed = {"empty_text": 0, "no_labels": 0, "in_test_or_validation_or_bias_set": 0, "older_duplicate": 0}
    newest: dict[str, dict[str, Any]] = {}
    for record in sorted(records, key=lambda r: (str(r["created_at"]), str(r["id"]))):
        norm = normalize_text(str(record["text"]))
        if not norm:
            removed["empty_text"] += 1
        elif not record["labels"]:
            removed["no_labels"] += 1
        elif norm in standing:
            removed["in_test_or_validation_or_bias_set"] += 1
        else:
            if norm in newest:
                removed["older_duplicate"] += 1
            newest[norm] = dict(record)
    kept = sorted(newest.values(), key=lambda r: (str(r["created_at"]), str(r["id"])))
    return kept, removed


def _frame(records: list[dict[str, Any]], split: str) -> pd.DataFrame:
    """Rows in the corpora's schema (`training.corpora.COLUMNS`), corpus "feedback"."""
    n = len(records)
    data: dict[str, Any] = {
        "id": [f"{CORPUS}:{r['id']}" for r in records],
        "corpus": [CORPUS] * n,
        "split": [split] * n,
        "text": [str(r["text"]) for r in records],
    }
    for label in LABEL_NAMES:
        values = [r["labels"].get(label) for r in records]
        data[label] = np.array(
            [math.nan if v is None else float(float(v) >= 0.5) for v in values], dtype=np.float64
        )
        # Only a graded value (a suggested score) is a soft target; 0 and 1 are plain labels.
        data[f"soft_{label}"] = np.array(
            [float(v) if v is not None and 0.0 < float(v) < 1.0 else math.nan for v in values],
            dtype=np.float64,
        )
    data["spans"] = [[] for _ in range(n)]
    return pd.DataFrame(data, columns=list(COLUMNS))


def with_weights(rows: pd.DataFrame, weight: float) -> pd.DataFrame:
    """Copy of training rows with weight_<label>: `weight` where the label is judged, 0 elsewhere."""
    out = rows.copy()
    for label in LABEL_NAMES:
        out[f"weight_{label}"] = np.where(out[label].notna(), weight, 0.0)
    return out


def split_feedback(
    records: list[dict[str, Any]], standing: set[str], weight: float = DEFAULT_WEIGHT
) -> FeedbackSet:
    """Clean records and split them into weighted training rows and the held-out slice."""
    if weight <= 0:
        raise InputDataError(f"the feedback weight must be positive, got {weight}")
    kept, removed = clean_records(records, standing)
    held = [is_heldout(normalize_text(str(r["text"]))) for r in kept]
    train = [r for r, h in zip(kept, held, strict=True) if not h]
    heldout = [r for r, h in zip(kept, held, strict=True) if h]
    return FeedbackSet(
        train=with_weights(_frame(train, TRAIN), weight), heldout=_frame(heldout, HELDOUT), removed=removed
    )


def load_feedback(
    path: Path,
    *,
    data_dir: Path | None = None,
    frame: pd.DataFrame | None = None,
    weight: float = DEFAULT_WEIGHT,
) -> FeedbackSet:
    """Read, clean and split a feedback corpus file (`frame`: the built dataset of all corpora, if at hand)."""
    records = read_records(path)
    feedback = split_feedback(records, standing_texts(data_dir, frame), weight)
    feedback.path = path
    logger.info(
        "feedback %s: %d records, %d for training, %d held out; removed %s",
        path,
        len(records),
        len(feedback.train),
        len(feedback.heldout),
        ", ".join(f"{n} {why}" for why, n in feedback.removed.items()) or "none",
    )
    return feedback


def evaluate_feedback(model: Model, heldout: pd.DataFrame) -> dict[str, Any]:
    """Per-label metrics of `model` on the held-out feedback rows that judge the label.

    `agreement` is the share of judged (text, label) pairs where the model's flag at its served
    threshold matches the moderators' label.
    """
    if heldout.empty:
        return {"n": 0, "labels": dict.fromkeys(model.labels), "agreement": None}
    texts = heldout["text"].tolist()
    scores = model.score(texts)
    cuts = model.cuts(texts)
    per_label: dict[str, Any] = {}
    agree = judged = 0
    for j, label in enumerate(model.labels):
        y = heldout[label].to_numpy(dtype=np.float64)
        known = ~np.isnan(y)
        if not known.any():
            per_label[label] = None
            continue
        cut = cuts[known, j]
        per_label[label] = metrics.binary_metrics(y[known], scores[known, j], cut)
        agree += int(((scores[known, j] >= cut) == (y[known] == 1.0)).sum())
        judged += int(known.sum())
    return {"n": len(heldout), "labels": per_label, "agreement": agree / judged if judged else None}


def feedback_section(model: Model, feedback: FeedbackSet, baseline: Model | None = None) -> dict[str, Any]:
    """The report's `feedback` section: the slice, the model's metrics on it and the baseline's."""
    section: dict[str, Any] = {
        "path": str(feedback.path) if feedback.path else None,
        "data_hash": feedback.heldout_hash,
        "train_rows": len(feedback.train),
        "heldout_rows": len(feedback.heldout),
        "removed": dict(feedback.removed),
        **evaluate_feedback(model, feedback.heldout),
        "baseline": None,
    }
    if baseline is not None:
        section["baseline"] = {"model_id": baseline.id, **evaluate_feedback(baseline, feedback.heldout)}
    return section


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "–"


def format_feedback(section: Mapping[str, Any]) -> str:
    """Terminal lines for a report's feedback section."""
    lines = [
        f"held-out feedback: {section['heldout_rows']} rows (trained on {section['train_rows']}), "
        f"agreement {_fmt(section.get('agreement'))}"
    ]
    baseline = section.get("baseline") or {}
    for label, m in (section.get("labels") or {}).items():
        if not m:
            continue
        base = (baseline.get("labels") or {}).get(label) or {}
        line = f"  {label:<16} n={m['n']:<5} ROC-AUC {_fmt(m.get('roc_auc'))}"
        if baseline:
            line += f" (active model {_fmt(base.get('roc_auc'))})"
        lines.append(line)
    return "\n".join(lines)


def feedback_markdown(section: Mapping[str, Any]) -> str:
    """A report.md section for the held-out feedback slice."""
    baseline = section.get("baseline") or {}
    lines = [
        "",
        "## Held-out moderator feedback",
        "",
        f"{section['heldout_rows']} held-out feedback rows (never trained on; {section['train_rows']} other "
        f"feedback rows were trained on). Agreement with the moderators at the served thresholds: "
        f"{_fmt(section.get('agreement'))}"
        + (
            f" (active model `{baseline['model_id']}`: {_fmt(baseline.get('agreement'))})."
            if baseline
            else "."
        ),
        "",
        "| label | n | positives | ROC-AUC | F1 | active model ROC-AUC |",
        "|---|---|---|---|---|---|",
    ]
    for label, m in (section.get("labels") or {}).items():
        if m:
            base = (baseline.get("labels") or {}).get(label) or {}
            lines.append(
                f"| {label} | {m['n']} | {m['positives']} | {_fmt(m.get('roc_auc'))} | {_fmt(m.get('f1'))} "
                f"| {_fmt(base.get('roc_auc'))} |"
            )
    return "\n".join([*lines, ""])
