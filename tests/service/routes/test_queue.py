from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from service.auth import Principal, Role
from service.errors import ReviewConflictError
from service.review import claim
from service.storage.tables import utcnow
from tests.service.conftest import SITE, Api

TOXIC = [
    "you stupid idiot",
    "shut up you stupid idiot",
    "what a moron, idiot",
    "you stupid fool",
    "stupid moron",
]


def _queue(api: Api, who: str = "moderator", **params: object) -> dict[str, object]:
    r = api.client.get("/v1/queue", params={"site": SITE, **params}, headers=api.auth(who))
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def _ids(page: dict[str, object]) -> list[str]:
    return [item["id"] for item in page["items"]]  # type: ignore[attr-defined,index]


def test_queue_sorts_and_pages(api_both: Api) -> None:
    api = api_both
    scores = {}
    for i, text in enumerate(TOXIC):
        scores[f"c{i}"] = max(api.submit(f"c{i}", text)["scores"].values())
    api.submit("clean", "thanks for the article")
    by_priority = sorted(scores, key=lambda c: (-scores[c], int(c[1:])))
    assert _ids(_queue(api, limit=50)) == by_priority
    assert _ids(_queue(api, sort="oldest")) == [f"c{i}" for i in range(len(TOXIC))]

    seen: list[str] = []
    cursor = None
    while True:
        page = _queue(api, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += _ids(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == by_priority
    item = _queue(api, limit=1)["items"][0]  # type: ignore[index]
    assert item["text"] in TOXIC and item["claimed_by"] is None and item["priority"] > 0.5


def test_queue_filters_by_label_and_validates(api: Api) -> None:
    api.submit("c1", "you stupid idiot")
    assert _ids(_queue(api, label="toxicity")) == ["c1"]
    for params, error in (
        ({"label": "sarcasm"}, "unknown_label"),
        ({"sort": "newest"}, "validation_error"),
        ({"limit": 0}, "validation_error"),
        ({"limit": 201}, "validation_error"),
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
    ):
        r = api.client.get("/v1/queue", params={"site": SITE, **params}, headers=api.auth("moderator"))
        assert (r.status_code, r.json()["error"]) == (422, error)
    cursor = _queue(api, limit=1, sort="oldest")
    api.submit("c2", "shut up you stupid idiot")
    cursor = _queue(api, limit=1, sort="oldest")["next_cursor"]
    r = api.client.get("/v1/queue", params={"site": SITE, "cursor": cursor}, headers=api.auth("moderator"))
    assert r.status_code == 422 and "another sort" in r.json()["detail"]


def test_unknown_site_has_an_empty_queue(api: Api) -> None:
    assert _queue(api) == {"items": [], "next_cursor": None}


def test_queue_roles_and_site_scope(api: Api) -> None:
    assert api.client.get("/v1/queue", params={"site": SITE}, headers=api.auth("cms")).status_code == 403
    r = api.client.get("/v1/queue", params={"site": SITE}, headers=api.auth("moderator_other"))
    assert r.status_code == 403
    assert _queue(api, who="admin") == {"items": [], "next_cursor": None}


def test_claim_is_exclusive_until_it_expires(api_both: Api) -> None:
    api = api_both
    api.submit("c1", "you stupid idiot")
    url = "/v1/comments/c1/claim"
    r = api.client.post(url, params={"site": SITE}, headers=api.auth("moderator"))
    assert r.status_code == 200 and r.json()["claimed_by"] == api.keys["moderator"][3:15]
    expires = r.json()["expires_at"]
    r = api.client.post(url, params={"site": SITE}, headers=api.auth("moderator2"))
    assert r.status_code == 409 and r.json()["error"] == "review_conflict"
    # The holder renews; the queue shows who holds it.
    assert api.client.post(url, params={"site": SITE}, headers=api.auth("moderator")).status_code == 200
    assert _queue(api)["items"][0]["claimed_by"] == api.keys["moderator"][3:15]  # type: ignore[index]
    # The second moderator cannot decide either.
    decision = {"decision": "reject"}
    r = api.client.post(
        "/v1/comments/c1/decision", params={"site": SITE}, json=decision, headers=api.auth("moderator2")
    )
    assert r.status_code == 409
    # After the lease runs out, the other moderator may take it.
    later = utcnow() + timedelta(seconds=api.state.settings.claim_ttl_seconds + 1)
    api.state.clock = lambda: later
    assert _queue(api)["items"][0]["claimed_by"] is None  # type: ignore[index]
    r = api.client.post(url, params={"site": SITE}, headers=api.auth("moderator2"))
    assert r.status_code == 200 and r.json()["expires_at"] > expires


def test_release(api: Api) -> None:
    api.submit("c1", "you stupid idiot")
    url = "/v1/comments/c1/claim"
    api.client.post(url, params={"site": SITE}, headers=api.auth("moderator"))
    assert api.client.delete(url, params={"site": SITE}, headers=api.auth("moderator2")).status_code == 409
    assert api.client.delete(url, params={"site": SITE}, headers=api.auth("moderator")).status_code == 204
    assert api.client.post(url, params={"site": SITE}, headers=api.auth("moderator2")).status_code == 200
    actions = [
        e["action"]
        for e in api.client.get("/v1/comments/c1", params={"site": SITE}, headers=api.auth("admin")).json()[
            "history"
        ]
    ]
    assert actions == ["submitted", "claimed", "released", "claimed"]


def test_claims_only_comments_awaiting_review(api: Api) -> None:
    api.submit("c1", "thanks for the article")
    r = api.client.post("/v1/comments/c1/claim", params={"site": SITE}, headers=api.auth("moderator"))
    assert r.status_code == 409 and "not awaiting review" in r.json()["detail"]
    r = api.client.post("/v1/comments/nope/claim", params={"site": SITE}, headers=api.auth("moderator"))
    assert r.status_code == 404


def test_decision_audit_feedback_and_override(api_both: Api) -> None:
    api = api_both
    api.submit("c1", "you stupid idiot")
    url = "/v1/comments/c1/decision"
    body = {"decision": "reject", "reason": "insults another reader", "labels": ["insult", "toxicity"]}
    # No claim needed while nobody else holds one.
    r = api.client.post(url, params={"site": SITE}, json=body, headers=api.auth("moderator"))
    assert r.status_code == 200, r.text
    detail = r.json()
    assert (detail["status"], detail["decision"], detail["reviewed_by"]) == (
        "rejected",
        "reject",
        api.keys["moderator"][3:15],
    )
    assert _queue(api)["items"] == []

    r = api.client.post(
        url, params={"site": SITE}, json={"decision": "approve"}, headers=api.auth("moderator2")
    )
    assert r.status_code == 409 and "override" in r.json()["detail"]
    r = api.client.post(
        url,
        params={"site": SITE},
        json={"decision": "approve", "override": True, "reason": "satire"},
        headers=api.auth("moderator2"),
    )
    assert r.status_code == 200 and r.json()["status"] == "approved"
    history = r.json()["history"]
    assert [
        (e["action"], e["old_status"], e["new_status"], e["override"], e["reason"]) for e in history[1:]
    ] == [
        ("decided", "pending", "rejected", False, "insults another reader"),
        ("overridden", "rejected", "approved", True, "satire"),
    ]
    with api.state.database.transaction() as repo:  # type: ignore[union-attr]
        (feedback,) = repo.feedback(SITE)
        assert feedback.labels == ["insult", "toxicity"] and feedback.key_id == api.keys["moderator"][3:15]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"decision": "maybe"}, 422),
        ({"decision": "approve", "labels": ["sarcasm"]}, 422),
        ({"decision": "approve", "extra": True}, 422),
        ({}, 422),
    ],
)
def test_bad_decisions(api: Api, body: dict[str, object], status: int) -> None:
    api.submit("c1", "you stupid idiot")
    r = api.client.post(
        "/v1/comments/c1/decision", params={"site": SITE}, json=body, headers=api.auth("moderator")
    )
    assert r.status_code == status
    assert (
        api.client.get("/v1/comments/c1", params={"site": SITE}, headers=api.auth("cms")).json()["status"]
        == "pending"
    )


def test_decision_on_unknown_comment_and_by_the_cms(api: Api) -> None:
    api.submit("c1", "you stupid idiot")
    body = {"decision": "approve"}
    r = api.client.post(
        "/v1/comments/nope/decision", params={"site": SITE}, json=body, headers=api.auth("moderator")
    )
    assert r.status_code == 404
    r = api.client.post("/v1/comments/c1/decision", params={"site": SITE}, json=body, headers=api.auth("cms"))
    assert r.status_code == 403


def test_concurrent_claims_have_one_winner(api_both: Api) -> None:
    api = api_both
    api.submit("c1", "you stupid idiot")
    database = api.state.database
    assert database is not None
    moderators = [Principal(f"k{i}", Role.moderator) for i in range(6)]

    def attempt(principal: Principal) -> bool:
        try:
            claim(database, SITE, "c1", principal, timedelta(minutes=5), utcnow())
        except ReviewConflictError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(attempt, moderators))
    assert sum(results) == 1
