from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training import crossval
from training.dataset import build_dataset
from training.splits import write_split_files

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def df(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The dataset built from the test fixtures (cross_validate works on copies of it)."""
    data = tmp_path_factory.mktemp("crossval") / "data"
    shutil.copytree(FIXTURES, data)
    write_split_files(data)
    return build_dataset(data)


def _labelled_prct(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The dataset index of the labelled PRCT rows, and their conspiracy labels."""
    prct = df.index[(df["corpus"] == crossval.CORPUS) & df["conspiracy"].notna()].to_numpy()
    return prct, df.loc[prct, "conspiracy"].to_numpy()


def test_folds_are_stratified_disjoint_and_cover_every_row() -> None:
    y = np.array([1.0] * 10 + [0.0] * 40)
    parts = crossval.folds(y, 5, seed=0)
    assert sorted(np.concatenate(parts).tolist()) == list(range(50))
    assert [int(y[p].sum()) for p in parts] == [2] * 5
    assert [len(p) for p in parts] == [10] * 5
    assert [p.tolist() for p in crossval.folds(y, 5, seed=0)] == [p.tolist() for p in parts]


def test_each_fold_is_scored_by_a_model_that_never_saw_it(
    df: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    prct = df[df["corpus"] == crossval.CORPUS]
    k = 2
    trained_on: list[set[str]] = []
    fit = crossval.fit_linear

    def spy(train, config, validation=None, labels=()):  # type: ignore[no-untyped-def]
        trained_on.append(set(train["text"]))
        return fit(train, config, validation, labels)

    monkeypatch.setattr(crossval, "fit_linear", spy)
    result = crossval.cross_validate(df, k=k, seed=1, C=4.0)
    held_out = [set(prct["text"].iloc[p]) for p in crossval.folds(prct["conspiracy"].to_numpy(), k, 1)]
    assert len(trained_on) == k
    for seen, held in zip(trained_on, held_out, strict=True):
        assert held and not seen & held  # no held-out comment among the fold's training rows
        assert set(prct["text"]) - held <= seen  # the other folds' PRCT comments were trained on
    assert result["rows"] == int(prct["conspiracy"].notna().sum())
    assert result["positives"] == int(prct["conspiracy"].sum())
    assert len(result["roc_auc_per_fold"]) == k
    assert all(0.0 <= auc <= 1.0 for auc in result["roc_auc_per_fold"])
    assert 0.0 <= result["roc_auc_pooled"] <= 1.0


def test_too_few_rows_or_folds_is_an_error(df: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="too few"):
        crossval.cross_validate(df, k=1000)
    assert crossval.main(["--folds", "1"]) == 2


def test_transformer_scores_from_elsewhere_are_checked_and_blended(df: pd.DataFrame) -> None:
    prct, y = _labelled_prct(df)
    splits = crossval.folds(y, 2, 1)
    # a "transformer" that ranks perfectly: the blend must come out at least as good as the linear head
    scores = {
        "index": prct.tolist(),
        "folds": [{"held": h.tolist(), "scores": (0.1 + 0.8 * y[h]).tolist()} for h in splits],
    }
    result = crossval.cross_validate(df, k=2, seed=1, C=4.0, transformer=scores, blend_weight=1.0)
    assert result["transformer"]["roc_auc_pooled"] == 1.0
    assert result["ensemble"]["roc_auc_pooled"] == 1.0 and result["ensemble"]["blend_weight"] == 1.0
    linear_only = crossval.cross_validate(df, k=2, seed=1, C=4.0, transformer=scores, blend_weight=0.0)
    assert linear_only["ensemble"]["roc_auc_pooled"] == linear_only["roc_auc_pooled"]

    shuffled = {**scores, "folds": scores["folds"][::-1]}
    with pytest.raises(ValueError, match="fold 0 holds out other rows"):
        crossval.cross_validate(df, k=2, seed=1, transformer=shuffled)
    with pytest.raises(ValueError, match="not this dataset's"):
        crossval.cross_validate(df, k=2, seed=1, transformer={**scores, "index": scores["index"][1:]})
    with pytest.raises(ValueError, match="1 folds, expected 2"):
        crossval.cross_validate(df, k=2, seed=1, transformer={**scores, "folds": scores["folds"][:1]})


def test_a_subset_of_numbered_folds_is_scored_on_those_folds_only(df: pd.DataFrame) -> None:
    prct, y = _labelled_prct(df)
    splits = crossval.folds(y, 3, 1)
    part = {"fold": 2, "held": splits[2].tolist(), "scores": (0.1 + 0.8 * y[splits[2]]).tolist()}
    scores = {"index": prct.tolist(), "folds": [part]}
    result = crossval.cross_validate(df, k=3, seed=1, C=4.0, transformer=scores, blend_weight=0.0)
    assert result["transformer"]["folds_scored"] == [2]
    assert result["transformer"]["roc_auc_per_fold"] == [1.0]
    assert result["transformer"]["roc_auc_pooled"] is None  # no pooled AUC over a subset
    # at weight 0 the blend is the linear head: its fold-2 figure, not the 3-fold mean
    assert result["ensemble"]["roc_auc_per_fold"] == [result["roc_auc_per_fold"][2]]
    assert result["linear_on_folds_scored"] == result["roc_auc_per_fold"][2]

    with pytest.raises(ValueError, match="holds out other rows"):
        crossval.cross_validate(df, k=3, seed=1, transformer={**scores, "folds": [{**part, "fold": 1}]})
    with pytest.raises(ValueError, match=r"within 0\.\.2"):
        crossval.cross_validate(df, k=3, seed=1, transformer={**scores, "folds": [{**part, "fold": 3}]})
    with pytest.raises(ValueError, match="repeat"):
        crossval.cross_validate(df, k=3, seed=1, transformer={**scores, "folds": [part, part]})


def test_scores_from_several_files_are_merged_fold_by_fold(df: pd.DataFrame) -> None:
    prct, y = _labelled_prct(df)
    splits = crossval.folds(y, 3, 1)

    def one_fold(i: int) -> dict[str, object]:
        part = {"fold": i, "held": splits[i].tolist(), "scores": (0.1 + 0.8 * y[splits[i]]).tolist()}
        return {"index": prct.tolist(), "folds": [part]}

    merged = crossval.merge_transformer_scores([one_fold(2), one_fold(0)])
    assert [f["fold"] for f in merged["folds"]] == [2, 0] and merged["index"] == prct.tolist()
    result = crossval.cross_validate(df, k=3, seed=1, C=4.0, transformer=merged, blend_weight=0.5)
    assert result["transformer"]["folds_scored"] == [0, 2]
    assert result["transformer"]["roc_auc_per_fold"] == [1.0, 1.0]

    with pytest.raises(ValueError, match="file 2 holds other PRCT rows"):
        crossval.merge_transformer_scores([one_fold(0), {**one_fold(1), "index": prct.tolist()[1:]}])
    unnumbered = {"index": prct.tolist(), "folds": [{"held": [], "scores": []}]}
    with pytest.raises(ValueError, match="must number their folds"):
        crossval.merge_transformer_scores([one_fold(0), unnumbered])
    with pytest.raises(ValueError, match="repeat"):  # the same fold from two runs
        crossval.cross_validate(
            df, k=3, seed=1, transformer=crossval.merge_transformer_scores([one_fold(1)] * 2)
        )


def test_the_blend_weight_defaults_to_the_shipped_ensembles(tmp_path: Path) -> None:
    assert crossval.shipped_blend_weight(tmp_path) is None  # no DEFAULT
    (tmp_path / "DEFAULT").write_text("ensemble-x\n", encoding="utf-8")
    (tmp_path / "ensemble-x").mkdir()
    assert crossval.shipped_blend_weight(tmp_path) is None  # not an ensemble
    weights = {"conspiracy": 0.25, "toxicity": 0.5}
    (tmp_path / "ensemble-x" / "ensemble.json").write_text(
        json.dumps({"format": 1, "weights": weights}), encoding="utf-8"
    )
    assert crossval.shipped_blend_weight(tmp_path) == 0.25


def test_unreadable_score_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"cv": {"index": [1], "folds": []}}), encoding="utf-8")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    assert crossval.main(["--transformer-scores", str(good), str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err
    assert crossval.main(["--transformer-scores", str(good), str(bad)]) == 2
    assert "not a JSON object of held-out scores" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"index": [2], "folds": []}), encoding="utf-8")
    assert crossval.main(["--transformer-scores", str(good), str(other)]) == 2
    assert "file 2 holds other PRCT rows" in capsys.readouterr().err
    assert crossval.main(["--transformer-scores", str(good), "--blend-weight", "1.5"]) == 2
