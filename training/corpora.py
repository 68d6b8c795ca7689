"""One loader per labelled corpus, each mapping its files onto the one training table.

A loader returns one row per source item with the columns of `COLUMNS`: a label the corpus does
not judge is NaN (unknown), never 0. `split` holds the corpus's official split where it has one
and is empty otherwise; `training.splits` fills it from the committed split files.
"""

from __future__ import annotations

import csv
import html
import json
import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypedDict

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from models.errors import InputDataError
from models.identity import IDENTITY_TERMS, find_identity, identity_pattern
from models.labels import LABEL_NAMES

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]

DEFAULT_DATA_DIR = Path(__file__).parent / "data"

SPLITS: tuple[str, ...] = ("train", "validation", "test")
CORPORA: tuple[str, ...] = (
    "civil_comments",
    "davidson",
    "olid",
    "constraint",
    "pan2024",
    "prct_youtube",
    "tubespam",
)
BIAS_MADLIBS = "bias_madlibs"
CORPUS_DIRS: dict[str, str] = {
    "civil_comments": "civil_comments_toxic_spans",
    "davidson": "davidson_hate_offensive",
    "olid": "olid",
    "constraint": "constraint_covid_fakenews",
    "pan2024": "pan2024_oppositional_en",
    "prct_youtube": "prct_youtube",
    "tubespam": "tubespam",
    BIAS_MADLIBS: "bias_madlibs",
}

SOFT_COLUMNS: tuple[str, ...] = tuple(f"soft_{label}" for label in LABEL_NAMES)
COLUMNS: tuple[str, ...] = ("id", "corpus", "split", "text", *LABEL_NAMES, *SOFT_COLUMNS, "spans")

# Span types of the toxic-spans annotation tool and the label each one trains ("Other Toxicity"
# only counts towards the overall "toxicity" spans).
CIVIL_SPAN_TYPES: dict[str, str | None] = {
    "Insult": "insult",
    "Threat": "threat",
    "Identity based Attack": "identity_attack",
    "Profane/Obscene": "profanity",
    "Other Toxicity": None,
}
CIVIL_SPAN_LABELS: tuple[str, ...] = ("toxicity", "insult", "threat", "identity_attack", "profanity")

# PAN 2024 narrative-role categories used as conspiracy evidence; "X" marks unclassifiable
# passages (often the whole message) and is left out.
PAN_SPAN_CATEGORIES: frozenset[str] = frozenset(
    {"AGENT", "FACILITATOR", "VICTIM", "CAMPAIGNER", "OBJECTIVE", "NEGATIVE_EFFECT"}
)


class Span(TypedDict):
    """A labelled character range of a row's text (end exclusive)."""

    label: str
    start: int
    end: int


# --------------------------------------------------------------------------- file reading


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300]


