"""POST /v1/moderations: OpenAI's own client against a real server, the category mapping, the 4xx paths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.moderation import Categories, CategoryAppliedInputTypes, CategoryScores

from models.labels import LABEL_NAMES
from models.registry import Registry
from service.app import create_app
from service.auth import Role
from service.routes.compat_openai import CATEGORIES, OPENAI_CATEGORIES, OWN_CATEGORIES, openai_result
from service.settings import Settings
from tests.conftest import CLEAN, TOXIC
from tests.service.conftest import Api, ApiFactory
from tests.service.live import live_server
from tests.service.servers import make_keys

TOXIC_TEXT, CLEAN_TEXT = TOXIC[1], CLEAN[0]


def _openai_keys(model: type[Any]) -> set[str]:
    """The JSON keys of one of the openai package's response models (aliases such as hate/threatening)."""
    return {field.alias or name for name, field in model.model_fields.items()}


@pytest.fixture
def server(
    tmp_path: Path, registry: Registry, tiny_model_id: str, sqlite_url: str
) -> Iterator[dict[str, str]]:
    """A uvicorn server on the tiny model, with a cms and a moderator key."""
    keys = make_keys(sqlite_url, {"cms": (Role.cms, None), "moderator": (Role.moderator, None)})
    settings = Settings(
        data_dir=tmp_path, database_url=sqlite_url, webhooks_enabled=False, model_watch_seconds=0
    )
    with live_server(create_app(settings, registry=registry)) as url:
        yield {"url": url, **keys}


def test_openai_client_parses_a_string_and_a_list(server: dict[str, str], tiny_model_id: str) -> None:
    client = openai.OpenAI(api_key=server["cms"], base_url=server["url"] + "/v1", max_retries=0)

    one = client.moderations.create(input=TOXIC_TEXT)
    assert one.model == tiny_model_id and one.id.startswith("modr-") and len(one.results) == 1
    result = one.results[0]
    assert result.flagged is True
    assert result.categories.harassment is True and result.categories.hate_threatening is True
    assert result.categories.self_harm is False and result.category_scores.sexual_minors == 0.0
    assert 0.5 < result.category_scores.harassment <= 1.0
    assert result.category_applied_input_types.harassment == ["text"]
    assert result.category_applied_input_types.self_harm == []
    # Our own categories come through as extra fields of OpenAI's models.
    extra = result.categories.model_extra or {}
    assert {name: extra.get(name) for name in OWN_CATEGORIES} == dict.fromkeys(OWN_CATEGORIES, True)
    assert set(OWN_CATEGORIES) <= set(result.category_scores.model_extra or {})

    many = client.moderations.create(input=[TOXIC_TEXT, CLEAN_TEXT, TOXIC[0]], model="omni-moderation-latest")
    assert [r.flagged for r in many.results] == [True, False, True]
    assert many.results[1].category_scores.harassment < many.results[0].category_scores.harassment
    parts = client.moderations.create(input=[{"type": "text", "text": CLEAN_TEXT}])
    assert parts.results[0].flagged is False


def test_openai_client_sees_openai_errors(server: dict[str, str]) -> None:
    base = server["url"] + "/v1"
    with pytest.raises(openai.AuthenticationError) as auth:
        openai.OpenAI(api_key="mk_nope_nope", base_url=base, max_retries=0).moderations.create(input="hi")
    assert auth.value.status_code == 401 and auth.value.code == "invalid_api_key"
    client = openai.OpenAI(api_key=server["cms"], base_url=base, max_retries=0)
    with pytest.raises(openai.BadRequestError) as empty:
        client.moderations.create(input="   ")
    assert empty.value.status_code == 400 and "empty" in empty.value.message
    with pytest.raises(openai.NotFoundError):
        client.moderations.create(input="hi", model="gpt-4o")
    with pytest.raises(openai.PermissionDeniedError):
        openai.OpenAI(api_key=server["moderator"], base_url=base, max_retries=0).moderations.create(
            input="hi"
        )


def test_every_openai_category_is_present() -> None:
    for model in (Categories, CategoryScores, CategoryAppliedInputTypes):
        assert _openai_keys(model) == set(OPENAI_CATEGORIES), model.__name__
    assert set(CATEGORIES) == set(OPENAI_CATEGORIES) | set(OWN_CATEGORIES)
    assert {label for labels in CATEGORIES.values() for label in labels} == set(LABEL_NAMES) - {
        "toxicity",
        "profanity",
        "spam",
        "misinformation",
        "conspiracy",
    } | set(OWN_CATEGORIES)


