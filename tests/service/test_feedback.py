"""Moderators' decisions, label corrections and suggested scores become labelled examples."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from models.labels import LABEL_NAMES
from service.feedback import (
    collect_feedback,
    count_new_feedback,
    decision_labels,
    newest_feedback_at,
)
from service.storage.db import Database
from service.storage.tables import CommentEventRow
from tests.conftest import CLEAN, TOXIC
from tests.service.conftest import OTHER_SITE, SITE, Api


def _decide(api: Api, comment_id: str, who: str = "moderator", site: str = SITE, **body: Any) -> None:
    response = api.client.post(
        f"/v1/comments/{comment_id}/decision", params={"site": site}, json=body, headers=api.auth(who)
    )
    assert response.status_code == 200, response.text


def _database(api: Api) -> Database:
    assert api.state.database is not None
    return api.state.database


def test_decision_labels() -> None:
    assert decision_labels("approve", ["insult", "toxicity"], None) == {"insult": 0.0, "toxicity": 0.0}
    assert decision_labels("reject", ["spam"], None) == {"spam": 1.0}
    assert decision_labels("approve", [], None) == {}
    corrected = decision_labels("reject", ["spam"], ["threat"])
    assert corrected == {label: float(label == "threat") for label in LABEL_NAMES}


def test_judgments_become_examples(api_both: Api) -> None:
    api = api_both
    assert api.submit("approved-over-flags", TOXIC[0])["flagged"]  # the tiny model flags every label
    _decide(api, "approved-over-flags", decision="approve")
    api.submit("rejected-with-labels", CLEAN[0])
    _decide(api, "rejected-with-labels", decision="reject", labels=["spam"])
    api.submit("confirmed", TOXIC[1])
    _decide(api, "confirmed", decision="reject")
    api.submit("says-nothing", CLEAN[1])
    _decide(api, "says-nothing", decision="approve")
    api.submit("overridden", TOXIC[2])
    _decide(api, "overridden", decision="reject", labels=["insult"])
    _decide(api, "overridden", who="moderator2", decision="approve", labels=[], override=True)
    api.submit("text-changed", TOXIC[3])
    _decide(api, "text-changed", decision="reject", labels=["toxicity"])
    api.submit("text-changed", CLEAN[2])  # a new text: the decision was about the old one
    api.submit("undone", TOXIC[4])
    _decide(api, "undone", decision="reject", labels=["threat"])
    api.submit("elsewhere", CLEAN[3], site=OTHER_SITE)
    _decide(api, "elsewhere", site=OTHER_SITE, decision="reject", labels=["misinformation"])
    suggested = api.client.post(
        "/v1alpha1/comments:suggestscore",
        params={"key": api.keys["cms_site"]},
        json={
            "comment": {"text": "buy cheap watches"},
            "attributeScores": {"SPAM": {"summaryScore": {"value": 0.7}}},
        },
    )
    assert suggested.status_code == 200

    database = _database(api)
    with database.transaction() as repo:
        comment = repo.get_comment(SITE, "undone")
        assert comment is not None
        repo.add_event(  # what the web UI's undo appends
            CommentEventRow(
                comment_id=comment.id,
                created_at=api.state.clock(),
                actor="key:someone",
                action="undone",
                override=False,
            )
        )

    by_text = {e.text: e for e in collect_feedback(database)}
    assert set(by_text) == {TOXIC[0], CLEAN[0], TOXIC[1], TOXIC[2], CLEAN[3], "buy cheap watches"}
    assert by_text[TOXIC[0]].labels == dict.fromkeys(LABEL_NAMES, 0.0)
    assert by_text[TOXIC[0]].decision == "approve" and by_text[TOXIC[0]].source == "moderator"
    assert by_text[CLEAN[0]].labels == {label: float(label == "spam") for label in LABEL_NAMES}
    assert by_text[TOXIC[1]].labels == dict.fromkeys(LABEL_NAMES, 1.0)
    assert by_text[TOXIC[2]].labels == dict.fromkeys(LABEL_NAMES, 0.0)  # the override, with its labels
    moderator2 = api.keys["moderator2"].split("_")[1]
    assert by_text[TOXIC[2]].moderator == f"key:{moderator2}" and by_text[TOXIC[2]].site == SITE
    suggestion = by_text["buy cheap watches"]
    assert (
        suggestion.source == "suggestion" and suggestion.labels == {"spam": 0.7} and suggestion.site == SITE
    )
    record = suggestion.to_json()
    assert set(record) == {"id", "source", "site", "created_at", "moderator", "decision", "labels", "text"}

    assert {e.text for e in collect_feedback(database, site=OTHER_SITE)} == {CLEAN[3]}


def test_counting_new_feedback(api_both: Api) -> None:
    api = api_both
    database = _database(api)
    assert count_new_feedback(database, None) == 0 and newest_feedback_at(database) is None
    api.submit("a", TOXIC[0])
    _decide(api, "a", decision="approve")
    first = newest_feedback_at(database)
    assert first is not None and count_new_feedback(database, None) == 1
    assert count_new_feedback(database, first) == 0
    api.submit("b", TOXIC[1])
    _decide(api, "b", decision="reject")
    _decide(api, "b", decision="approve", override=True)
    assert count_new_feedback(database, first) == 2
    assert count_new_feedback(database, first - timedelta(seconds=1)) == 3
