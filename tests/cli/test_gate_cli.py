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


def _stored(
    registry: Registry, test_hash: str, auc: float, fpr: float = 0.3, paired_against: str | None = None
) -> str:
    model_id = store_tiny_model(registry)
    report: dict[str, Any] = {
        "model_id": model_id,
        "labels": {label: {"roc_auc": auc, "n": 100} for label in LABEL_NAMES},
        "bias": {"fpr": fpr},
        "test_data_hash": test_hash,
    }
    if paired_against is not None:  # as `moderation train` writes it when the active model kept its scores
        report["comparison"] = {
            "baseline_model_id": paired_against,
            "paired": {"level": 0.95, "figures": {"roc_auc/toxicity": {"low": -0.031, "high": 0.012}}},
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
    worse = _stored(registry, test_data_hash, auc=0.88, fpr=0.31, paired_against=active)
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
    # The candidate's report measured the toxicity change with a paired interval: the gate says so.
    assert "note: toxicity ROC-AUC: paired 95% interval of the change [-0.0310, +0.0120], within noise" in out
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


def test_paired_notes_only_for_the_same_active_model_and_only_for_regressions() -> None:
    from models.gate import GateResult, GateRow
    from training.promotion import paired_notes

    rows = (
        GateRow("test splits", "threat ROC-AUC", 0.93, 0.92, "drop <= 0.005", worse=True),
        GateRow("test splits", "insult ROC-AUC", 0.80, 0.81, "drop <= 0.005"),
        GateRow("bias set", "toxicity FPR on NOT_BAD", 0.015, 0.018, "rise <= 0", worse=True),
    )
    result = GateResult("cand", "act", rows)
    figures = {
        "roc_auc/threat": {"low": -0.033, "high": 0.011},
        "roc_auc/insult": {"low": 0.001, "high": 0.02},
        "bias/fpr": {"low": 0.001, "high": 0.004},
    }
    report = {"comparison": {"baseline_model_id": "act", "paired": {"level": 0.95, "figures": figures}}}
    notes = paired_notes(report, result)
    assert notes == [
        "threat ROC-AUC: paired 95% interval of the change [-0.0330, +0.0110], within noise (candidate's report.md)",
        "toxicity FPR on NOT_BAD: paired 95% interval of the change [+0.0010, +0.0040], worse (candidate's report.md)",
    ]
    assert (
        paired_notes({**report, "comparison": {**report["comparison"], "baseline_model_id": "other"}}, result)
        == []
    )
    assert paired_notes(None, result) == []
    assert paired_notes({"comparison": {"baseline_model_id": "act"}}, result) == []
