"""MODEL_CARD.md says how the network was made: identity swap, fine-tuning by an earlier run."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from models.artifact import ArtifactInfo
from training.model_card import render_model_card

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "shipped"


def _shipped_ensemble() -> tuple[ArtifactInfo, dict[str, object]]:
    """The shipped artifact, its command line cut to the kind so that the card's prose alone names options."""
    folder = SHIPPED / (SHIPPED / "DEFAULT").read_text().strip()
    info = ArtifactInfo.read(folder)
    info.command = f"moderation train --kind {info.kind}"
    return info, json.loads((folder / "report.json").read_text())


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
    assert "head on the [CLS] token through BERT's pooler" in card  # recorded before --pooling: cls
    assert "Fine-tuned by an earlier run (device: cuda (NVIDIA H200))" in card
    assert "Only the TF-IDF half" not in card  # artifacts before the scope recorded True for "all"


def test_the_card_says_when_only_the_linear_half_saw_the_identity_swap() -> None:
    info, report = _shipped_ensemble()
    for scope, says in (("none", None), ("all", False), ("linear", True)):
        info.training["config"] = {**info.training.get("config", {}), "identity_swap": scope}
        info.training["identity_swap_rows"] = 3410
        card = render_model_card(info, report)
        assert ("--identity-swap" in card) is (says is not None)
        assert ("Only the TF-IDF half trained on the copies" in card) is bool(says)


def test_the_card_names_an_export_that_missed_the_parity_bar() -> None:
    info, report = _shipped_ensemble()
    fitted = info.training["fitted"]
    fitted["parity_validation"] = {
        **fitted["parity_validation"],
        "quantization": "int8-weights",
        "max_abs_diff": 0.011,
    }
    fitted["export_attempts"] = [
        {"quantization": "int8-blockwise", "max_abs_diff": 0.0274},
        {"quantization": "int8-weights", "max_abs_diff": 0.011},
    ]
    card = render_model_card(info, report)
    assert "ONNX (int8-weights) against PyTorch fp32" in card
    assert "Tried first and over the 0.02 bar: int8-blockwise (max 0.0274)." in card
    fitted["export_attempts"] = fitted["export_attempts"][1:]
    assert "Tried first" not in render_model_card(info, report)


def test_the_threshold_table_names_each_labels_calibration() -> None:
    from models.calibration import Calibrator

    info, report = _shipped_ensemble()
    info.calibration["threat"] = Calibrator(method="platt", a=1.1, b=-0.2)
    card = render_model_card(info, report)
    table = card[card.index("## Labels and served thresholds") :].split("\n\n")[1].splitlines()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table}
    assert "| platt | " in rows["threat"]
    assert "| isotonic | " in rows["toxicity"]  # the shipped model calibrates the others by isotonic
    assert "fewer than 30 validation positives" in card


def test_the_card_names_each_tfidf_heads_c_and_nb_weighting() -> None:
    info, report = _shipped_ensemble()
    info.training["fitted"].pop("linear_heads", None)
    assert "TF-IDF heads" not in render_model_card(info, report)  # trained before the choice was recorded
    info.training["fitted"]["linear_heads"] = {
        "toxicity": {"C": 1.0, "nb": True},
        "threat": {"C": 0.5, "nb": False},
    }
    card = render_model_card(info, report)
    assert (
        "TF-IDF heads (C and features chosen on validation): toxicity C=1 NB-weighted, threat C=0.5." in card
    )


def test_the_card_says_when_the_network_is_a_model_soup() -> None:
    info, report = _shipped_ensemble()
    info.training["fitted"]["fine_tuned_elsewhere"] = {
        "config": {"epochs": 1.5, "batch_size": 32, "max_length": 128, "learning_rate": 8e-5},
        "device": "cpu",
        "soup": [{"seed": 13, "best_val_auc": 0.9089}, {"seed": 14, "best_val_auc": 0.9101}],
    }
    info.training["fitted"]["fine_tuned_elsewhere"]["config"]["pooling"] = "mean"
    card = render_model_card(info, report)
    assert "head on the masked mean of the token vectors" in card
    assert "weight average of 2 networks fine-tuned this way with seeds 13, 14" in card
    assert "0.909, 0.910" in card
    assert "Fine-tuned by an earlier run" not in card


def test_the_card_says_when_the_network_was_distilled_from_several_seeds() -> None:
    info, report = _shipped_ensemble()
    info.training["fitted"]["fine_tuned_elsewhere"] = {
        "config": {"epochs": 1.5, "batch_size": 32, "max_length": 128, "learning_rate": 8e-5},
        "device": "cuda",
        "distilled": {
            "teachers": [13, 14, 15],
            "lambda": 0.5,
            "masked_weight": 0.25,
            "job": "training/experiments/gpu_distill.py",
        },
    }
    card = render_model_card(info, report)
    assert "score mean of 3 networks fine-tuned this way (seeds 13, 14, 15)" in card
    assert "mixed 0.5 of the teachers' mean, unannotated labels taught at loss weight 0.25" in card
    assert "device: cuda), and finished by this run with `--fine-tuned`" in card
    assert "Fine-tuned by an earlier run" not in card and "model soup" not in card


def test_the_card_gives_intervals_where_the_report_has_them() -> None:
    info, report = _shipped_ensemble()
    plain = render_model_card(info, {k: v for k, v in report.items() if k != "intervals"})
    assert "Intervals:" not in plain
    report["intervals"] = {
        "method": "percentile bootstrap",
        "resamples": 1000,
        "figures": {
            "olid_macro_f1": {"value": 0.77, "low": 0.741, "high": 0.797},
            "roc_auc/identity_attack/civil_comments": {"value": 0.835, "low": 0.79, "high": 0.88},
            "bias/fpr": {"value": 0.0156, "low": 0.0144, "high": 0.0168},
        },
    }
    card = render_model_card(info, report)
    assert f"- olid_macro_f1: {report['task_metrics']['olid_macro_f1']:.3f} [0.741, 0.797]" in card
    civil = report["per_corpus"]["identity_attack"]["civil_comments"]["roc_auc"]  # type: ignore[index]
    assert f"identity_attack {civil:.3f} [0.790, 0.880]" in card
    fpr = report["bias"]["fpr"]  # type: ignore[index]
    assert f"at the served threshold: {fpr:.3f} [0.014, 0.017] (those" in card
    assert "Intervals: percentile bootstrap, 1000 resamples" in card
