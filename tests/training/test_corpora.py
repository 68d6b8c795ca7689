"""Loaders of the corpora, on hand-made mini versions of each corpus's files."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.errors import InputDataError
from models.labels import LABEL_NAMES
from training.corpora import (
    COLUMNS,
    CORPORA,
    load_bias_madlibs,
    load_civil_comments,
    load_constraint,
    load_corpus,
    load_davidson,
    load_olid,
    load_pan2024,
    load_prct_youtube,
    load_tubespam,
)

FIXTURES = Path(__file__).parent / "fixtures"

# The labels each corpus judges; every other label must stay unknown (NaN).
JUDGED: dict[str, set[str]] = {
    "civil_comments": {"toxicity", "insult", "threat", "identity_attack", "profanity"},
    "davidson": {"toxicity", "identity_attack"},
    "olid": {"toxicity", "insult", "threat", "identity_attack", "profanity"},
    "constraint": {"misinformation"},
    "pan2024": {"conspiracy"},
    "prct_youtube": {"conspiracy"},
    "tubespam": {"spam"},
}
SOFT: dict[str, set[str]] = {
    "civil_comments": {"toxicity", "insult", "threat", "identity_attack", "profanity"},
    "davidson": {"toxicity", "identity_attack"},
}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A writable copy of the fixture corpora."""
    target = tmp_path / "data"
    shutil.copytree(FIXTURES, target)
    return target


def _row(df: pd.DataFrame, row_id: str) -> pd.Series:
    rows = df[df["id"] == row_id]
    assert len(rows) == 1, row_id
    return rows.iloc[0]


def _span_texts(row: pd.Series, label: str) -> list[str]:
    return [row["text"][s["start"] : s["end"]] for s in row["spans"] if s["label"] == label]


# --------------------------------------------------------------------------- schema


@pytest.mark.parametrize("corpus", CORPORA)
def test_schema_ids_and_unknown_labels(corpus: str) -> None:
    df = load_corpus(corpus, FIXTURES)
    assert list(df.columns) == list(COLUMNS)
    assert df["id"].is_unique
    assert df["id"].str.startswith(f"{corpus}:").all()
    assert (df["corpus"] == corpus).all()
    for label in LABEL_NAMES:
        values = df[label]
        if label in JUDGED[corpus]:
            assert values.notna().any(), label
            assert set(values.dropna().unique()) <= {0.0, 1.0}
        else:
            assert values.isna().all(), f"{corpus}: {label} should be unknown"
        soft = df[f"soft_{label}"]
        if label in SOFT.get(corpus, set()):
            assert soft.between(0.0, 1.0).all()
        else:
            assert soft.isna().all(), f"{corpus}: soft_{label} should be unknown"
    assert all(isinstance(spans, list) for spans in df["spans"])


def test_load_corpus_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown corpus"):
        load_corpus("bias_madlibs", FIXTURES)


# --------------------------------------------------------------------------- civil comments


@pytest.mark.parametrize(
    ("comment", "labels", "soft"),
    [
        # 2 of 3 workers did not tick "not toxic"; 2 of 3 marked an Insult (one as truncated "Insu").
        ("101", {"toxicity": 1, "insult": 1, "threat": 0}, {"toxicity": 2 / 3, "insult": 2 / 3}),
        ("102", {"toxicity": 1, "insult": 1, "threat": 1}, {"toxicity": 1.0, "threat": 2 / 3}),
        # A worker judging twice counts once: 3 workers, all "not toxic".
        ("103", {"toxicity": 0, "insult": 0}, {"toxicity": 0.0}),
        # 4 workers: 2 marking Profane/Obscene is half, so positive; 1 of 4 Insult is not.
        ("104", {"toxicity": 1, "profanity": 1, "insult": 0}, {"profanity": 0.5, "insult": 0.25}),
        # "Identity based " (truncated, trailing space) is Identity based Attack.
        ("105", {"identity_attack": 1, "insult": 0}, {"identity_attack": 2 / 3}),
    ],
)
def test_civil_comments_labels(comment: str, labels: dict[str, int], soft: dict[str, float]) -> None:
    row = _row(load_civil_comments(FIXTURES), f"civil_comments:{comment}")
    for label, value in labels.items():
        assert row[label] == value, label
    for label, share in soft.items():
        assert row[f"soft_{label}"] == pytest.approx(share), label


