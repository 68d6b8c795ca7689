"""`moderation models promote` through the gate: refusal with a table, --force with a recorded reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from models.labels import LABEL_NAMES
from models.registry import Registry
from tests.conftest import CLEAN, TOXIC, store_tiny_model
from training.evaluate import load_eval_data
from training.feedback import write_records


@pytest.fixture(scope="module")
def test_data_hash() -> str:
    """The hash of the standing test splits as committed (what a current report.json carries)."""
    return load_eval_data().data_hash


def _stored(registry: Registry, test_hash: str, auc: float, fpr: float = 0.3) -> str:
    model_id = store_tiny_model(registry)
    report = {
        "model_id": model_id,
        "labels": {label: {"roc_auc": auc, "n": 100} for label in LABEL_NAMES},
        "bias": {"fpr": fpr},
        "test_data_hash": test_hash,
    }
    (registry.path(model_id) / "report.json").write_text(json.dumps(report))
    return model_id


def run(root: Path, *argv: str) -> int:
    return main(["--registry", str(root), *argv])


def test_force_needs_a_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = Registry(tmp_path / "reg")
    model_id = store_tiny_model(registry)
    assert run(registry.root, "models", "promote", model_id, "--force") == 2
    assert "--force needs --reason" in capsys.readouterr().err
    assert run(registry.root, "models", "promote", model_id, "--force", "--reason", "  ") == 2


@pytest.mark.slow
def test_gate_refuses_a_worse_model_and_force_records_why(
    tmp_path: Path, test_data_hash: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODERATION_DATA_DIR", str(tmp_path))
    registry = Registry(tmp_path / "reg")
    active = _stored(registry, test_data_hash, auc=0.9)
    registry.promote(active)
    worse = _stored(registry, test_data_hash, auc=0.88, fpr=0.31)
    records = [
        {
            "id": f"r{i}",
            "created_at": "2026-11-25T00:00:00+00:00",
            "text": f"{t} {i}",
            "labels": {"toxicity": y},
        }
        for i, (t, y) in enumerate([(t, 1.0) for t in TOXIC] * 20 + [(t, 0.0) for t in CLEAN] * 20)
    ]
    feedback = tmp_path / "feedback.jsonl"
    write_records(records, feedback)

    assert run(registry.root, "models", "promote", worse, "--feedback", str(feedback)) == 1
    out, err = capsys.readouterr()
    assert "promotion refused" in err and "--force --reason" in err
    assert "toxicity ROC-AUC" in out and "WORSE" in out and "bias set" in out and "feedback slice" in out
    assert out.count("WORSE") == len(LABEL_NAMES) + 1  # every label's AUC and the bias FPR
    assert registry.active_id() == active

    assert run(registry.root, "models", "promote", worse, "--force", "--reason", "known trade-off") == 0
    assert registry.active_id() == worse
    capsys.readouterr()
    assert run(registry.root, "models", "history") == 0
    log = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    forced: dict[str, Any] = log[-1]
    assert forced["id"] == worse and forced["forced"] is True and forced["reason"] == "known trade-off"
    assert forced["actor"].startswith("cli") and len(forced["regressions"]) == len(LABEL_NAMES) + 1

    better = _stored(registry, test_data_hash, auc=0.95, fpr=0.1)
    assert run(registry.root, "models", "promote", better) == 0
    assert registry.active_id() == better and registry.promotions()[-1]["forced"] is False
    # an unreported model is evaluated on the standing test splits by the gate: the tiny one is worse
    assert run(registry.root, "models", "promote", store_tiny_model(registry), "--max-auc-drop", "0.5") == 1
