from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models.registry import Registry
from service.app import create_app
from service.settings import Settings


@pytest.fixture
def client(tmp_path: Path, registry: Registry, tiny_model_id: str) -> Iterator[TestClient]:
    app = create_app(Settings(data_dir=tmp_path, max_text_chars=200), registry=registry)
    with TestClient(app) as c:
        yield c


def test_health_and_ready(client: TestClient, tiny_model_id: str) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "model": None, "detail": None}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["model"] == tiny_model_id


def test_moderate_scores_and_decides(client: TestClient, tiny_model_id: str) -> None:
    r = client.post("/v1/moderate", json={"texts": ["you stupid idiot", "thanks for the article"]})
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == tiny_model_id
    toxic, clean = body["results"]
    assert "toxicity" in toxic["flagged"] and toxic["decision"] in ("review", "reject")
    assert clean == {**clean, "flagged": [], "decision": "approve", "spans": []}
    assert set(toxic["scores"]) == {
        "toxicity",
        "insult",
        "threat",
        "identity_attack",
        "profanity",
        "spam",
        "misinformation",
        "conspiracy",
    }
    assert all(s["start"] < s["end"] for s in toxic["spans"])


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"texts": []},
        {"texts": ["x"] * 129},
        {"texts": "not a list"},
        {"texts": ["ok"], "unexpected": 1},
        {"texts": [123]},
    ],
)
def test_moderate_rejects_bad_requests(client: TestClient, payload: dict[str, object]) -> None:
    assert client.post("/v1/moderate", json=payload).status_code == 422


def test_moderate_rejects_empty_and_too_long_texts(client: TestClient) -> None:
    r = client.post("/v1/moderate", json={"texts": ["fine", "   "]})
    assert r.status_code == 422 and "texts[1] is empty" in r.json()["detail"]
    r = client.post("/v1/moderate", json={"texts": ["x" * 201]})
    assert r.status_code == 422 and "limit is 200" in r.json()["detail"]


def test_not_ready_without_model(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path), registry=Registry(tmp_path / "empty", shipped_dir=None))
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        assert r.status_code == 503 and "no active model" in r.json()["detail"]
        r = c.post("/v1/moderate", json={"texts": ["hello"]})
        assert r.status_code == 503 and r.json()["error"] == "model_unavailable"
