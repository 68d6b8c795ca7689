"""Split generation, the committed split files and how loaders' rows get their split."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.errors import InputDataError
from training.corpora import COLUMNS, CORPORA, DEFAULT_DATA_DIR, SPLITS, load_corpus
from training.splits import (
    SEED,
    apply_splits,
    generate_splits,
    main,
    read_split_file,
    split_path,
    write_split_files,
)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A writable copy of the fixture corpora, without split files."""
    target = tmp_path / "data"
    shutil.copytree(FIXTURES, target)
    return target


def _corpus(
    corpus: str, n: int, positive_share: float, label: str, official: list[str | None] | None = None
) -> pd.DataFrame:
    """A synthetic corpus in the loaders' schema: the first `positive_share` of rows positive."""
    rows: dict[str, list[Any]] = {column: [np.nan] * n for column in COLUMNS}
    rows.update(
        id=[f"{corpus}:{i:05d}" for i in range(n)],
        corpus=[corpus] * n,
        split=official if official is not None else [None] * n,
        text=[f"text {i}" for i in range(n)],
        spans=[[] for _ in range(n)],
    )
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df[label] = (np.arange(n) < positive_share * n).astype(np.float64)
    return df


def test_generate_is_deterministic_and_seeded() -> None:
    df = _corpus("civil_comments", 500, 0.3, "toxicity")
    first = generate_splits(df)
    pd.testing.assert_frame_equal(first, generate_splits(df))
    pd.testing.assert_frame_equal(first, generate_splits(df.sample(frac=1.0, random_state=1)))
    other = generate_splits(df, seed=SEED + 1)
    assert not first["split"].equals(other["split"])


def test_generate_ratios_stratified_and_disjoint() -> None:
    df = _corpus("civil_comments", 1000, 0.3, "toxicity")
    table = generate_splits(df)
    assert table["id"].is_unique and set(table["id"]) == set(df["id"])
    assert table["split"].value_counts().to_dict() == {"train": 800, "validation": 100, "test": 100}
    positives = set(df.loc[df["toxicity"] == 1.0, "id"])
    per_split = table.assign(pos=table["id"].isin(positives)).groupby("split")["pos"].sum()
    assert per_split.to_dict() == {"test": 30, "train": 240, "validation": 30}


def test_generate_small_corpus_uses_60_20_20() -> None:
    table = generate_splits(_corpus("prct_youtube", 250, 0.5, "conspiracy"))
    assert table["split"].value_counts().to_dict() == {"train": 150, "validation": 50, "test": 50}


def test_generate_keeps_official_splits() -> None:
    constraint = load_corpus("constraint", FIXTURES)
    table = generate_splits(constraint)
    official = dict(zip(constraint["id"], constraint["split"], strict=True))
    assert all(official[i] == s for i, s in zip(table["id"], table["split"], strict=True))


def test_generate_carves_olid_validation_from_official_train() -> None:
    official: list[str | None] = [*["train"] * 900, *["test"] * 100]
    df = _corpus("olid", 1000, 0.3, "toxicity", official=official)
    table = generate_splits(df).set_index("id")["split"]
    assert table[df["id"][900:]].eq("test").all()
    assert table.value_counts().to_dict() == {"train": 810, "validation": 90, "test": 100}


def test_generate_rejects_partial_official_split() -> None:
    df = _corpus("olid", 10, 0.5, "toxicity", official=[*["train"] * 5, *[None] * 5])
    with pytest.raises(ValueError, match="only some rows"):
        generate_splits(df)


def test_cli_writes_deterministic_files(data_dir: Path) -> None:
    assert main(["--data-dir", str(data_dir)]) == 0
    first = {c: split_path(data_dir, c).read_bytes() for c in CORPORA}
    assert main(["--data-dir", str(data_dir), "--corpus", "olid"]) == 0
    assert split_path(data_dir, "olid").read_bytes() == first["olid"]
    for corpus in CORPORA:
        table = read_split_file(data_dir, corpus)
        assert table["id"].tolist() == sorted(load_corpus(corpus, data_dir)["id"])


def test_cli_reports_missing_corpus_file(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (data_dir / "tubespam" / "TubeSpam.csv").unlink()
    assert main(["--data-dir", str(data_dir), "--corpus", "tubespam"]) == 1
    assert "TubeSpam.csv: file not found" in capsys.readouterr().err


def test_apply_splits_sets_split_from_file(data_dir: Path) -> None:
    write_split_files(data_dir, ["davidson"])
    df = apply_splits(load_corpus("davidson", data_dir), data_dir)
    table = read_split_file(data_dir, "davidson")
    assert dict(zip(df["id"], df["split"], strict=True)) == dict(
        zip(table["id"], table["split"], strict=True)
    )


def test_apply_splits_missing_id_is_an_error(data_dir: Path) -> None:
    write_split_files(data_dir, ["davidson"])
    path = split_path(data_dir, "davidson")
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(InputDataError, match=r"davidson\.csv: 1 id\(s\) of the corpus are missing"):
        apply_splits(load_corpus("davidson", data_dir), data_dir)


def test_apply_splits_contradicting_official_split_is_an_error(data_dir: Path) -> None:
    write_split_files(data_dir, ["constraint"])
    path = split_path(data_dir, "constraint")
    path.write_text(path.read_text().replace("constraint:test-1,test", "constraint:test-1,train"))
    with pytest.raises(InputDataError, match="contradict the corpus's official split"):
        apply_splits(load_corpus("constraint", data_dir), data_dir)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "split file not found"),
        ("id,fold\nprct_youtube:COMMENT_a1,train\n", "expected columns id,split"),
        ("id,split\nprct_youtube:COMMENT_a1,dev\n", "unknown split value"),
        ("id,split\nprct_youtube:COMMENT_a1,train\nprct_youtube:COMMENT_a1,test\n", "appears twice"),
    ],
)
def test_read_split_file_errors(data_dir: Path, content: str | None, message: str) -> None:
    if content is not None:
        path = split_path(data_dir, "prct_youtube")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    with pytest.raises(InputDataError, match=message):
        read_split_file(data_dir, "prct_youtube")


# --------------------------------------------------------------------------- committed files

EXPECTED_SHARES: dict[str, tuple[float, float]] = {  # (validation, test) of all rows
    "civil_comments": (0.1, 0.1),
    "davidson": (0.1, 0.1),
    "pan2024": (0.1, 0.1),
    "tubespam": (0.1, 0.1),
    "prct_youtube": (0.2, 0.2),
    "olid": (0.1 * 13240 / 14100, 860 / 14100),
    "constraint": (2140 / 10700, 2140 / 10700),
}


@pytest.mark.parametrize("corpus", CORPORA)
def test_committed_split_file_is_valid(corpus: str) -> None:
    table = read_split_file(DEFAULT_DATA_DIR, corpus)
    assert table["id"].str.startswith(f"{corpus}:").all()
    counts = table["split"].value_counts(normalize=True)
    assert set(counts.index) == set(SPLITS)
    validation, test = EXPECTED_SHARES[corpus]
    assert counts["validation"] == pytest.approx(validation, abs=0.01)
    assert counts["test"] == pytest.approx(test, abs=0.01)


@pytest.mark.slow
def test_committed_split_files_regenerate_identically() -> None:
    for corpus in CORPORA:
        regenerated = generate_splits(load_corpus(corpus, DEFAULT_DATA_DIR))
        pd.testing.assert_frame_equal(
            regenerated, read_split_file(DEFAULT_DATA_DIR, corpus), check_dtype=False
        )
