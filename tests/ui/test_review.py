"""The queue, claims, decisions, bulk decisions and undo through the UI's routes (no browser)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.testclient import TestClient

from service.storage.tables import utcnow
from tests.ui.conftest import JSON, SITE, UiApp

TOXIC = "you stupid idiot"


def _post(client: TestClient, csrf: str, path: str, **data: Any) -> Any:
    response = client.post(path, data=data, headers={"X-CSRF-Token": csrf, **JSON})
    return response


def _history(ui: UiApp, comment_id: str) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = ui.comment(comment_id)["history"]
    return history


def test_the_queue_shows_text_as_text_with_context(ui: UiApp) -> None:
    ui.submit("old", TOXIC, author="reader1")
    assert ui.api(
        "POST", "/v1/comments/old/decision", "admin", params={"site": SITE}, json={"decision": "reject"}
    )
    ui.submit(
        "c1",
        "<script>alert(1)</script> <b>you</b> stupid idiot",
        author="reader1",
        thread="bridge",
        metadata={"title": "Bridge <i>vote</i>", "url": "javascript:alert(1)"},
    )
    client, _ = ui.sign_in("moderator")
    page = client.get("/ui/queue", params={"site": SITE}).text
    assert "<script>alert(1)" not in page and "<b>you</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;you&lt;/b&gt;" in page
    assert "Bridge &lt;i&gt;vote&lt;/i&gt;" in page and "javascript:alert" not in page
    assert "1 rejected of 1 other comment" in page
    assert '<mark title="' in page  # the spans that drove the flags are highlighted
    assert 'class="chip chip-toxicity"' in page and "waiting" in page
    detail = client.get("/ui/comments/news/c1").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail and "<script>alert" not in detail


def test_queue_filters_sort_and_errors(ui: UiApp) -> None:
    ui.submit("c1", TOXIC)
    ui.submit("c2", "what a moron, idiot")
    client, _ = ui.sign_in("moderator")
    page = client.get("/ui/queue", params={"site": SITE, "label": "toxicity", "sort": "oldest"}).text
    assert page.index("Comment c1") < page.index("Comment c2")
    assert "Nothing awaits review" in client.get("/ui/queue", params={"site": "elsewhere"}).text
    bad = client.get("/ui/queue", params={"site": SITE, "label": "sarcasm"})
    assert bad.status_code == 422 and "unknown label" in bad.text
    assert client.get("/ui/queue", params={"site": SITE, "sort": "newest"}).status_code == 422
    assert client.get("/ui/queue", params={"site": SITE, "cursor": "nope"}).status_code == 422
    missing = client.get("/ui/comments/news/nope")
    assert missing.status_code == 404 and "no comment" in missing.text


def test_a_plain_form_decision_then_undo(ui: UiApp) -> None:
    ui.submit("c1", TOXIC)
    flagged = ui.comment("c1")["flagged"]
    client, csrf = ui.sign_in("moderator")
    response = client.post(
        "/ui/comments/news/c1/decision",
        data={
            "decision": "reject",
            "reason": "name-calling",
            "labels": ["insult"],
            "flagged": flagged,
            "csrf_token": csrf,
            "next": "/ui/queue?site=news",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/queue?site=news&done=reject&items=news%2Fc1"
    page = client.get(response.headers["location"]).text
    assert "Rejected 1 comment." in page and 'action="/ui/undo"' in page
    comment = ui.comment("c1")
    assert comment["status"] == "rejected" and comment["history"][-1]["reason"] == "name-calling"
    with ui.database.transaction() as repo:
        assert [row.labels for row in repo.feedback()] == [["insult"]]

    response = client.post("/ui/undo", data={"items": "news/c1", "csrf_token": csrf, "next": "/ui/queue"})
    assert response.status_code == 303
    assert "Returned 1 comment to the queue." in client.get(response.headers["location"]).text
    comment = ui.comment("c1")
    assert comment["status"] == "pending" and comment["decision"] == "review"
    assert (
        comment["history"][-1]["action"] == "undone"
        and comment["claim"]["claimed_by"] == ui.key_ids["moderator"]
    )
    assert [e["action"] for e in comment["history"]] == ["submitted", "decided", "undone"]
    with ui.database.transaction() as repo:
        assert repo.feedback() == []  # the undone decision's labels are not training data
    assert "Comment c1" in client.get("/ui/queue", params={"site": SITE}).text


def test_unchanged_labels_are_not_a_correction(ui: UiApp) -> None:
    ui.submit("c1", TOXIC)
    flagged = ui.comment("c1")["flagged"]
    client, csrf = ui.sign_in("moderator")
    response = _post(
        client, csrf, "/ui/comments/news/c1/decision", decision="approve", labels=flagged, flagged=flagged
    )
    assert response.status_code == 200 and response.json()["succeeded"][0]["status"] == "approved"
    with ui.database.transaction() as repo:
        assert repo.feedback() == []
    response = _post(client, csrf, "/ui/comments/news/c1/decision", decision="reject", labels=["spaam"])
    assert response.status_code == 422 and response.json()["error"] == "unknown_label"


def test_claims_conflict_between_two_moderators(ui: UiApp) -> None:
    ui.submit("c1", TOXIC)
    mo, mo_csrf = ui.sign_in("moderator")
    nina, nina_csrf = ui.sign_in("moderator2")
    mine = _post(mo, mo_csrf, "/ui/comments/news/c1/claim")
    assert (
        mine.status_code == 200
        and mine.json()["mine"]
        and mine.json()["message"].startswith("Claimed by you")
    )
    theirs = _post(nina, nina_csrf, "/ui/comments/news/c1/claim")
    assert theirs.status_code == 409 and not theirs.json()["mine"]
    assert theirs.json()["message"].startswith(f"Held by Mo (key {ui.key_ids['moderator']}) until")
    assert "Held by Mo" in nina.get("/ui/queue", params={"site": SITE}).text
    refused = _post(nina, nina_csrf, "/ui/comments/news/c1/decision", decision="approve")
    assert refused.status_code == 409 and "is claimed by key" in refused.json()["detail"]
    assert _post(mo, mo_csrf, "/ui/comments/news/c1/release").json() == {"released": True}
    assert _post(nina, nina_csrf, "/ui/comments/news/c1/claim").status_code == 200
    # A claim on a comment that left the queue is a plain 409.
    assert _post(nina, nina_csrf, "/ui/comments/news/c1/decision", decision="approve").status_code == 200
    gone = _post(mo, mo_csrf, "/ui/comments/news/c1/claim")
    assert gone.status_code == 409 and "not awaiting review" in gone.json()["detail"]


def test_bulk_decisions_report_conflicts_and_undo_restores_them(ui: UiApp) -> None:
    for i in range(3):
        ui.submit(f"c{i}", TOXIC + "!" * i)
    mo, mo_csrf = ui.sign_in("moderator")
    nina, nina_csrf = ui.sign_in("moderator2")
    _post(mo, mo_csrf, "/ui/comments/news/c2/claim")
    response = _post(
        nina,
        nina_csrf,
        "/ui/decisions",
        decision="reject",
        reason="spam wave",
        items=["news/c0", "news/c1", "news/c2"],
    )
    body = response.json()
    assert [s["ref"] for s in body["succeeded"]] == ["news/c0", "news/c1"]
    assert [f["ref"] for f in body["failed"]] == ["news/c2"] and body["message"].startswith(
        "Rejected 2 comments."
    )
    assert body["undo_seconds"] == 10
    assert [ui.comment(f"c{i}")["status"] for i in range(3)] == ["rejected", "rejected", "pending"]
    # Only the moderator who decided may undo.
    assert (
        _post(mo, mo_csrf, "/ui/undo", items=["news/c0"])
        .json()["failed"][0]["detail"]
        .endswith("is not your decision")
    )
    restored = _post(nina, nina_csrf, "/ui/undo", items=["news/c0", "news/c1"]).json()
    assert [r["ref"] for r in restored["succeeded"]] == ["news/c0", "news/c1"] and not restored["failed"]
    assert [ui.comment(f"c{i}")["status"] for i in range(2)] == ["pending", "pending"]
    again = _post(nina, nina_csrf, "/ui/undo", items=["news/c0"]).json()
    assert again["failed"] and not again["succeeded"]
    empty = nina.post("/ui/decisions", data={"decision": "reject", "csrf_token": nina_csrf})
    assert empty.status_code == 422 and "select at least one comment" in empty.text
    bad = _post(nina, nina_csrf, "/ui/decisions", decision="reject", items=["no-slash"])
    assert bad.status_code == 422


def test_undo_only_within_the_window(ui: UiApp) -> None:
    ui.submit("c1", TOXIC)
    client, csrf = ui.sign_in("moderator")
    assert _post(client, csrf, "/ui/comments/news/c1/decision", decision="approve").status_code == 200
    ui.state.clock = lambda: utcnow() + timedelta(seconds=11)
    late = _post(client, csrf, "/ui/undo", items=["news/c1"]).json()
    assert "can no longer be undone" in late["failed"][0]["detail"]
    assert ui.comment("c1")["status"] == "approved"


def test_undo_cancels_the_held_webhook_delivery(ui: UiApp) -> None:
    with ui.database.transaction() as repo:
        repo.put_webhook(SITE, "http://127.0.0.1:9/hook", "s" * 24, utcnow())
    ui.submit("c1", TOXIC)
    ui.submit("c2", TOXIC + "!")
    client, csrf = ui.sign_in("moderator")
    for comment_id in ("c1", "c2"):
        _post(client, csrf, f"/ui/comments/news/{comment_id}/decision", decision="reject")
    with ui.database.transaction() as repo:
        held = {
            row.comment_id: row for row in repo.deliveries(SITE, 10) if row.next_attempt_at > row.created_at
        }
        assert len(held) == 2
        for row in held.values():
            assert row.next_attempt_at - row.created_at == timedelta(seconds=10)
    assert _post(client, csrf, "/ui/undo", items=["news/c1"]).json()["succeeded"]
    with ui.database.transaction() as repo:
        rows = {row.id: row for row in repo.deliveries(SITE, 10)}
        cancelled = [row for row in rows.values() if row.state == "failed"]
        assert len(cancelled) == 1 and cancelled[0].last_error == (
            f"cancelled: the decision was undone by key:{ui.key_ids['moderator']}"
        )
        # A delivery already attempted cannot be called back: undo is refused.
        other = next(
            row for row in rows.values() if row.state == "pending" and row.next_attempt_at > row.created_at
        )
        other.attempts = 1
    refused = _post(client, csrf, "/ui/undo", items=["news/c2"]).json()
    assert "already being reported" in refused["failed"][0]["detail"]
    page = client.get("/ui/comments/news/c1").text
    assert "cancelled" in page and "Webhook deliveries" in page and "scheduled for" not in page
    # Decisions through the API are not held back.
    ui.submit("c3", TOXIC + "!!")
    ui.api(
        "POST", "/v1/comments/c3/decision", "moderator2", params={"site": SITE}, json={"decision": "approve"}
    )
    with ui.database.transaction() as repo:
        newest = repo.deliveries(SITE, 1)[0]
        assert newest.next_attempt_at == newest.created_at


def test_the_comment_page_shows_history_and_decides_with_override(ui: UiApp) -> None:
    ui.submit("c1", TOXIC, author="reader9")
    mo, mo_csrf = ui.sign_in("moderator")
    page = mo.get("/ui/comments/news/c1").text
    assert "data-claim-on-open" in page and "Awaiting review" in page and "has no webhook" in page
    mo.post(
        "/ui/comments/news/c1/decision",
        data={"decision": "reject", "csrf_token": mo_csrf, "next": "/ui/comments/news/c1"},
    )
    nina, nina_csrf = ui.sign_in("moderator2")
    page = nina.get("/ui/comments/news/c1").text
    assert "Decided <strong>reject</strong> by Mo" in page and 'name="override" value="true"' in page
    assert "data-claim-on-open" not in page
    response = nina.post(
        "/ui/comments/news/c1/decision",
        data={
            "decision": "approve",
            "override": "true",
            "reason": "satire",
            "csrf_token": nina_csrf,
            "next": "/ui/comments/news/c1",
        },
    )
    assert response.status_code == 303 and response.headers["location"].startswith(
        "/ui/comments/news/c1?done=approve"
    )
    page = nina.get("/ui/comments/news/c1").text
    for text in ("CMS (key", "submitted", "decided", "overridden (override)", "Nina (key", "satire"):
        assert text in page, text
    # An override is not undoable (undo only takes back a first decision).
    refused = _post(nina, nina_csrf, "/ui/undo", items=["news/c1"]).json()
    assert refused["failed"] and ui.comment("c1")["status"] == "approved"


def test_the_dashboard_draws_the_figures(ui: UiApp) -> None:
    for i in range(3):
        ui.submit(f"c{i}", TOXIC + "!" * i)
    ui.submit("clean", "thanks for the article")
    client, csrf = ui.sign_in("moderator")
    _post(client, csrf, "/ui/comments/news/c0/decision", decision="reject")
    _post(client, csrf, "/ui/comments/news/c1/decision", decision="approve")
    page = client.get("/ui/dashboard")
    assert page.status_code == 200
    text = page.text
    assert text.count("<svg") >= 4 and 'role="img"' in text  # the tiny model has no metrics to chart
    assert "1 awaits review" in text or "1 comments await review" in text
    assert "Of 4 comments submitted" in text
    assert "50% of 2" in text  # toxicity: one flag confirmed, one overturned
    assert ui.state.model is not None and ui.state.model.id in text


def test_the_dashboard_of_a_site_scoped_moderator(ui: UiApp) -> None:
    ui.submit("c1", TOXIC, site="sport")
    client, _ = ui.sign_in("moderator_news")
    text = client.get("/ui/dashboard").text
    assert "Dashboard · news" in text and "Of 0 comments submitted" in text and ">sport<" not in text