def test_civil_comments_spans_point_at_majority_text() -> None:
    df = load_civil_comments(FIXTURES)
    r101 = _row(df, "civil_comments:101")
    assert _span_texts(r101, "toxicity") == ["idiot"]  # "liar" was marked by 1 of 3 only
    assert _span_texts(r101, "insult") == ["idiot"]
    r102 = _row(df, "civil_comments:102")
    assert _span_texts(r102, "toxicity") == ["I will find you", "stupid fool"]
    assert _span_texts(r102, "threat") == ["I will find you"]
    assert _span_texts(r102, "insult") == ["stupid fool"]
    r104 = _row(df, "civil_comments:104")
    assert _span_texts(r104, "profanity") == ["damn"]
    assert _span_texts(r104, "toxicity") == ["damn"]
    r105 = _row(df, "civil_comments:105")
    # The untyped span ("Those people", 1 of 3) counts for toxicity only, and is not a majority.
    assert _span_texts(r105, "identity_attack") == ["vermin"]
    assert _span_texts(r105, "toxicity") == ["vermin"]
    assert _row(df, "civil_comments:103")["spans"] == []


def test_civil_comments_clips_spans_past_the_text() -> None:
    row = _row(load_civil_comments(FIXTURES), "civil_comments:106")
    assert row["spans"] == [{"label": "toxicity", "start": 5, "end": 9}]
    assert _span_texts(row, "toxicity") == ["try."]


def test_civil_comments_unknown_span_type_is_an_error(data_dir: Path) -> None:
    path = data_dir / "civil_comments_toxic_spans" / "spans.csv"
    path.write_text(path.read_text() + "1,Sarcasm,0,3\n")
    with pytest.raises(InputDataError, match=r"spans\.csv: unknown span type 'Sarcasm'"):
        load_civil_comments(data_dir)


def test_civil_comments_span_of_unknown_annotation_is_an_error(data_dir: Path) -> None:
    path = data_dir / "civil_comments_toxic_spans" / "spans.csv"
    path.write_text(path.read_text() + "999,Insult,0,3\n")
    with pytest.raises(InputDataError, match="unknown annotation"):
        load_civil_comments(data_dir)


# --------------------------------------------------------------------------- davidson


def test_davidson_labels_and_soft_targets() -> None:
    df = load_davidson(FIXTURES)
    hate, offensive, neither = (_row(df, f"davidson:{i}") for i in ("0", "1", "2"))
    assert (hate["toxicity"], hate["identity_attack"]) == (1.0, 1.0)
    assert offensive["toxicity"] == 1.0
    assert math.isnan(offensive["identity_attack"])  # offensive, not hate: unknown, not 0
    assert (neither["toxicity"], neither["identity_attack"]) == (0.0, 0.0)
    mixed = _row(df, "davidson:3")  # count 6: 1 hate, 1 offensive, 4 neither
    assert mixed["soft_toxicity"] == pytest.approx(2 / 6)
    assert mixed["soft_identity_attack"] == pytest.approx(1 / 6)
    assert hate["text"] == "those muslims should all be thrown out & gone"  # HTML entities undone
    assert mixed["text"] == "\u201cgood morning everyone\u201d"


def test_davidson_bad_count_is_an_error(data_dir: Path) -> None:
    path = data_dir / "davidson_hate_offensive" / "labeled_data.csv"
    path.write_text(path.read_text() + "7,three,0,0,3,2,hello\n")
    with pytest.raises(InputDataError, match=r"labeled_data\.csv: non-integer value in column count"):
        load_davidson(data_dir)


def test_davidson_unknown_class_is_an_error(data_dir: Path) -> None:
    path = data_dir / "davidson_hate_offensive" / "labeled_data.csv"
    path.write_text(path.read_text() + "7,3,0,0,3,5,hello\n")
    with pytest.raises(InputDataError, match=r"unexpected value\(s\) in column class: '5'"):
        load_davidson(data_dir)


# --------------------------------------------------------------------------- olid


def test_olid_label_mapping() -> None:
    df = load_olid(FIXTURES)
    tin, unt, not_offensive = (_row(df, f"olid:{i}") for i in ("2001", "2002", "2003"))
    assert (tin["toxicity"], tin["insult"]) == (1.0, 1.0)
    for label in ("threat", "identity_attack", "profanity"):
        assert math.isnan(tin[label]), label
    assert (unt["toxicity"], unt["profanity"]) == (1.0, 1.0)
    for label in ("insult", "threat", "identity_attack"):
        assert math.isnan(unt[label]), label
    for label in ("toxicity", "insult", "threat", "identity_attack", "profanity"):
        assert not_offensive[label] == 0.0, label