def _read_table(
    path: Path,
    required: tuple[str, ...],
    *,
    sep: str = ",",
    quoting: Literal[0, 1, 2, 3] = csv.QUOTE_MINIMAL,
    names: list[str] | None = None,
) -> pd.DataFrame:
    """Read a CSV/TSV file with every column as text; InputDataError when missing or malformed."""
    if not path.is_file():
        raise InputDataError(f"{path}: file not found")
    header: Literal["infer"] | None = None if names is not None else "infer"
    try:
        df: pd.DataFrame = pd.read_csv(
            path,
            sep=sep,
            quoting=quoting,
            dtype=str,
            keep_default_na=False,
            header=header,
            names=names,
            encoding="utf-8",
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise InputDataError(f"{path}: unreadable ({_one_line(exc)})") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputDataError(f"{path}: missing column(s) {', '.join(missing)}")
    if df.empty:
        raise InputDataError(f"{path}: no rows")
    return df


def _to_int(values: pd.Series, path: Path, column: str) -> NDArray[np.int64]:
    try:
        return np.asarray(pd.to_numeric(values.str.strip(), errors="raise"), dtype=np.int64)
    except (ValueError, TypeError) as exc:
        raise InputDataError(f"{path}: non-integer value in column {column} ({_one_line(exc)})") from exc


def _map_values(values: pd.Series, mapping: Mapping[str, float], path: Path, column: str) -> FloatArray:
    """Map raw label strings to floats (NaN allowed as a target); unexpected values are an error."""
    stripped = values.str.strip()
    unexpected = sorted(set(stripped.unique()) - set(mapping))
    if unexpected:
        shown = ", ".join(repr(v) for v in unexpected[:5])
        raise InputDataError(f"{path}: unexpected value(s) in column {column}: {shown}")
    return np.asarray(stripped.map(mapping), dtype=np.float64)


_BR_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG_RE = re.compile(r"</?(?:a|b|i|u|em|strong|span|p|div)\b[^>]*>", re.IGNORECASE)


def _clean_markup(text: str) -> str:
    """Undo the HTML escaping and markup some scrapes carry (only for corpora without spans)."""
    text = _BR_RE.sub("\n", text)
    text = _TAG_RE.sub("", text)
    return html.unescape(text).replace("\ufeff", "")


# --------------------------------------------------------------------------- table assembly


def _frame(
    corpus: str,
    ids: list[str],
    texts: list[str],
    labels: Mapping[str, FloatArray],
    *,
    soft: Mapping[str, FloatArray] | None = None,
    spans: list[list[Span]] | None = None,
    split: list[str | None] | None = None,
    source: Path,
) -> pd.DataFrame:
    """Assemble rows of one corpus in the schema of `COLUMNS`; ids become "<corpus>:<id>"."""
    n = len(ids)
    unknown = set(labels) - set(LABEL_NAMES)
    if unknown:  # a programming error, not a data error
        raise ValueError(f"unknown label column(s): {sorted(unknown)}")
    nan = np.full(n, np.nan)
    data: dict[str, Any] = {
        "id": [f"{corpus}:{i}" for i in ids],
        "corpus": [corpus] * n,
        "split": split if split is not None else [None] * n,
        "text": texts,
    }
    for label in LABEL_NAMES:
        data[label] = labels.get(label, nan).astype(np.float64)
    for label in LABEL_NAMES:
        data[f"soft_{label}"] = (soft or {}).get(label, nan).astype(np.float64)
    data["spans"] = spans if spans is not None else [[] for _ in range(n)]
    df = pd.DataFrame(data, columns=list(COLUMNS))
    df["split"] = df["split"].astype(object)
    return _drop_repeated_ids(df, source)


def _drop_repeated_ids(df: pd.DataFrame, source: Path) -> pd.DataFrame:
    """Drop rows repeated under one id (same text and labels); a reused id with other content is an error."""
    repeated = df["id"].duplicated(keep=False)
    if not repeated.any():
        return df
    cols = ["id", "text", *LABEL_NAMES]
    distinct = df.loc[repeated, cols].astype(str).drop_duplicates()
    if distinct["id"].duplicated().any():
        example = distinct.loc[distinct["id"].duplicated(), "id"].iloc[0]
        raise InputDataError(f"{source}: id {example} is used for different rows")
    dropped = int(df["id"].duplicated().sum())
    logger.info("%s: dropped %d repeated row(s) with an id seen before", source.name, dropped)
    return df.drop_duplicates("id").reset_index(drop=True)


def _merge_runs(keep: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Contiguous True runs of a boolean array as (start, end) pairs, end exclusive."""
    padded = np.concatenate([[False], keep, [False]]).astype(np.int8)
    edges = np.diff(padded)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


# --------------------------------------------------------------------------- civil comments


def _civil_span_type(raw: str, path: Path) -> str | None:
    """Full span type for a (possibly truncated) source type; None when the source left it empty."""
    raw = raw.strip()
    if not raw:
        return None
    matches = [full for full in CIVIL_SPAN_TYPES if full.startswith(raw)]
    if len(matches) != 1:
        raise InputDataError(f"{path}: unknown span type {raw!r}")
    return matches[0]


def _majority_ranges(
    length: int, worker_spans: list[list[tuple[int, int]]], n_workers: int
) -> list[tuple[int, int]]:
    """Character ranges marked by at least half of the comment's workers."""
    if not worker_spans or length == 0:
        return []
    counts = np.zeros(length, dtype=np.int64)
    for intervals in worker_spans:
        marked = np.zeros(length, dtype=bool)
        for start, end in intervals:
            marked[start:end] = True
        counts += marked
    return _merge_runs((counts > 0) & (2 * counts >= n_workers))


def _civil_spans(
    text: str, n_workers: int, rows: list[tuple[int, str | None, int, int]]
) -> tuple[list[Span], dict[str, float]]:
    """Majority spans per label and each type's share of workers, from (annotation, type, start, end) rows."""
    spans: list[Span] = []
    shares: dict[str, float] = {}
    for label in CIVIL_SPAN_LABELS:
        per_worker: dict[int, list[tuple[int, int]]] = {}
        for annotation, span_type, start, end in rows:
            if label == "toxicity" or (span_type is not None and CIVIL_SPAN_TYPES[span_type] == label):
                per_worker.setdefault(annotation, []).append((start, end))
        if label != "toxicity":
            shares[label] = len(per_worker) / n_workers
        for start, end in _majority_ranges(len(text), list(per_worker.values()), n_workers):
            spans.append(Span(label=label, start=start, end=end))
    return spans, shares


def load_civil_comments(data_dir: Path = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """Civil Comments toxic spans: toxicity and span-type labels from the workers' shares, majority spans."""
    folder = data_dir / CORPUS_DIRS["civil_comments"]
    comments_path, annotations_path, spans_path = (
        folder / "comments.csv",
        folder / "annotations.csv",
        folder / "spans.csv",
    )
    comments = _read_table(comments_path, ("comment_id", "comment_text"))
    annotations = _read_table(annotations_path, ("annotation", "comment_id", "worker", "not toxic"))
    span_rows = _read_table(spans_path, ("annotation", "type", "start", "end"))

    if comments["comment_id"].duplicated().any():
        raise InputDataError(f"{comments_path}: repeated comment_id")
    known_annotations = set(annotations["annotation"])
    # One judgement per worker and comment (the source repeats one worker on a quiz comment).
    annotations = annotations.drop_duplicates(["comment_id", "worker"])
    annotations = annotations.assign(
        not_toxic=_map_values(
            annotations["not toxic"], {"True": 1.0, "False": 0.0}, annotations_path, "not toxic"
        )
    )
    orphans = ~annotations["comment_id"].isin(comments["comment_id"])
    if orphans.any():
        raise InputDataError(f"{annotations_path}: {int(orphans.sum())} judgement(s) of unknown comment_id")
    n_workers = annotations.groupby("comment_id").size()
    unjudged = ~comments["comment_id"].isin(n_workers.index)
    if unjudged.any():
        raise InputDataError(f"{annotations_path}: {int(unjudged.sum())} comment(s) without any judgement")
    toxic_share = 1.0 - annotations.groupby("comment_id")["not_toxic"].mean()

    unknown_annotation = ~span_rows["annotation"].isin(known_annotations)
    if unknown_annotation.any():
        raise InputDataError(f"{spans_path}: {int(unknown_annotation.sum())} span(s) of unknown annotation")
    span_rows = span_rows.merge(annotations[["annotation", "comment_id"]], on="annotation", how="inner")
    starts = _to_int(span_rows["start"], spans_path, "start")
    ends = _to_int(span_rows["end"], spans_path, "end")
    if (starts < 0).any() or (ends <= starts).any():
        raise InputDataError(f"{spans_path}: span with negative start or end <= start")
    annotation_ids = _to_int(span_rows["annotation"], spans_path, "annotation")
    types = [_civil_span_type(t, spans_path) for t in span_rows["type"]]
    by_comment: dict[str, list[tuple[int, str | None, int, int]]] = {}
    for comment_id, annotation, span_type, start, end in zip(
        span_rows["comment_id"], annotation_ids, types, starts, ends, strict=True
    ):
        by_comment.setdefault(comment_id, []).append((int(annotation), span_type, int(start), int(end)))

    ids: list[str] = comments["comment_id"].tolist()
    texts: list[str] = comments["comment_text"].tolist()
    soft: dict[str, FloatArray] = {label: np.zeros(len(ids)) for label in CIVIL_SPAN_LABELS}
    all_spans: list[list[Span]] = []
    clipped = dropped = 0
    for i, (comment_id, text) in enumerate(zip(ids, texts, strict=True)):
        n = int(n_workers[comment_id])
        rows = by_comment.get(comment_id, [])
        # A few source offsets run past the end of the comment text: clip them, or drop the
        # span (and its vote for its type) when it starts past the end.
        clipped += sum(1 for r in rows if r[2] < len(text) < r[3])
        dropped += sum(1 for r in rows if r[2] >= len(text))
        rows = [(a, t, s, min(e, len(text))) for a, t, s, e in rows if s < len(text)]
        spans, shares = _civil_spans(text, n, rows)
        all_spans.append(spans)
        for label, share in shares.items():
            soft[label][i] = share
        soft["toxicity"][i] = float(toxic_share[comment_id])
    if clipped or dropped:
        logger.info(
            "%s: %d span(s) clipped to the comment text, %d starting past its end dropped",
            spans_path.name,
            clipped,
            dropped,
        )
    hard = {label: (values >= 0.5).astype(np.float64) for label, values in soft.items()}
    return _frame("civil_comments", ids, texts, hard, soft=soft, spans=all_spans, source=comments_path)


# --------------------------------------------------------------------------- davidson


def load_davidson(data_dir: Path = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """Davidson et al. tweets: toxicity (hate or offensive) and identity_attack (hate vs neither)."""
    path = data_dir / CORPUS_DIRS["davidson"] / "labeled_data.csv"
    df = _read_table(path, ("count", "hate_speech", "offensive_language", "class", "tweet"))
    count = _to_int(df["count"], path, "count")
    if (count <= 0).any():
        raise InputDataError(f"{path}: non-positive annotator count")
    hate = _to_int(df["hate_speech"], path, "hate_speech")
    offensive = _to_int(df["offensive_language"], path, "offensive_language")
    toxicity = _map_values(df["class"], {"0": 1.0, "1": 1.0, "2": 0.0}, path, "class")
    identity_attack = _map_values(df["class"], {"0": 1.0, "1": np.nan, "2": 0.0}, path, "class")
    soft = {"toxicity": (hate + offensive) / count, "identity_attack": hate / count}
    return _frame(
        "davidson",
        df[df.columns[0]].tolist(),  # the unnamed row number is the data set's id
        [_clean_markup(t) for t in df["tweet"]],
        {"toxicity": toxicity, "identity_attack": identity_attack},
        soft={k: v.astype(np.float64) for k, v in soft.items()},
        source=path,
    )


# --------------------------------------------------------------------------- olid


_OLID_A = {"OFF": 1.0, "NOT": 0.0}
_OLID_B = ("TIN", "UNT", "NULL", "")


def _olid_labels(level_a: pd.Series, level_b: pd.Series, path: Path) -> dict[str, FloatArray]:
    toxicity = _map_values(level_a, _OLID_A, path, "level A")
    b = level_b.str.strip()
    unexpected = sorted(set(b.unique()) - set(_OLID_B))
    if unexpected:
        raise InputDataError(f"{path}: unexpected level B value(s): {', '.join(map(repr, unexpected[:5]))}")
    b_values = b.to_numpy()
    not_offensive = toxicity == 0.0
    zero_if_not = np.where(not_offensive, 0.0, np.nan)
    return {
        "toxicity": toxicity,
        # TIN is a targeted insult *or threat*: weak evidence of insult, none of threat.
        "insult": np.where(not_offensive, 0.0, np.where(b_values == "TIN", 1.0, np.nan)),
        "threat": zero_if_not,
        "identity_attack": zero_if_not.copy(),
        "profanity": np.where(not_offensive, 0.0, np.where(b_values == "UNT", 1.0, np.nan)),
    }


def load_olid(data_dir: Path = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """OLID / OffensEval 2019: official training file and the level-A test set with level A/B gold labels."""
    folder = data_dir / CORPUS_DIRS["olid"]
    train_path = folder / "olid-training-v1.0.tsv"
    train = _read_table(train_path, ("id", "tweet", "subtask_a", "subtask_b"), sep="\t")
    train_labels = _olid_labels(train["subtask_a"], train["subtask_b"], train_path)

    test_path, a_path, b_path = (
        folder / "testset-levela.tsv",
        folder / "labels-levela.csv",
        folder / "labels-levelb.csv",
    )
    test = _read_table(test_path, ("id", "tweet"), sep="\t")
    gold_a = _read_table(a_path, ("id", "label"), names=["id", "label"])
    gold_b = _read_table(b_path, ("id", "label"), names=["id", "label"])
    for gold, gold_path in ((gold_a, a_path), (gold_b, b_path)):
        if gold["id"].duplicated().any():
            raise InputDataError(f"{gold_path}: repeated id")
    a = test["id"].map(gold_a.set_index("id")["label"])
    if a.isna().any():
        raise InputDataError(f"{a_path}: no label for {int(a.isna().sum())} test id(s)")
    off_ids = set(gold_a.loc[gold_a["label"].str.strip() == "OFF", "id"])
    if not set(gold_b["id"]) <= off_ids:
        raise InputDataError(f"{b_path}: level B label for a tweet that is not OFF in level A")
    b = test["id"].map(gold_b.set_index("id")["label"]).fillna("NULL")
    test_labels = _olid_labels(a, b, a_path)

    labels = {k: np.concatenate([train_labels[k], test_labels[k]]) for k in train_labels}
    texts = [_clean_markup(t) for t in (*train["tweet"], *test["tweet"])]
    split: list[str | None] = [*["train"] * len(train), *["test"] * len(test)]
    return _frame(
        "olid",
        [*train["id"], *test["id"]],
        texts,
        labels,
        split=split,
        source=train_path,
    )


# --------------------------------------------------------------------------- constraint


CONSTRAINT_FILES: dict[str, str] = {"train": "train.tsv", "validation": "valid.tsv", "test": "test.tsv"}


def load_constraint(data_dir: Path = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """CONSTRAINT 2021 COVID fake news: misinformation (fake 1, real 0) with the official splits."""
    folder = data_dir / CORPUS_DIRS["constraint"]
    ids: list[str] = []
    texts: list[str] = []
    split: list[str | None] = []
    labels: list[FloatArray] = []
    for split_name, filename in CONSTRAINT_FILES.items():
        path = folder / filename
        # The tweets carry unbalanced quote characters: read them verbatim, not as CSV quoting.
        df = _read_table(path, ("id", "tweet", "label"), sep="\t", quoting=csv.QUOTE_NONE)
        labels.append(_map_values(df["label"], {"fake": 1.0, "real": 0.0}, path, "label"))
        # Row ids restart in every file: prefix them with the file's split.
        ids += [f"{Path(filename).stem}-{i}" for i in df["id"]]
        texts += [_clean_markup(t) for t in df["tweet"]]
        split += [split_name] * len(df)
    return _frame(
        "constraint",
        ids,
        texts,
        {"misinformation": np.concatenate(labels)},
        split=split,
        source=folder / CONSTRAINT_FILES["train"],
    )


# --------------------------------------------------------------------------- pan 2024


def _pan_record(record: Any, path: Path) -> tuple[str, str, float, list[Span]]:
    if not isinstance(record, dict) or not {"id", "text", "category"} <= record.keys():
        raise InputDataError(f"{path}: record without id, text and category")
    text = record["text"]
    category = record["category"]
    if not isinstance(text, str) or category not in ("CONSPIRACY", "CRITICAL"):
        raise InputDataError(f"{path}: record {record['id']!r} has bad text or category {category!r}")
    spans: list[Span] = []
    if category == "CONSPIRACY":
        ranges: set[tuple[int, int]] = set()
        for ann in record.get("annotations") or []:
            if not isinstance(ann, dict) or ann.get("category") not in PAN_SPAN_CATEGORIES:
                continue
            start, end = ann.get("start_char"), ann.get("end_char")
            if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= len(text):
                raise InputDataError(f"{path}: record {record['id']!r} has a span outside its text")
            ranges.add((start, end))
        spans = [Span(label="conspiracy", start=s, end=e) for s, e in sorted(ranges)]
    return str(record["id"]), text, 1.0 if category == "CONSPIRACY" else 0.0, spans


def load_pan2024(data_dir: Path = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """PAN 2024 oppositional thinking (English): conspiracy vs critical, narrative spans if conspiracy."""
    path = data_dir / CORPUS_DIRS["pan2024"] / "dataset_en.json"
    if not path.is_file():
        raise InputDataError(f"{path}: file not found")
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputDataError(f"{path}: unreadable ({_one_line(exc)})") from exc
    if not isinstance(records, list) or not records:
        raise InputDataError(f"{path}: expected a non-empty list of records")
    parsed = [_pan_record(r, path) for r in records]
    return _frame(
        "pan2024",
        [p[0] for p in parsed],
        [p[1] for p in parsed],
        {"conspiracy": np.array([p[2] for p in parsed], dtype=np.float64)},
        spans=[p[3] for p in parsed],
        source=path,
    )


def load_pan_roles(data_dir: Path = DEFAULT_DATA_DIR) -> dict[str, list[tuple[str, int, int]]]:
    """Narrative-role spans (role, start, end) of each PAN CONSPIRACY post, by row id (`pan2024:<id>`)."""
    path = data_dir / CORPUS_DIRS["pan2024"] / "dataset_en.json"
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputDataError(f"{path}: unreadable ({_one_line(exc)})") from exc
    roles: dict[str, list[tuple[str, int, int]]] = {}
    for record in records:
        if not isinstance(record, dict) or record.get("category") != "CONSPIRACY":
            continue
        roles[f"pan2024:{record['id']}"] = [
            (str(a["category"]), int(a["start_char"]), int(a["end_char"]))
            for a in record.get("annotations") or []
            if isinstance(a, dict) and a.get("category") in PAN_SPAN_CATEGORIES
        ]
    return roles


# --------------------------------------------------------------------------- youtube corpora


def load_prct_youtube(data_dir: Path = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """PRCT YouTube comments: the population-replacement conspiracy label of each comment."""
    path = data_dir / CORPUS_DIRS["prct_youtube"] / "prct_youtube_train.csv"
    df = _read_table(path, ("CommentID", "CommentText", "label"))
    return _frame(
        "prct_youtube",
        df["CommentID"].tolist(),
        df["CommentText"].tolist(),
        {"conspiracy": _map_values(df["label"], {"1": 1.0, "0": 0.0}, path, "label")},
        source=path,
    )


def load_tubespam(data_dir: Path = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """TubeSpam YouTube comments: spam (1) or ham (0)."""
    path = data_dir / CORPUS_DIRS["tubespam"] / "TubeSpam.csv"
    df = _read_table(path, ("COMMENT_ID", "CONTENT", "CLASS"))
    return _frame(
        "tubespam",
        df["COMMENT_ID"].tolist(),
        [_clean_markup(t) for t in df["CONTENT"]],
        {"spam": _map_values(df["CLASS"], {"1": 1.0, "0": 0.0}, path, "CLASS")},
        source=path,
    )


# --------------------------------------------------------------------------- registry and bias set


LOADERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "civil_comments": load_civil_comments,
    "davidson": load_davidson,
    "olid": load_olid,
    "constraint": load_constraint,
    "pan2024": load_pan2024,
    "prct_youtube": load_prct_youtube,
    "tubespam": load_tubespam,
}


def load_corpus(corpus: str, data_dir: Path = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """Rows of one training corpus by name (see `CORPORA`)."""
    if corpus not in LOADERS:
        raise ValueError(f"unknown corpus {corpus!r}; known corpora: {', '.join(CORPORA)}")
    return LOADERS[corpus](data_dir)


def load_bias_madlibs(data_dir: Path = DEFAULT_DATA_DIR) -> pd.DataFrame:
    """The identity-term bias set (evaluation only): text, label (1 BAD), template, identity (NaN if none)."""
    path = data_dir / CORPUS_DIRS[BIAS_MADLIBS] / "bias_madlibs_77k.csv"
    df = _read_table(path, ("Text", "Label", "Template"))
    label = _map_values(df["Label"], {"BAD": 1.0, "NOT_BAD": 0.0}, path, "Label").astype(np.int64)
    pattern = identity_pattern(IDENTITY_TERMS)
    identity = [find_identity(t, pattern) for t in df["Text"]]
    out = pd.DataFrame(
        {
            "text": df["Text"].to_numpy(),
            "label": label,
            "template": df["Template"].to_numpy(),
            "identity": pd.Series(identity, dtype="str"),
        }
    )
    found = int(out["identity"].notna().sum())
    logger.info("bias_madlibs: identity term found in %d of %d rows", found, len(out))
    return out
