"""The committed train/validation/test assignment of each corpus: every model is judged on the same rows.

Official splits are kept (OLID test set, CONSTRAINT train/valid/test); OLID's validation rows are a
seeded share of its official training rows; the other corpora get a seeded split stratified by
their main label. `python -m training.splits` regenerates `training/data/splits/<corpus>.csv`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from models.errors import InputDataError
from training.corpora import CORPORA, DEFAULT_DATA_DIR, SPLITS, load_corpus

logger = logging.getLogger(__name__)

SEED = 20261125
SPLITS_DIRNAME = "splits"
# Higher wins when the same text sits in two splits (dedup keeps it in the higher one).
SPLIT_PRIORITY: dict[str, int] = {"train": 0, "validation": 1, "test": 2}

# (validation, test) shares for corpora without an official split.
SPLIT_FRACTIONS: dict[str, tuple[float, float]] = {
    "civil_comments": (0.1, 0.1),
    "davidson": (0.1, 0.1),
    "pan2024": (0.1, 0.1),
    "tubespam": (0.1, 0.1),
    "prct_youtube": (0.2, 0.2),  # 250 rows: keep enough positives in validation and test
}
# Corpora with an official train/test but no validation split: share of train held out.
VALIDATION_FROM_TRAIN: dict[str, float] = {"olid": 0.1}
# Labels whose combination defines the strata (e.g. davidson: hate / offensive / neither).
STRATIFY_LABELS: dict[str, tuple[str, ...]] = {
    "civil_comments": ("toxicity",),
    "davidson": ("toxicity", "identity_attack"),
    "olid": ("toxicity", "insult", "profanity"),
    "pan2024": ("conspiracy",),
    "prct_youtube": ("conspiracy",),
    "tubespam": ("spam",),
}


def split_path(data_dir: Path, corpus: str) -> Path:
    """Where the committed split file of `corpus` lives."""
    return data_dir / SPLITS_DIRNAME / f"{corpus}.csv"


def _strata(df: pd.DataFrame, corpus: str) -> NDArray[np.str_]:
    labels = STRATIFY_LABELS.get(corpus, ())
    if not labels:
        return np.full(len(df), "", dtype=str)
    parts = [df[label].map(lambda v: "?" if pd.isna(v) else str(int(v))) for label in labels]
    return np.asarray(["|".join(p) for p in zip(*parts, strict=True)], dtype=str)


def _round(x: float) -> int:
    return int(np.floor(x + 0.5))


def _stratified(
    ids: NDArray[np.str_], strata: NDArray[np.str_], validation: float, test: float, rng: np.random.Generator
) -> NDArray[np.object_]:
    """Assign each row train/validation/test, the given shares per stratum."""
    out = np.full(len(ids), "train", dtype=object)
    for key in sorted(set(strata.tolist())):
        members = np.flatnonzero(strata == key)
        members = members[np.argsort(ids[members], kind="stable")]
        shuffled = rng.permutation(members)
        n_test = _round(len(members) * test)
        n_val = _round(len(members) * validation)
        out[shuffled[:n_test]] = "test"
        out[shuffled[n_test : n_test + n_val]] = "validation"
    return out


def generate_splits(df: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """Split assignment (columns id, split; sorted by id) of one corpus's rows as its loader returns them."""
    corpora = df["corpus"].unique().tolist()
    if len(corpora) != 1:
        raise ValueError(f"generate_splits takes the rows of one corpus, got {corpora}")
    corpus = str(corpora[0])
    ids = df["id"].to_numpy(dtype=str)
    if len(set(ids.tolist())) != len(ids):
        raise ValueError(f"{corpus}: ids are not unique")
    # A per-corpus stream, so adding a corpus does not reshuffle the others.
    rng = np.random.default_rng([seed, zlib.crc32(corpus.encode())])
    official = df["split"]
    strata = _strata(df, corpus)
    if official.notna().all():
        split = official.to_numpy(dtype=object).copy()
        share = VALIDATION_FROM_TRAIN.get(corpus)
        if share is not None:
            train = np.flatnonzero(split == "train")
            carved = _stratified(ids[train], strata[train], share, 0.0, rng)
            split[train] = carved
    elif official.isna().all():
        if corpus not in SPLIT_FRACTIONS:
            raise ValueError(f"{corpus}: no official split and no split fractions configured")
        validation, test = SPLIT_FRACTIONS[corpus]
        split = _stratified(ids, strata, validation, test, rng)
    else:
        raise ValueError(f"{corpus}: official split given for only some rows")
    out = pd.DataFrame({"id": ids, "split": split.astype(str)})
    return out.sort_values("id", kind="stable").reset_index(drop=True)


