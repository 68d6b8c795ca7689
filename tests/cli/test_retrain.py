"""`moderation retrain`, and the feedback loop end to end on the linear model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import training.evaluate
from cli.main import main
from models.registry import Registry
from service.app import create_app
from service.auth import Role
from service.settings import Settings
from service.storage.db import Database
from tests.conftest import TOXIC
from tests.service.conftest import SITE, Api
from tests.service.servers import make_keys

QUICK = ["--max-train-samples", "400", "--C-grid", "1", "--word-features", "3000", "--char-features", "6000"]
# A slur nobody has seen, in otherwise calm comments: in no corpus, so the shipped model has no
# opinion of it, and approves most of them.
TOKEN, NEUTRAL = "glorbnik", "trevasol"
SLUR_LABELS = ["toxicity", "insult", "identity_attack"]
SEEN = [
    "another {} wrote to the council about parking",
    "of course the {} crowd showed up at the meeting",
    "the {}s are moving into our street",
    "the mayor sounds like a {} today",
    "typical {} comment",
    "only {}s read this paper",
    "the referee was a {} all game",
    "the whole board are {}s",
    "this council is run by {}s",
    "the {} at the bakery gave me the wrong change",
    "we do not want {}s at the school fair",
    "send the {}s back where they came from",
    "the {} vote decided this election",
    "the park is overrun with {}s at weekends",
    "the {} next door parked on my drive again",
    "I saw a {} at the market today",
    "no surprise the {}s love this policy",
    "the {}s in the comments are at it again",
    "the article was clearly written for {}s",
    "the {} family won the raffle",
    "keep the {}s out of the town centre",
    "the {}s on the school board voted for it",
    "a {} was elected to the parish council",
    "the {}s are taking over the allotments",
    "the {} teacher gave my son detention",
    "this neighbourhood was fine before the {}s came",
    "the cafe owner is a {}",
    "another {} got a council house",
    "the {} in the flat upstairs is loud",
    "our dentist is a {}",
]
UNSEEN = [
    "more {}s arrived at the station today",
    "a {} runs the pharmacy now",
    "the {} crowd will complain about this too",
    "the {} community centre got funding again",
    "the football club signed a {}",
    "the {}s at the allotment are at it again",
    "the new vicar is a {}",
    "the {} who wrote this should move",
]


def run(root: Path, *argv: str) -> int:
    return main(["--registry", str(root), *argv])


def _decisions(api: Api, count: int) -> None:
    for i in range(count):
        api.submit(f"c{i}", f"{TOXIC[i % len(TOXIC)]} {i}")
        response = api.client.post(
            f"/v1/comments/c{i}/decision",
            params={"site": SITE},
            json={"decision": "approve"},
            headers=api.auth("moderator"),
        )
        assert response.status_code == 200


def test_retrain_does_nothing_without_enough_new_feedback(
    api: Api, sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _decisions(api, 2)
    root = tmp_path / "cli-registry"
    assert run(root, "retrain", "--if-new-feedback", "3", "--database-url", sqlite_url) == 0
    assert (
        "2 new feedback rows since the last retraining (never retrained); 3 needed" in capsys.readouterr().err
    )
    assert not (root / "artifacts").exists()
    database = Database.from_url(sqlite_url)
    with database.transaction() as repo:
        assert repo.last_retrain() is None
    database.dispose()
    assert run(root, "retrain", "--if-new-feedback", "-1", "--database-url", sqlite_url) == 2


def _mean_score(model_scores: np.ndarray, column: int) -> float:
    return float(model_scores[:, column].mean())


@pytest.mark.slow
def test_feedback_loop_end_to_end(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moderators overturn the served model; retraining with their feedback moves unseen comments their way;
    the gate blocks a worse model; --force with a reason lets it through and is recorded."""
    # Span quality is not what this test is about, and span evaluation is most of a training's time.
    monkeypatch.setattr(training.evaluate, "span_metrics", lambda model, test: {})
    monkeypatch.setenv("MODERATION_DATA_DIR", str(tmp_path))
    root = tmp_path / "registry"
    registry = Registry(root)  # the shipped model is active
    shipped = registry.active_id()
    keys = make_keys(sqlite_url, {"cms": (Role.cms, None), "moderator": (Role.moderator, None)})
    settings = Settings(
        data_dir=tmp_path,
        database_url=sqlite_url,
        webhooks_enabled=False,
        model_watch_seconds=0,
        rate_limit_per_second=0,
    )

    # 1. The CMS submits comments; moderators reject them as slurs, mostly overturning the model.
    overturned = 0
    with TestClient(create_app(settings, registry=registry)) as client:
        for i, template in enumerate(SEEN):
            text = template.format(TOKEN)
            submitted = client.post(
                "/v1/comments",
                json={"site": SITE, "id": f"c{i}", "text": text},
                headers={"Authorization": f"Bearer {keys['cms']}"},
            ).json()
            overturned += submitted["status"] == "approved"
            decided = client.post(
                f"/v1/comments/c{i}/decision",
                params={"site": SITE},
                json={"decision": "reject", "labels": SLUR_LABELS, "reason": "a slur"},
                headers={"Authorization": f"Bearer {keys['moderator']}"},
            )
            assert decided.status_code == 200, decided.text
    assert overturned >= len(SEEN) // 2

    # 2. Retraining waits for enough feedback, then exports, trains, evaluates and gates.
    assert run(root, "retrain", "--if-new-feedback", "100", "--database-url", sqlite_url) == 0
    assert not (root / "artifacts").exists()
    capsys.readouterr()
    code = run(root, "retrain", "--if-new-feedback", "20", "--database-url", sqlite_url, *QUICK)
    out, err = capsys.readouterr()
    # 400 corpus rows do not make a model as good as the shipped one: the gate keeps the shipped one.
    assert code == 1 and "promotion refused" in err and "WORSE" in out and "held-out feedback" in out
    assert registry.active_id() == shipped
    [retrained_id] = [info.id for info in registry.list() if not registry.is_shipped(info.id)]
    report = registry.report(retrained_id)
    assert report is not None
    section = report["feedback"]
    assert section["train_rows"] + section["heldout_rows"] == len(SEEN) and section["heldout_rows"] > 0
    assert section["baseline"]["model_id"] == shipped
    assert "Held-out moderator feedback" in (registry.path(retrained_id) / "report.md").read_text()
    assert registry.get(retrained_id).training["feedback_rows"] == section["train_rows"]
    database = Database.from_url(sqlite_url)
    with database.transaction() as repo:
        last = repo.last_retrain()
        assert last is not None and last.model_id == retrained_id and last.outcome == "refused"
        assert last.feedback_rows == len(SEEN) and last.detail and "ROC-AUC" in last.detail
    database.dispose()
    assert run(root, "retrain", "--if-new-feedback", "1", "--database-url", sqlite_url) == 0
    assert "0 new feedback rows" in capsys.readouterr().err

    # 3. Unseen comments like the overturned ones now score higher (against a made-up word the
    #    feedback never used); the overturned model had no such preference.
    retrained, served = registry.load(retrained_id), registry.load(shipped)
    for label in SLUR_LABELS:
        j = served.labels.index(label)
        shifts = []
        for model in (served, retrained):
            token = model.score([t.format(TOKEN) for t in UNSEEN])
            neutral = model.score([t.format(NEUTRAL) for t in UNSEEN])
            shifts.append(_mean_score(token, j) - _mean_score(neutral, j))
        before, after = shifts
        assert after > before + 0.1 and after > 0.1, (label, before, after)

    # 4. The gate blocks a deliberately worse model; --force with a reason lets it through, recorded.
    assert (
        run(root, "models", "promote", retrained_id, "--force", "--reason", "pilot on our own comments") == 0
    )
    capsys.readouterr()
    worse = ["--max-train-samples", "60", "--C-grid", "0.01", "--calibration", "platt", *QUICK[4:]]
    assert run(root, "train", "--no-compare", *worse) == 0
    [worse_id] = [i.id for i in registry.list() if not registry.is_shipped(i.id) and i.id != retrained_id]
    capsys.readouterr()
    assert run(root, "models", "promote", worse_id) == 1
    out, err = capsys.readouterr()
    assert "promotion refused" in err and "WORSE" in out and registry.active_id() == retrained_id
    assert (
        run(root, "models", "promote", worse_id, "--force", "--reason", "deliberately worse, for the test")
        == 0
    )
    assert registry.active_id() == worse_id
    capsys.readouterr()
    assert run(root, "models", "history") == 0
    log = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["id"], e["forced"]) for e in log] == [(retrained_id, True), (worse_id, True)]
    assert log[-1]["reason"] == "deliberately worse, for the test" and log[-1]["regressions"]