def test_category_mapping() -> None:
    scores = dict.fromkeys(LABEL_NAMES, 0.1) | {
        "insult": 0.8,
        "threat": 0.6,
        "identity_attack": 0.9,
        "spam": 0.7,
    }
    result = openai_result(scores, flagged=["insult", "identity_attack", "spam"])
    assert result.category_scores["harassment"] == 0.8
    assert result.category_scores["harassment/threatening"] == 0.6 == result.category_scores["violence"]
    assert result.category_scores["hate"] == 0.9
    assert result.category_scores["hate/threatening"] == 0.6  # min(identity_attack, threat)
    assert result.category_scores["spam"] == 0.7 and result.category_scores["illicit"] == 0.0
    assert result.categories["harassment"] and result.categories["hate"] and result.categories["spam"]
    # threat is not flagged, so nothing that needs it is
    assert not result.categories["hate/threatening"] and not result.categories["violence"]
    assert result.flagged
    calm = openai_result(dict.fromkeys(LABEL_NAMES, 0.01), flagged=[])
    assert not calm.flagged and not any(calm.categories.values())
    assert calm.category_applied_input_types["sexual"] == [] and calm.category_applied_input_types[
        "hate"
    ] == ["text"]


def _post(api: Api, body: object, who: str = "cms", **kwargs: Any) -> Any:
    headers = api.auth(who) if who else {}
    return api.client.post("/v1/moderations", json=body, headers=headers, **kwargs)


def test_flags_follow_the_keys_site_policy(api: Api) -> None:
    response = api.client.put(
        "/v1/sites/example/policy",
        json={"review": {"insult": 0.999}, "reject": {"insult": 1.0}},
        headers=api.auth("admin"),
    )
    assert response.status_code == 200
    everywhere = _post(api, {"input": TOXIC_TEXT}).json()["results"][0]
    on_site = _post(api, {"input": TOXIC_TEXT}, who="cms_site").json()["results"][0]
    assert everywhere["categories"]["harassment"] is True
    assert on_site["categories"]["harassment"] is False and on_site["categories"]["toxicity"] is True
    assert on_site["category_scores"] == everywhere["category_scores"]


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"input": ""}, 400, "invalid_input"),
        ({"input": []}, 400, "validation_error"),
        ({"input": ["fine", " "]}, 400, "invalid_input"),
        ({"input": 5}, 400, "validation_error"),
        ({}, 400, "validation_error"),
        ({"input": "hi", "temperature": 1}, 400, "validation_error"),
        ({"input": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}, 400, "invalid_input"),
        ({"input": ["hi"] * 129}, 413, "payload_too_large"),
        ({"input": "x" * 201}, 413, "payload_too_large"),
        ({"input": "hi", "model": "gpt-4o"}, 404, "model_not_found"),
    ],
)
def test_bad_requests(api: Api, body: object, status: int, code: str) -> None:
    error = _error(_post(api, body), status)
    assert error["code"] == code and error["type"] == "invalid_request_error" and error["message"]


def test_auth_errors(api: Api) -> None:
    error = _error(_post(api, {"input": "hi"}, who=""), 401)
    assert error["code"] == "invalid_api_key"
    assert _post(api, {"input": "hi"}, who="").headers["WWW-Authenticate"] == "Bearer"
    _error(_post(api, {"input": "hi"}, who="moderator"), 403)
    assert _post(api, {"input": "hi"}, who="admin").status_code == 200


def test_invalid_json_is_a_400(api: Api) -> None:
    response = api.client.post(
        "/v1/moderations",
        content=b"{not json",
        headers={**api.auth("cms"), "content-type": "application/json"},
    )
    assert _error(response, 400)["code"] == "validation_error"


def test_rate_limit_is_a_429_with_retry_after(make_api: ApiFactory) -> None:
    api = make_api(rate_limit_per_second=0.01, rate_limit_burst=1)
    assert _post(api, {"input": "hi"}).status_code == 200
    response = _post(api, {"input": "hi"})
    error = _error(response, 429)
    assert error["type"] == "requests" and int(response.headers["Retry-After"]) >= 1


def test_no_model_is_a_503(make_api: ApiFactory, tmp_path: Path) -> None:
    api = make_api(registry_=Registry(tmp_path / "empty", shipped_dir=None))
    error = _error(_post(api, {"input": "hi"}), 503)
    assert error["type"] == "server_error"
