from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cli.main import main
from models.registry import Registry


def run(registry: Registry, *argv: str) -> int:
    return main(["--registry", str(registry.root), *argv])


@pytest.fixture
def comments_csv(tmp_path: Path) -> Path:
    path = tmp_path / "comments.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "body"])
        w.writerow(["1", "you stupid idiot"])
        w.writerow(["2", "thanks for the article, très bien"])
        w.writerow(["3", ""])
    return path


def test_score_csv(registry: Registry, tiny_model_id: str, comments_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "scored.csv"
    assert run(registry, "score", str(comments_csv), "--text-column", "body", "-o", str(out), "--quiet") == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert float(rows[0]["score_toxicity"]) > 0.5 > float(rows[1]["score_toxicity"])
    assert "toxicity" in rows[0]["flagged"].split(";")
    assert rows[1]["flagged"] == "" and rows[2]["score_toxicity"] == ""
    assert rows[1]["body"] == "thanks for the article, très bien"


def test_score_jsonl_with_label_subset(registry: Registry, tiny_model_id: str, tmp_path: Path) -> None:
    src = tmp_path / "c.jsonl"
    src.write_text('{"text": "idiot", "k": 1}\n\n{"text": "thank you", "k": 2}\n', encoding="utf-8")
    out = tmp_path / "o.jsonl"
    args = [
        "score",
        str(src),
        "--text-column",
        "text",
        "-o",
        str(out),
        "--labels",
        "toxicity,spam",
        "--quiet",
    ]
    assert run(registry, *args) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["k"] for r in rows] == [1, 2]
    assert {k for k in rows[0] if k.startswith("score_")} == {"score_toxicity", "score_spam"}


def test_score_streams_many_batches(registry: Registry, tiny_model_id: str, tmp_path: Path) -> None:
    src = tmp_path / "big.csv"
    src.write_text("text\n" + "".join(f"comment number {i}\n" for i in range(1000)), encoding="utf-8")
    out = tmp_path / "big_out.csv"
    assert (
        run(
            registry,
            "score",
            str(src),
            "--text-column",
            "text",
            "-o",
            str(out),
            "--batch-size",
            "64",
            "--quiet",
        )
        == 0
    )
    assert sum(1 for _ in out.open()) == 1001


@pytest.mark.parametrize(
    ("content", "column", "message"),
    [
        (None, "body", "does not exist"),
        (b"", "body", "is empty"),
        (b"id,body\n1,hello\n", "text", "no column 'text'"),
        (b"id,body\n1,\xff\xfe bad bytes\n", "body", "not UTF-8"),
        (b"id,body\n", "body", "no rows"),
        (b"id,body\n1,hello,extra\n", "body", "more fields"),
    ],
)
def test_score_bad_input_fails_cleanly(
    registry: Registry,
    tiny_model_id: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    column: str,
    message: str,
) -> None:
    src = tmp_path / "in.csv"
    if content is not None:
        src.write_bytes(content)
    out = tmp_path / "out.csv"
    assert run(registry, "score", str(src), "--text-column", column, "-o", str(out), "--quiet") == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0 and "Traceback" not in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_score_bad_jsonl(
    registry: Registry, tiny_model_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "ok"}\n{broken\n')
    out = tmp_path / "out.jsonl"
    assert run(registry, "score", str(src), "--text-column", "text", "-o", str(out), "--quiet") == 2
    assert "line 2: invalid JSON" in capsys.readouterr().err
    assert not out.exists()


def test_score_unknown_label(
    registry: Registry,
    tiny_model_id: str,
    comments_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "o.csv"
    code = run(
        registry, "score", str(comments_csv), "--text-column", "body", "-o", str(out), "--labels", "sarcasm"
    )
    assert code == 2 and "unknown label(s): sarcasm" in capsys.readouterr().err
    assert not out.exists()


def test_score_corrupted_artifact(
    registry: Registry,
    tiny_model_id: str,
    comments_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (registry.path(tiny_model_id) / "model.joblib").write_bytes(b"\x00" * 10)
    out = tmp_path / "o.csv"
    assert run(registry, "score", str(comments_csv), "--text-column", "body", "-o", str(out)) == 2
    assert "corrupted" in capsys.readouterr().err
    assert not out.exists()


def test_score_unknown_model(tmp_path: Path, comments_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.csv"
    argv = ["score", str(comments_csv), "--text-column", "body", "-o", str(out), "--model", "linear-missing"]
    assert main(["--registry", str(tmp_path / "none"), *argv]) == 2
    assert "no model 'linear-missing'" in capsys.readouterr().err
    assert not out.exists()


def test_score_inline_texts_prints_the_moderate_answer(
    registry: Registry, tiny_model_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(registry, "score", "--text", "you stupid idiot", "--text", "thanks for the article") == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["model"] == tiny_model_id
    insult, thanks = answer["results"]
    assert insult["scores"]["toxicity"] > 0.5 > thanks["scores"]["toxicity"]
    assert "toxicity" in insult["flagged"] and thanks["flagged"] == [] and thanks["spans"] == []
    spans = [s for s in insult["spans"] if s["label"] == "toxicity"]
    assert spans and all("you stupid idiot"[s["start"] : s["end"]].strip() for s in spans)

    assert run(registry, "score", "--text", "you stupid idiot", "--labels", "spam,toxicity") == 0
    [only] = json.loads(capsys.readouterr().out)["results"]
    assert set(only["scores"]) == {"spam", "toxicity"}
    assert {s["label"] for s in only["spans"]} <= {"spam", "toxicity"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--text", "   "], "--text number 1 is empty"),
        (["--text", "fine", "c.csv"], "not both (also given: an input file)"),
        (["--text", "fine", "-o", "x.csv"], "not both (also given: -o)"),
        (["c.csv", "-o", "x.csv"], "scoring a file needs --text-column"),
        ([], "scoring a file needs an input file, --text-column, -o"),
        (["--text", "fine", "--labels", "sarcasm"], "unknown label(s): sarcasm"),
    ],
)
def test_score_inline_bad_usage_exits_2(
    registry: Registry,
    tiny_model_id: str,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    assert run(registry, "score", *argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