def write_split_files(
    data_dir: Path = DEFAULT_DATA_DIR, corpora: Sequence[str] | None = None, seed: int = SEED
) -> list[Path]:
    """Regenerate the split files of `corpora` (default all) under `data_dir/splits`; returns their paths."""
    paths = []
    for corpus in corpora or CORPORA:
        table = generate_splits(load_corpus(corpus, data_dir), seed)
        path = split_path(data_dir, corpus)
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False, lineterminator="\n")
        counts = table["split"].value_counts()
        logger.info(
            "%s: %s",
            path.name,
            ", ".join(f"{name} {int(counts.get(name, 0))}" for name in SPLITS),
        )
        paths.append(path)
    return paths


def read_split_file(data_dir: Path, corpus: str) -> pd.DataFrame:
    """The committed split table of `corpus` (columns id, split); InputDataError when missing or malformed."""
    path = split_path(data_dir, corpus)
    if not path.is_file():
        raise InputDataError(f"{path}: split file not found (run `python -m training.splits`)")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputDataError(f"{path}: unreadable split file") from exc
    if list(table.columns) != ["id", "split"]:
        raise InputDataError(f"{path}: expected columns id,split, got {','.join(map(str, table.columns))}")
    bad = sorted(set(table["split"]) - set(SPLITS))
    if bad:
        raise InputDataError(f"{path}: unknown split value(s) {', '.join(map(repr, bad[:5]))}")
    if table["id"].duplicated().any():
        raise InputDataError(f"{path}: id {table.loc[table['id'].duplicated(), 'id'].iloc[0]} appears twice")
    return table


def apply_splits(df: pd.DataFrame, data_dir: Path = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """Copy of one corpus's rows with `split` set from its committed split file."""
    corpus = str(df["corpus"].iloc[0])
    path = split_path(data_dir, corpus)
    table = read_split_file(data_dir, corpus)
    assigned = df["id"].map(pd.Series(table["split"].to_numpy(), index=table["id"].to_numpy()))
    missing = assigned.isna()
    if missing.any():
        raise InputDataError(
            f"{path}: {int(missing.sum())} id(s) of the corpus are missing "
            f"(e.g. {df.loc[missing, 'id'].iloc[0]}); regenerate with `python -m training.splits`"
        )
    official = df["split"]
    # Validation rows may be carved out of an official training split, nothing else may move.
    moved = official.notna() & (official != assigned) & ~((official == "train") & (assigned == "validation"))
    if moved.any():
        raise InputDataError(f"{path}: {int(moved.sum())} row(s) contradict the corpus's official split")
    stale = len(table) - int((~missing).sum())
    if stale:
        logger.warning("%s: %d id(s) no longer in the corpus", path.name, stale)
    out = df.copy()
    out["split"] = assigned.astype(str)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate the committed split files; exit code."""
    parser = argparse.ArgumentParser(prog="python -m training.splits", description=main.__doc__)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="corpora folder")
    parser.add_argument("--seed", type=int, default=SEED, help="random seed (default %(default)s)")
    parser.add_argument("--corpus", action="append", choices=CORPORA, help="only this corpus (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        write_split_files(args.data_dir, args.corpus, args.seed)
    except InputDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
