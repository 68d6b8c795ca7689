"""`moderation feedback export`: the service's judgments as a corpus the training loader reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from tests.service.conftest import SITE, Api
from training.feedback import read_records


def _decide(api: Api, comment_id: str, **body: object) -> None:
    response = api.client.post(
        f"/v1/comments/{comment_id}/decision", params={"site": SITE}, json=body, headers=api.auth("moderator")
    )
    assert response.status_code == 200, response.text


@pytest.mark.slow  # each export reads every corpus, to leave out their test and validation texts
def test_export_writes_a_clean_corpus(
    api: Api,
    sqlite_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api.submit("a", "you absolute walnut, read the article")
    _decide(api, "a", decision="approve", labels=[])
    api.submit("b", "Great bridge coverage, many thanks")
    _decide(api, "b", decision="reject", labels=["spam"])
    api.submit("c", "respect trans")  # a sentence of the bias set: never exported
    _decide(api, "c", decision="reject", labels=["toxicity"])
    api.submit(
        "d", "great bridge   coverage, MANY thanks"
    )  # the same normalised text as b, decided later: wins
    _decide(api, "d", decision="approve", labels=[])

    out = tmp_path / "export" / "feedback.jsonl"
    assert main(["feedback", "--database-url", sqlite_url, "export", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "exported 2 feedback examples" in err and "1 in test or validation or bias set" in err
    assert "1 older duplicate" in err
    records = {r["text"]: r for r in read_records(out)}
    assert set(records) == {"you absolute walnut, read the article", "great bridge   coverage, MANY thanks"}
    walnut = records["you absolute walnut, read the article"]
    assert walnut["labels"]["toxicity"] == 0.0 and walnut["site"] == SITE and walnut["decision"] == "approve"

    # default location under MODERATION_DATA_DIR, and stdout with -o -
    monkeypatch.setenv("MODERATION_DATA_DIR", str(tmp_path / "data"))
    assert main(["feedback", "--database-url", sqlite_url, "export"]) == 0
    assert len(read_records(tmp_path / "data" / "feedback" / "feedback.jsonl")) == 2
    capsys.readouterr()
    assert main(["feedback", "--database-url", sqlite_url, "export", "-o", "-", "--site", SITE]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(json.loads(line)["source"] == "moderator" for line in lines)


def test_train_refuses_a_missing_feedback_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["--registry", str(tmp_path / "reg"), "train", "--include-feedback", str(tmp_path / "none.jsonl")]
    )
    assert code == 2 and "file not found" in capsys.readouterr().err
