"""The feedback corpus: reading and writing it, cleaning, the deterministic split, rows, evaluation."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.errors import InputDataError
from models.labels import LABEL_NAMES
from models.registry import Registry
from tests.conftest import CLEAN, TOXIC
from training.corpora import COLUMNS
from training.feedback import (
    HELDOUT_PERCENT,
    clean_records,
    evaluate_feedback,
    feedback_markdown,
    feedback_section,
    format_feedback,
    is_heldout,
    load_feedback,
    read_records,
    split_feedback,
    standing_texts,
    write_records,
)


def _record(
    text: str, labels: dict[str, float], at: str = "2026-11-25T10:00:00+00:00", n: int = 0
) -> dict[str, Any]:
    return {
        "id": f"decision-{n}",
        "source": "moderator",
        "site": "s",
        "created_at": at,
        "moderator": "key:m",
        "decision": "reject",
        "labels": labels,
        "text": text,
    }


def test_write_and_read(tmp_path: Path) -> None:
    records = [_record("héllo wörld", {"toxicity": 1.0}), _record("second", {"spam": 0.25}, n=1)]
    path = tmp_path / "out" / "feedback.jsonl"
    assert write_records(records, path) == 2
    assert read_records(path) == records
    assert [p.name for p in path.parent.iterdir()] == ["feedback.jsonl"]  # no temporary file left


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json\n", "not JSON Lines"),
        ('["a list"]\n', "expected a JSON object"),
        ('{"id": "x", "text": "t", "labels": {}}\n', "missing created_at"),
        (
            '{"id": "x", "text": "t", "created_at": "c", "labels": {"rudeness": 1}}\n',
            "unknown label(s) rudeness",
        ),
        ('{"id": "x", "text": "t", "created_at": "c", "labels": {"spam": 2}}\n', "within 0..1"),
        ('{"id": "x", "text": 5, "created_at": "c", "labels": {}}\n', "text must be a string"),
    ],
)
def test_malformed_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text(content)
    with pytest.raises(InputDataError, match=re.escape(message)):
        read_records(path)
    with pytest.raises(InputDataError, match="file not found"):
        read_records(tmp_path / "missing.jsonl")


def test_cleaning_drops_standing_texts_and_keeps_the_newest_judgment() -> None:
    standing = {"this text is in a test split"}
    records = [
        _record("This   text is IN a test split", {"toxicity": 1.0}, n=1),
        _record("you are a flurb", {"toxicity": 1.0}, at="2026-11-25T10:00:00+00:00", n=2),
        _record("You are a  FLURB", {"toxicity": 0.0}, at="2026-11-25T11:00:00+00:00", n=3),
        _record("   ", {"toxicity": 0.0}, n=4),
        _record("nothing judged", {}, n=5),
    ]
    kept, removed = clean_records(records, standing)
    assert [(r["id"], r["labels"]) for r in kept] == [("decision-3", {"toxicity": 0.0})]
    assert removed == {
        "empty_text": 1,
        "no_labels": 1,
        "in_test_or_validation_or_bias_set": 1,
        "older_duplicate": 1,
    }


def test_the_split_depends_on_the_text_alone() -> None:
    texts = [f"comment number {i} about the bridge" for i in range(2000)]
    share = sum(is_heldout(t) for t in texts) / len(texts)
    assert abs(share - HELDOUT_PERCENT / 100) < 0.03
    records = [_record(t, {"toxicity": float(i % 2)}, n=i) for i, t in enumerate(texts[:200])]
    full = split_feedback(records, set())
    part = split_feedback(records[::3], set())
    held = set(full.heldout["text"])
    part_texts = set(part.heldout["text"]) | set(part.train["text"])
    assert set(part.heldout["text"]) == held & part_texts  # the same side, whatever else is exported
    assert set(part.train["text"]).isdisjoint(held) and set(full.train["text"]).isdisjoint(held)
    assert len(full.train) + len(full.heldout) == 200


def test_rows_follow_the_corpora_schema() -> None:
    records = [
        _record("a rude flurb", dict.fromkeys(LABEL_NAMES, 0.0) | {"toxicity": 1.0}, n=1),
        _record("cheap watches", {"spam": 0.7}, n=2),
    ]
    feedback = split_feedback(records, set(), weight=2.0)
    rows = pd.concat(
        [feedback.train, feedback.heldout.assign(**{f"weight_{name}": 0.0 for name in LABEL_NAMES})]
    )
    rows = rows.set_index("text")
    assert list(feedback.heldout.columns) == list(COLUMNS)
    assert set(rows["corpus"]) == {"feedback"}
    assert rows.loc["a rude flurb", "toxicity"] == 1.0 and rows.loc["a rude flurb", "insult"] == 0.0
    assert math.isnan(rows.loc["a rude flurb", "soft_toxicity"])
    assert rows.loc["cheap watches", "spam"] == 1.0 and rows.loc["cheap watches", "soft_spam"] == 0.7
    assert math.isnan(rows.loc["cheap watches", "toxicity"])
    train = feedback.train.set_index("text")
    for text in train.index:
        known = train.loc[text, list(LABEL_NAMES)].notna().to_numpy()
        weights = train.loc[text, [f"weight_{label}" for label in LABEL_NAMES]].to_numpy(dtype=float)
        assert np.array_equal(weights, np.where(known, 2.0, 0.0))
    with pytest.raises(InputDataError):
        split_feedback(records, set(), weight=0.0)


def test_standing_texts_cover_test_validation_and_bias_rows() -> None:
    frame = pd.DataFrame(
        {
            "text": ["In the Test split", "in validation", "in training"],
            "split": ["test", "validation", "train"],
        }
    )
    texts = standing_texts(frame=frame)
    assert {"in the test split", "in validation"} <= texts and "in training" not in texts
    assert "i am a proud gay person" in texts or len(texts) > 50_000  # the bias set's sentences


def test_load_and_evaluate(tmp_path: Path, registry: Registry, tiny_model_id: str) -> None:
    texts = [*TOXIC, *CLEAN] * 1
    records = []
    for i in range(120):
        text = f"{texts[i % len(texts)]} number {i}"
        toxic = (i % len(texts)) < len(TOXIC)
        records.append(_record(text, {"toxicity": float(toxic), "insult": float(toxic)}, n=i))
    records.append(_record("In the test split", {"toxicity": 1.0}, n=999))
    path = tmp_path / "feedback.jsonl"
    write_records(records, path)
    frame = pd.DataFrame({"text": ["in the test split"], "split": ["test"]})
    feedback = load_feedback(path, frame=frame)
    assert feedback.removed["in_test_or_validation_or_bias_set"] == 1
    assert len(feedback.train) + len(feedback.heldout) == 120 and len(feedback.heldout) > 10
    assert feedback.heldout_hash == load_feedback(path, frame=frame).heldout_hash

    model = registry.load()
    figures = evaluate_feedback(model, feedback.heldout)
    assert figures["n"] == len(feedback.heldout) and figures["labels"]["spam"] is None
    assert figures["labels"]["toxicity"]["roc_auc"] > 0.9 and figures["agreement"] > 0.8
    section = feedback_section(model, feedback, baseline=model)
    assert section["baseline"]["model_id"] == tiny_model_id and section["data_hash"] == feedback.heldout_hash
    assert json.loads(json.dumps(section))["heldout_rows"] == len(feedback.heldout)
    assert "toxicity" in format_feedback(section) and "| toxicity |" in feedback_markdown(section)
    assert evaluate_feedback(model, feedback.heldout.iloc[:0])["n"] == 0
