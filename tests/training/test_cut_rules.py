"""The split-half comparison of cut rules (`python -m training.cut_rules`)."""

from __future__ import annotations

import numpy as np
import pytest

from models.registry import Registry
from training.cut_rules import RULES, main, split_half


def _label(
    n: int, positives: int, separation: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.zeros(n)
    y[rng.choice(n, positives, replace=False)] = 1.0
    raw = np.clip(separation * y + (1 - separation) * rng.random(n), 0.001, 0.999)
    return raw, y, np.ones(n)


def test_both_rules_find_a_separable_label_on_held_out_rows() -> None:
    raw, y, w = _label(600, 60, separation=0.6)
    summary = split_half(raw, y, w, "threat", splits=5)
    assert set(summary) == set(RULES)
    for held in summary.values():
        assert held.f1 > 0.9 and held.recall > 0.9
        assert held.missed_all == 0.0
        assert held.flagged == pytest.approx(0.1, abs=0.03)  # about the positives' share


def test_an_uninformative_score_scores_poorly_held_out() -> None:
    raw, y, w = _label(600, 12, separation=0.0)
    for held in split_half(raw, y, w, "threat", splits=5).values():
        assert held.f1 < 0.3
        assert 0.0 <= held.missed_all <= 1.0


def test_split_half_is_seeded_and_needs_two_of_each_class() -> None:
    raw, y, w = _label(300, 10, separation=0.3)
    assert split_half(raw, y, w, "threat", splits=3, seed=4) == split_half(
        raw, y, w, "threat", splits=3, seed=4
    )
    y[np.flatnonzero(y)[1:]] = 0.0
    with pytest.raises(ValueError, match="two positives"):
        split_half(raw, y, w, "threat", splits=3)


@pytest.mark.parametrize("argv", [["--labels", "threat,nonsense"], ["--splits", "0"]])
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2


def test_main_prints_both_rules_for_each_label_asked(
    registry: Registry,
    tiny_model_id: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """End to end on the real validation split, scored by a tiny linear artifact."""
    monkeypatch.setenv("MODERATION_REGISTRY_DIR", str(registry.root))
    assert main([tiny_model_id, "--labels", "threat,spam", "--splits", "2"]) == 0
    out = capsys.readouterr().out
    assert f"model {tiny_model_id}" in out
    assert out.count("isotonic, tolerant F1 argmax") == 2 and out.count("platt, expected-F1 cut") == 2
    assert "threat (12 pos)" in out
