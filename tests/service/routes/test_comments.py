from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from models.registry import Registry
from models.scoring import Model, Prediction
from service.auth import Principal, Role
from service.comments import submit
from service.schemas import CommentCreate
from service.storage.tables import utcnow
from tests.service.conftest import SITE, Api, ApiFactory

FIELDS = {
    "id",
    "site",
    "status",
    "decision",
    "scores",
    "flagged",
    "spans",
    "reasons",
    "model",
    "created_at",
    "updated_at",
}


def test_submission_is_stored_with_its_decision(api_both: Api, tiny_model_id: str) -> None:
    api = api_both
    toxic = api.submit("c1", "you stupid idiot", thread="t1", author="a1", metadata={"ip_country": "FR"})
    assert set(toxic) == FIELDS
    assert toxic["status"] == "pending" and toxic["decision"] == "review" and toxic["model"] == tiny_model_id
    assert "toxicity" in toxic["flagged"] and toxic["reasons"][0].startswith("flagged:")
    assert {s["label"] for s in toxic["spans"]} <= set(toxic["flagged"])
    clean = api.submit("c2", "thanks for the article")
    assert (clean["status"], clean["decision"], clean["flagged"]) == ("approved", "approve", [])

    detail = api.client.get("/v1/comments/c1", params={"site": SITE}, headers=api.auth("moderator")).json()
    assert (
        detail["text"] == "you stupid idiot"
        and detail["thread"] == "t1"
        and detail["metadata"] == {"ip_country": "FR"}
    )
    assert [(e["action"], e["new_status"], e["actor"]) for e in detail["history"]] == [
        ("submitted", "pending", f"key:{api.keys['cms'][3:15]}")
    ]


def test_resubmission_is_idempotent_and_new_text_is_rescored(api_both: Api) -> None:
    api = api_both
    body = {"site": SITE, "id": "c1", "text": "thanks for the article"}
    first = api.client.post("/v1/comments", json=body, headers=api.auth("cms"))
    again = api.client.post("/v1/comments", json=body, headers=api.auth("cms"))
    assert (first.status_code, again.status_code) == (201, 200) and first.json() == again.json()
    changed = api.client.post(
        "/v1/comments", json={**body, "text": "you stupid idiot"}, headers=api.auth("cms")
    )
    assert changed.status_code == 200 and changed.json()["status"] == "pending"
    history = api.client.get("/v1/comments/c1", params={"site": SITE}, headers=api.auth("cms")).json()[
        "history"
    ]
    assert [(e["action"], e["old_status"], e["new_status"]) for e in history] == [
        ("submitted", None, "approved"),
        ("rescored", "approved", "pending"),
    ]
    assert history[1]["reason"].startswith("text changed")


class BrokenModel(Model):
    """A real model whose scoring fails, as a corrupted backend would."""

    def predict(self, texts: Any, *, spans: bool = True) -> list[Prediction]:
        raise RuntimeError("backend exploded")


@pytest.mark.parametrize("mode", ["pre", "post"])
def test_unscorable_comment_is_stored_pending(api: Api, registry: Registry, mode: str) -> None:
    api.client.put(f"/v1/sites/{SITE}/policy", json={"mode": mode}, headers=api.auth("admin"))
    model = registry.load()
    api.state.model = BrokenModel(model.info, model.backend)
    result = api.submit("c1", "thanks for the article")
    assert (result["status"], result["decision"], result["scores"]) == ("pending", "review", None)
    assert result["reasons"] == ["model_error: RuntimeError"]
    queue = api.client.get("/v1/queue", params={"site": SITE}, headers=api.auth("moderator")).json()
    assert [item["id"] for item in queue["items"]] == ["c1"]


def test_comment_is_stored_pending_without_a_model(tmp_path: Path, make_api: ApiFactory) -> None:
    api = make_api(registry_=Registry(tmp_path / "empty", shipped_dir=None))
    result = api.submit("c1", "thanks for the article")
    assert (result["status"], result["model"]) == ("pending", None)
    assert result["reasons"][0].startswith("model_unavailable: no active model")


def test_site_scoped_cms_key(api: Api) -> None:
    body = {"site": "elsewhere", "id": "c1", "text": "hello"}
    r = api.client.post("/v1/comments", json=body, headers=api.auth("cms_site"))
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert (
        api.client.post("/v1/comments", json={**body, "site": SITE}, headers=api.auth("cms_site")).status_code
        == 201
    )
    r = api.client.get("/v1/comments/c1", params={"site": "elsewhere"}, headers=api.auth("cms_site"))
    assert r.status_code == 403


def test_roles(api: Api) -> None:
    body = {"site": SITE, "id": "c1", "text": "hello"}
    assert api.client.post("/v1/comments", json=body, headers=api.auth("moderator")).status_code == 403
    assert api.client.post("/v1/comments", json=body, headers=api.auth("admin")).status_code == 201
    assert api.client.post("/v1/comments", json=body).status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"site": SITE, "id": "c", "text": "  \n "}, 422, "invalid_input"),
        ({"site": SITE, "id": "c", "text": ""}, 422, "invalid_input"),
        ({"site": SITE, "id": "c", "text": "x" * 201}, 413, "payload_too_large"),
        ({"site": SITE, "id": "c"}, 422, "validation_error"),
        ({"site": SITE, "id": "c", "text": 5}, 422, "validation_error"),
        ({"site": SITE, "id": "c", "text": "hi", "extra": 1}, 422, "validation_error"),
        ({"site": SITE, "id": "a/b", "text": "hi"}, 422, "validation_error"),
        ({"site": "", "id": "c", "text": "hi"}, 422, "validation_error"),
        ({"site": SITE, "id": "c", "text": "hi", "metadata": [1]}, 422, "validation_error"),
    ],
)
def test_bad_submissions(api: Api, body: dict[str, Any], status: int, error: str) -> None:
    r = api.client.post("/v1/comments", json=body, headers=api.auth("cms"))
    assert (r.status_code, r.json()["error"]) == (status, error)
    # Nothing half-written.
    r = api.client.get("/v1/comments/c", params={"site": SITE}, headers=api.auth("cms"))
    assert r.status_code == 404


def test_unknown_comment_or_site_is_404(api: Api) -> None:
    api.submit("c1", "hello")
    for params in ({"site": SITE}, {"site": "unknown-site"}):
        r = api.client.get(
            "/v1/comments/nope" if params["site"] == SITE else "/v1/comments/c1",
            params=params,
            headers=api.auth("cms"),
        )
        assert r.status_code == 404 and r.json()["error"] == "comment_not_found"
    r = api.client.get("/v1/comments/c1", headers=api.auth("cms"))
    assert r.status_code == 422  # site is required


def test_comment_text_is_not_logged_above_debug(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    api.submit("c1", "you stupid idiot unforgettable-marker")
    assert caplog.records and all("unforgettable-marker" not in r.getMessage() for r in caplog.records)


def test_concurrent_first_submissions_store_one_comment(api_both: Api) -> None:
    database = api_both.state.database
    assert database is not None
    body = CommentCreate(site=SITE, id="c1", text="thanks for the article")
    principal = Principal("k", Role.cms)

    def send(_: int) -> bool:
        return submit(database, api_both.state.model, None, body, principal, utcnow).created

    with ThreadPoolExecutor(max_workers=4) as pool:
        created = list(pool.map(send, range(4)))
    assert created.count(True) == 1
    with database.transaction() as repo:
        row = repo.get_comment(SITE, "c1")
        assert row is not None and [e.action for e in repo.history(row.id)] == ["submitted"]
