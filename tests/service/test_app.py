from __future__ import annotations

import secrets
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from models.registry import Registry
from service.app import create_app
from service.settings import Settings
from service.storage import migrate
from service.storage.db import Database
from tests.conftest import store_tiny_model
from tests.service.conftest import POSTGRES_URL, Api, ApiFactory


@pytest.fixture
def client(api: Api) -> TestClient:
    return api.client


def test_health_and_ready(api: Api, tiny_model_id: str) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok", "model": None, "detail": None}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["model"] == tiny_model_id


def test_moderate_scores_and_decides(api: Api, tiny_model_id: str) -> None:
    r = api.client.post(
        "/v1/moderate",
        json={"texts": ["you stupid idiot", "thanks for the article"]},
        headers=api.auth("cms"),
    )
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


def test_moderate_needs_a_cms_or_admin_key(api: Api) -> None:
    body = {"texts": ["hello"]}
    assert api.client.post("/v1/moderate", json=body).status_code == 401
    bad = {"Authorization": "Bearer mk_nope_nope"}
    assert api.client.post("/v1/moderate", json=body, headers=bad).status_code == 401
    assert api.client.post("/v1/moderate", json=body, headers=api.auth("moderator")).status_code == 403
    assert api.client.post("/v1/moderate", json=body, headers=api.auth("admin")).status_code == 200
    # A site-scoped cms key scores with its own site's policy, and may not name another site.
    assert api.client.post("/v1/moderate", json=body, headers=api.auth("cms_site")).status_code == 200
    other = {"texts": ["hello"], "site": "elsewhere"}
    r = api.client.post("/v1/moderate", json=other, headers=api.auth("cms_site"))
    assert r.status_code == 403 and r.json()["error"] == "forbidden"


def test_moderate_applies_the_site_policy(api: Api) -> None:
    policy = {"banned_words": ["bridge"]}
    assert (
        api.client.put("/v1/sites/example/policy", json=policy, headers=api.auth("admin")).status_code == 200
    )
    body = {"texts": ["interesting article about the bridge"], "site": "example"}
    result = api.client.post("/v1/moderate", json=body, headers=api.auth("cms")).json()["results"][0]
    assert result["decision"] == "reject" and result["reasons"] == ["banned_word:bridge"]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"texts": []},
        {"texts": "not a list"},
        {"texts": ["ok"], "unexpected": 1},
        {"texts": [123]},
    ],
)
def test_moderate_rejects_bad_requests(api: Api, payload: dict[str, object]) -> None:
    r = api.client.post("/v1/moderate", json=payload, headers=api.auth("cms"))
    assert r.status_code == 422
    assert r.json()["error"] == "validation_error" and r.json()["detail"]


def test_moderate_rejects_empty_and_too_long_texts(api: Api) -> None:
    r = api.client.post("/v1/moderate", json={"texts": ["fine", "   "]}, headers=api.auth("cms"))
    assert r.status_code == 422 and "texts[1] is empty" in r.json()["detail"]
    r = api.client.post("/v1/moderate", json={"texts": ["x" * 201]}, headers=api.auth("cms"))
    assert r.status_code == 413 and "limit is 200" in r.json()["detail"]
    r = api.client.post("/v1/moderate", json={"texts": ["x"] * 129}, headers=api.auth("cms"))
    assert r.status_code == 413 and r.json() == {
        "error": "payload_too_large",
        "detail": "129 texts; the limit is 128",
    }


def test_invalid_json_and_unknown_routes_use_the_error_shape(api: Api) -> None:
    headers = {**api.auth("cms"), "content-type": "application/json"}
    r = api.client.post("/v1/moderate", content=b'{"texts": [', headers=headers)
    assert r.status_code == 422 and r.json()["error"] == "validation_error"
    # Not UTF-8 at all: FastAPI says 400, the documented answer is the same 422 (found by schemathesis).
    r = api.client.post("/v1/moderate", content=b'{"texts": ["\xff\xfe"]}', headers=headers)
    assert r.status_code == 422 and r.json()["error"] == "validation_error"
    r = api.client.get("/v1/nothing-here")
    assert r.status_code == 404 and r.json() == {"error": "not_found", "detail": "Not Found"}
    r = api.client.get("/v1/moderate")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_not_ready_without_model(tmp_path: Path, make_api: ApiFactory) -> None:
    api = make_api(registry_=Registry(tmp_path / "empty", shipped_dir=None))
    assert api.client.get("/healthz").status_code == 200
    r = api.client.get("/readyz")
    assert r.status_code == 503 and "no active model" in r.json()["detail"]
    r = api.client.post("/v1/moderate", json={"texts": ["hello"]}, headers=api.auth("cms"))
    assert r.status_code == 503 and r.json()["error"] == "model_unavailable"