def test_olid_official_test_set_and_quotes() -> None:
    df = load_olid(FIXTURES)
    assert df.loc[df["id"].str.startswith("olid:3"), "split"].eq("test").all()
    assert df.loc[df["id"].str.startswith("olid:2"), "split"].eq("train").all()
    clown, weather, damn = (_row(df, f"olid:{i}") for i in ("3001", "3002", "3003"))
    assert (clown["toxicity"], clown["insult"]) == (1.0, 1.0)
    assert (damn["toxicity"], damn["profanity"]) == (1.0, 1.0)
    assert math.isnan(damn["insult"])
    assert (weather["toxicity"], weather["profanity"]) == (0.0, 0.0)
    assert _row(df, "olid:2004")["text"] == '@USER He said "no" and left.'


def test_olid_test_tweet_without_gold_label_is_an_error(data_dir: Path) -> None:
    path = data_dir / "olid" / "labels-levela.csv"
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(InputDataError, match=r"labels-levela\.csv: no label for 1 test id"):
        load_olid(data_dir)


def test_olid_level_b_for_inoffensive_tweet_is_an_error(data_dir: Path) -> None:
    path = data_dir / "olid" / "labels-levelb.csv"
    path.write_text(path.read_text() + "3002,TIN\n")
    with pytest.raises(InputDataError, match=r"labels-levelb\.csv"):
        load_olid(data_dir)


# --------------------------------------------------------------------------- constraint


def test_constraint_official_splits_and_labels() -> None:
    df = load_constraint(FIXTURES)
    assert df["split"].value_counts().to_dict() == {"train": 4, "validation": 2, "test": 2}
    assert _row(df, "constraint:train-2")["misinformation"] == 1.0
    assert _row(df, "constraint:valid-2")["misinformation"] == 0.0
    assert _row(df, "constraint:test-1")["split"] == "test"
    # Unbalanced quotes are text, not CSV quoting.
    assert _row(df, "constraint:train-3")["text"] == 'President says "it will disappear'
    assert _row(df, "constraint:test-2")["text"] == "Vaccination centres open on Monday & Tuesday"


def test_constraint_unknown_label_is_an_error(data_dir: Path) -> None:
    path = data_dir / "constraint_covid_fakenews" / "valid.tsv"
    path.write_text(path.read_text() + "3\tMasks work\tmaybe\n")
    with pytest.raises(InputDataError, match=r"valid\.tsv: unexpected value\(s\) in column label: 'maybe'"):
        load_constraint(data_dir)


def test_constraint_missing_column_is_an_error(data_dir: Path) -> None:
    path = data_dir / "constraint_covid_fakenews" / "test.tsv"
    path.write_text("id\ttweet\n1\thello\n")
    with pytest.raises(InputDataError, match=r"test\.tsv: missing column\(s\) label"):
        load_constraint(data_dir)


# --------------------------------------------------------------------------- pan 2024


def test_pan2024_labels_and_spans() -> None:
    df = load_pan2024(FIXTURES)
    conspiracy, critical = _row(df, "pan2024:p1"), _row(df, "pan2024:p2")
    assert (conspiracy["conspiracy"], critical["conspiracy"]) == (1.0, 0.0)
    # Narrative roles of conspiracy texts only; the whole-text "X" span and repeats are left out.
    assert _span_texts(conspiracy, "conspiracy") == ["They", "to control us", "Bill Gates"]
    assert critical["spans"] == []
    assert _row(df, "pan2024:p3")["spans"] == []


def test_pan2024_span_outside_text_is_an_error(data_dir: Path) -> None:
    path = data_dir / "pan2024_oppositional_en" / "dataset_en.json"
    records = json.loads(path.read_text())
    records[0]["annotations"][0]["end_char"] = 10_000
    path.write_text(json.dumps(records))
    with pytest.raises(InputDataError, match=r"dataset_en\.json: record 'p1' has a span outside its text"):
        load_pan2024(data_dir)


