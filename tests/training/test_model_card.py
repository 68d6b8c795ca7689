"""MODEL_CARD.md says how the network was made: identity swap, fine-tuning on another machine."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from models.artifact import ArtifactInfo
from training.model_card import render_model_card

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "shipped"


def _shipped_ensemble() -> tuple[ArtifactInfo, dict[str, object]]:
    folder = SHIPPED / (SHIPPED / "DEFAULT").read_text().strip()
    return ArtifactInfo.read(folder), json.loads((folder / "report.json").read_text())


def test_the_card_names_the_identity_swap_and_where_the_network_was_fine_tuned() -> None:
    info, report = _shipped_ensemble()
    plain = copy.deepcopy(info)
    plain.training["config"] = {**plain.training.get("config", {}), "identity_swap": False}
    plain.training["fitted"].pop("fine_tuned_elsewhere", None)
    card = render_model_card(plain, report)
    assert "--identity-swap" not in card and "--fine-tuned" not in card

    info.training["config"] = {**info.training.get("config", {}), "identity_swap": True}
    info.training["identity_swap_rows"] = 3410
    info.training["fitted"]["fine_tuned_elsewhere"] = {
        "config": {"epochs": 4.0, "batch_size": 32, "max_length": 128, "learning_rate": 8e-5},
        "device": "cuda (NVIDIA H200)",
    }
    card = render_model_card(info, report)
    assert "(`--identity-swap`): 3,410 rows were added" in card
    assert "Fine-tuning: 4.0 epochs of batches of 32" in card  # the run that made the network
    assert "Fine-tuned on another machine (cuda (NVIDIA H200))" in card