def test_sqlite_is_migrated_on_start(tmp_path: Path, registry: Registry, tiny_model_id: str) -> None:
    app = create_app(Settings(data_dir=tmp_path / "fresh", webhooks_enabled=False), registry=registry)
    with TestClient(app) as c:
        assert c.get("/readyz").json()["status"] == "ok"
    assert (tmp_path / "fresh" / "moderation.db").is_file()


def test_not_ready_until_postgres_is_migrated(registry: Registry, tiny_model_id: str) -> None:
    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    schema = f"moderation_app_{secrets.token_hex(4)}"
    try:
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except SQLAlchemyError as exc:
        engine.dispose()
        pytest.skip(f"PostgreSQL does not answer at {POSTGRES_URL}: {type(exc).__name__}")
    url = f"{POSTGRES_URL}?options={quote(f'-csearch_path={schema}')}"
    try:
        # The service never migrates PostgreSQL itself...
        app = create_app(Settings(database_url=url, webhooks_enabled=False), registry=registry)
        with TestClient(app) as c:
            r = c.get("/readyz")
            assert r.status_code == 503 and "run `moderation db upgrade`" in r.json()["detail"]
            r = c.post("/v1/moderate", json={"texts": ["hi"]}, headers={"Authorization": "Bearer mk_x"})
            assert r.status_code == 503 and r.json()["error"] == "database_unavailable"
            # ...and becomes ready by itself once `moderation db upgrade` has run.
            database = Database.from_url(url)
            migrate.upgrade(database.engine)
            database.dispose()
            c.app.state.moderation.check_database(force=True)  # type: ignore[attr-defined]
            assert c.get("/readyz").status_code == 200
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def test_follows_a_promotion_made_elsewhere(
    make_api: ApiFactory, registry: Registry, tiny_model_id: str
) -> None:
    api = make_api(model_watch_seconds=0.05)
    new_id = store_tiny_model(registry)
    registry.promote(new_id)  # as `moderation models promote` or another worker would
    deadline = time.monotonic() + 10
    while api.client.get("/readyz").json()["model"] != new_id:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_openapi_documents_the_bearer_scheme_and_errors(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    submit = spec["paths"]["/v1/comments"]["post"]
    assert {"201", "200", "401", "403", "413", "422", "429"} <= set(submit["responses"])
    assert "toxicity" in spec["info"]["description"]


def test_moderate_holds_comments_naming_a_group_to_the_identity_cut(
    make_api: ApiFactory, registry: Registry
) -> None:
    from models.identity import IDENTITY_TERMS, IdentityCut

    registry.promote(
        store_tiny_model(registry, identity_cut=IdentityCut(IDENTITY_TERMS, {"toxicity": 0.999}))
    )
    api = make_api()
    body = {"texts": ["you stupid idiot", "you stupid gay idiot"], "site": "example"}
    plain, named = api.client.post("/v1/moderate", json=body, headers=api.auth("cms")).json()["results"]
    assert named["scores"]["toxicity"] > 0.5
    assert "toxicity" in plain["flagged"] and "toxicity" not in named["flagged"]
    assert "insult" in named["flagged"] and named["decision"] != "approve"  # other labels still apply
    # A site's own review threshold applies to every comment, naming a group or not.
    policy = {"review": {"toxicity": 0.5}}
    assert (
        api.client.put("/v1/sites/example/policy", json=policy, headers=api.auth("admin")).status_code == 200
    )
    named = api.client.post("/v1/moderate", json=body, headers=api.auth("cms")).json()["results"][1]
    assert "toxicity" in named["flagged"]