def test_pan2024_invalid_json_is_an_error(data_dir: Path) -> None:
    (data_dir / "pan2024_oppositional_en" / "dataset_en.json").write_text("[{")
    with pytest.raises(InputDataError, match=r"dataset_en\.json: unreadable"):
        load_pan2024(data_dir)


def test_pan2024_unknown_category_is_an_error(data_dir: Path) -> None:
    path = data_dir / "pan2024_oppositional_en" / "dataset_en.json"
    records = json.loads(path.read_text())
    records[1]["category"] = "NEUTRAL"
    path.write_text(json.dumps(records))
    with pytest.raises(InputDataError, match="bad text or category 'NEUTRAL'"):
        load_pan2024(data_dir)


# --------------------------------------------------------------------------- youtube corpora


def test_prct_youtube_labels() -> None:
    df = load_prct_youtube(FIXTURES)
    assert df["conspiracy"].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert (
        _row(df, "prct_youtube:COMMENT_a3")["text"] == "The elites planned this, it's the great replacement."
    )


def test_tubespam_labels_repeated_id_and_markup() -> None:
    df = load_tubespam(FIXTURES)
    assert len(df) == 7  # ts3 appears twice in the file with identical content
    assert _row(df, "tubespam:ts1")["spam"] == 1.0
    assert _row(df, "tubespam:ts2")["spam"] == 0.0
    assert _row(df, "tubespam:ts1")["text"] == "Check out my channel!!! http://youtube.com/x"
    assert _row(df, "tubespam:ts2")["text"] == "I love this song so much"  # byte-order mark dropped
    assert _row(df, "tubespam:ts3")["text"] == "Hey guys, I'm a human.\n\nSubscribe please"


def test_tubespam_reused_id_with_other_content_is_an_error(data_dir: Path) -> None:
    path = data_dir / "tubespam" / "TubeSpam.csv"
    path.write_text(path.read_text() + "ts7,Hal,2014-01-04T00:00:00,Something else,1\n")
    with pytest.raises(InputDataError, match=r"TubeSpam\.csv: id tubespam:ts7 is used for different rows"):
        load_tubespam(data_dir)


# --------------------------------------------------------------------------- bias madlibs


def test_bias_madlibs_identity_terms() -> None:
    df = load_bias_madlibs(FIXTURES)
    assert list(df.columns) == ["text", "label", "template", "identity"]
    identity = dict(zip(df["text"], df["identity"], strict=True))
    assert identity["murder american"] == "american"
    assert identity["hug african american"] == "african american"  # multi-word terms win
    assert identity["i am middle eastern"] == "middle eastern"
    assert identity["Christian is a nasty muslim"] == "muslim"  # whole words, the identity slot
    assert pd.isna(identity["You are a filthy photographer"])
    assert df["label"].tolist() == [1, 0, 0, 0, 1, 1, 0, 0]


# --------------------------------------------------------------------------- missing files


@pytest.mark.parametrize(
    ("corpus", "relative"),
    [
        ("civil_comments", "civil_comments_toxic_spans/annotations.csv"),
        ("davidson", "davidson_hate_offensive/labeled_data.csv"),
        ("olid", "olid/labels-levelb.csv"),
        ("constraint", "constraint_covid_fakenews/valid.tsv"),
        ("pan2024", "pan2024_oppositional_en/dataset_en.json"),
        ("prct_youtube", "prct_youtube/prct_youtube_train.csv"),
        ("tubespam", "tubespam/TubeSpam.csv"),
    ],
)
def test_missing_file_is_an_error_naming_it(data_dir: Path, corpus: str, relative: str) -> None:
    (data_dir / relative).unlink()
    with pytest.raises(InputDataError, match=f"{Path(relative).name}: file not found"):
        load_corpus(corpus, data_dir)


def test_missing_bias_madlibs_is_an_error(data_dir: Path) -> None:
    (data_dir / "bias_madlibs" / "bias_madlibs_77k.csv").unlink()
    with pytest.raises(InputDataError, match="file not found"):
        load_bias_madlibs(data_dir)


def test_empty_file_is_an_error(data_dir: Path) -> None:
    (data_dir / "prct_youtube" / "prct_youtube_train.csv").write_text("")
    with pytest.raises(InputDataError, match=r"prct_youtube_train\.csv: unreadable"):
        load_prct_youtube(data_dir)


def test_label_arrays_are_float() -> None:
    df = load_olid(FIXTURES)
    assert all(df[label].dtype == np.float64 for label in LABEL_NAMES)
