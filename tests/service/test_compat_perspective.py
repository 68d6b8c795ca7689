"""Perspective-compatible routes: the `perspective` client from PyPI against a real server, the documented
response shapes, a Coral-style caller, suggestscore feedback and the 4xx paths."""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from perspective import PerspectiveAPI
from sqlalchemy import func, select

from models.registry import Registry
from service.app import create_app
from service.auth import Role
from service.routes.perspective import ATTRIBUTES, sentences, severe_toxicity
from service.settings import Settings
from service.storage.db import Database
from service.storage.tables import Base, ScoreSuggestionRow
from tests.conftest import CLEAN, TOXIC
from tests.service.conftest import Api
from tests.service.live import live_server
from tests.service.servers import make_keys

ANALYZE, SUGGEST = "/v1alpha1/comments:analyze", "/v1alpha1/comments:suggestscore"
TWO_SENTENCES = "Thanks for the article. You stupid idiot!"


def _row_counts(url: str) -> dict[str, int]:
    database = Database.from_url(url)
    try:
        with database.transaction() as repo:
            return {
                table.name: int(repo.session.scalar(select(func.count()).select_from(table)) or 0)
                for table in Base.metadata.sorted_tables
            }
    finally:
        database.dispose()


@pytest.fixture
def server(
    tmp_path: Path, registry: Registry, tiny_model_id: str, sqlite_url: str
) -> Iterator[dict[str, str]]:
    """A uvicorn server on the tiny model; its database URL and a cms key."""
    keys = make_keys(sqlite_url, {"cms": (Role.cms, None)})
    settings = Settings(
        data_dir=tmp_path, database_url=sqlite_url, webhooks_enabled=False, model_watch_seconds=0
    )
    with live_server(create_app(settings, registry=registry)) as url:
        yield {"url": url, "database": sqlite_url, **keys}


def _client(server: dict[str, str], key: str | None = None) -> PerspectiveAPI:
    client = PerspectiveAPI(key or server["cms"])
    client.api_client.url = server["url"] + "/v1alpha1/{endpoint}"
    return client


def test_perspective_package_analyzes_and_suggests(server: dict[str, str]) -> None:
    client = _client(server)
    before = _row_counts(server["database"])
    result = client.analyze_comment(
        TWO_SENTENCES,
        requested_attributes={
            "TOXICITY": {},
            "SEVERE_TOXICITY": {"scoreType": "PROBABILITY"},
            "INSULT": {"scoreThreshold": 0.0},
            "SPAM": {},
            "MISINFORMATION": {},
            "CONSPIRACY": {},
        },
        span_annotations=True,
        do_not_store=True,
        languages=["en"],
        client_token="token-1",
        session_id="session-1",
        community_id="example",
    )
    assert set(result["attributeScores"]) == {
        "TOXICITY",
        "SEVERE_TOXICITY",
        "INSULT",
        "SPAM",
        "MISINFORMATION",
        "CONSPIRACY",
    }
    assert result["languages"] == ["en"] and result["clientToken"] == "token-1"
    toxicity = result["attributeScores"]["TOXICITY"]
    assert toxicity["summaryScore"]["type"] == "PROBABILITY" and 0 <= toxicity["summaryScore"]["value"] <= 1
    spans = toxicity["spanScores"]
    assert [(s["begin"], s["end"]) for s in spans] == [(0, 23), (24, len(TWO_SENTENCES))]
    assert spans[1]["score"]["value"] > 0.5 > spans[0]["score"]["value"]
    assert _row_counts(server["database"]) == before  # doNotStore: nothing kept

    assert (
        client.score(TOXIC[0], tests=["TOXICITY", "THREAT"])["TOXICITY"] > client.score(CLEAN[0])["TOXICITY"]
    )

    answer = client.suggest_score(
        "what a lovely idiot",
        {"TOXICITY": {"summaryScore": {"value": 0.9}}, "INSULT": {"summaryScore": {"value": 1.0}}},
        languages=["en"],
        client_token="token-2",
        community_id="example",
    )
    assert answer["clientToken"] == "token-2" and answer["requestedLanguages"] == ["en"]
    database = Database.from_url(server["database"])
    with database.transaction() as repo:
        [row] = repo.suggestions()
        assert (row.text, row.labels, row.site) == (
            "what a lovely idiot",
            {"toxicity": 0.9, "insult": 1.0},
            "example",
        )
    database.dispose()


def test_perspective_package_sees_google_errors(server: dict[str, str]) -> None:
    with pytest.raises(urllib.error.HTTPError) as unknown:
        _client(server).analyze_comment("hello", requested_attributes={"FLIRTATION": {}})
    body = json.loads(unknown.value.read())
    assert unknown.value.code == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    assert "FLIRTATION" in body["error"]["message"]
    with pytest.raises(urllib.error.HTTPError) as language:
        _client(server).analyze_comment("hallo", languages=["de"])
    details = json.loads(language.value.read())["error"]["details"][0]
    assert details["errorType"] == "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE"
    with pytest.raises(urllib.error.HTTPError) as auth:
        _client(server, key="mk_wrong_key").analyze_comment("hello")
    assert auth.value.code == 401 and json.loads(auth.value.read())["error"]["status"] == "UNAUTHENTICATED"


def _analyze(api: Api, body: dict[str, Any], who: str | None = "cms", query_key: bool = True) -> Any:
    if who is None:
        return api.client.post(ANALYZE, json=body)
    if query_key:
        return api.client.post(ANALYZE, params={"key": api.keys[who]}, json=body)
    return api.client.post(ANALYZE, json=body, headers=api.auth(who))


def _request(text: str, *attributes: str, **extra: Any) -> dict[str, Any]:
    return {"comment": {"text": text}, "requestedAttributes": {a: {} for a in attributes}, **extra}


def test_documented_response_shape(api: Api) -> None:
    response = _analyze(api, _request(TOXIC[0], "TOXICITY", "THREAT"), query_key=False)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"attributeScores", "languages"}  # no clientToken was sent
    assert body["languages"] == ["en"]
    for name in ("TOXICITY", "THREAT"):
        scores = body["attributeScores"][name]
        assert set(scores) == {"summaryScore", "spanScores"}
        assert set(scores["summaryScore"]) == {"value", "type"}
        # without spanAnnotations: one span, the whole comment, with the summary score
        assert scores["spanScores"] == [{"begin": 0, "end": len(TOXIC[0]), "score": scores["summaryScore"]}]


def test_every_attribute_and_the_severe_toxicity_derivation(api: Api) -> None:
    body = _analyze(api, _request(TOXIC[1], *ATTRIBUTES)).json()["attributeScores"]
    assert set(body) == set(ATTRIBUTES)
    labels = api.client.post("/v1/moderate", json={"texts": [TOXIC[1]]}, headers=api.auth("cms")).json()
    scores = labels["results"][0]["scores"]
    assert body["SEVERE_TOXICITY"]["summaryScore"]["value"] == pytest.approx(severe_toxicity(scores))
    assert body["IDENTITY_ATTACK"]["summaryScore"]["value"] == pytest.approx(scores["identity_attack"])
    assert severe_toxicity({"toxicity": 0.9, "insult": 0.1, "threat": 0.2, "identity_attack": 0.05}) == 0.2
    assert severe_toxicity({"toxicity": 0.3, "insult": 0.9, "threat": 0.0, "identity_attack": 0.0}) == 0.3


def test_score_threshold_leaves_out_low_scores(api: Api) -> None:
    body = _analyze(
        api,
        {
            "comment": {"text": TWO_SENTENCES},
            "requestedAttributes": {"TOXICITY": {"scoreThreshold": 0.1}, "INSULT": {"scoreThreshold": 0.99}},
            "spanAnnotations": True,
        },
    ).json()
    assert set(body["attributeScores"]) == {"TOXICITY"}  # only the toxic sentence's span stays
    spans = body["attributeScores"]["TOXICITY"]["spanScores"]
    assert [(s["begin"], s["end"]) for s in spans] == [(24, len(TWO_SENTENCES))]


def test_sentences() -> None:
    text = "First one.  Second?! Third\nfourth line 3.5 kg\n\n  "
    assert [text[b:e] for b, e in sentences(text)] == [
        "First one.",
        "Second?!",
        "Third",
        "fourth line 3.5 kg",
    ]
    assert sentences("no end") == [(0, 6)]


def coral_is_toxic(api: Api, text: str, threshold: float = 0.8) -> bool:
    """What Coral's toxic-comment check does: one TOXICITY request, one threshold."""
    response = api.client.post(
        ANALYZE,
        params={"key": api.keys["cms"]},
        json={
            "comment": {"text": text},
            "doNotStore": True,
            "requestedAttributes": {"TOXICITY": {}},
        },
    )
    response.raise_for_status()
    return float(response.json()["attributeScores"]["TOXICITY"]["summaryScore"]["value"]) > threshold


def test_coral_style_caller(api: Api) -> None:
    assert [coral_is_toxic(api, t) for t in TOXIC[:3]] == [True, True, True]
    assert [coral_is_toxic(api, t) for t in CLEAN[:3]] == [False, False, False]


def test_suggestscore_is_stored_as_feedback(api_both: Api) -> None:
    api = api_both
    body = {
        "comment": {"text": "the council is hiding the truth"},
        "attributeScores": {
            "CONSPIRACY": {"summaryScore": {"value": 0.8, "type": "PROBABILITY"}},
            "SEVERE_TOXICITY": {"summaryScore": {"value": 0.1}},
            "TOXICITY": {
                "spanScores": [{"begin": 0, "end": 3, "score": {"value": 0.2}}],
                "summaryScore": {"value": 0.0},
            },
        },
        "communityId": "other-site",
        "clientToken": "abc",
    }
    response = api.client.post(SUGGEST, params={"key": api.keys["moderator"]}, json=body)
    assert response.status_code == 200 and response.json() == {
        "requestedLanguages": ["en"],
        "clientToken": "abc",
    }
    response = api.client.post(SUGGEST, json=body, headers=api.auth("cms_site"))
    assert response.status_code == 200
    assert api.state.database is not None
    with api.state.database.transaction() as repo:
        rows = repo.suggestions()
        assert [(r.site, r.community_id, r.labels) for r in rows] == [
            ("other-site", "other-site", {"conspiracy": 0.8, "toxicity": 0.0}),
            ("example", "other-site", {"conspiracy": 0.8, "toxicity": 0.0}),
        ]
        assert rows[0].attributes == {"CONSPIRACY": 0.8, "SEVERE_TOXICITY": 0.1, "TOXICITY": 0.0}
        assert repo.session.scalar(select(func.count()).select_from(ScoreSuggestionRow)) == 2


def _google_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"} and {"code", "message", "status"} <= set(body["error"])
    assert body["error"]["code"] == status
    return body["error"]


@pytest.mark.parametrize(
    ("body", "error_type", "mentions"),
    [
        (_request("hi", "TOXICITY", "SEXUALLY_EXPLICIT"), "ATTRIBUTE_NOT_SUPPORTED", "SEXUALLY_EXPLICIT"),
        (_request("hi", "TOXICITY", languages=["en", "fr"]), "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE", "fr"),
        (_request("  ", "TOXICITY"), "COMMENT_EMPTY", "empty"),
        (_request("x" * 201, "TOXICITY"), "COMMENT_TOO_LONG", "too long"),
        (
            {"comment": {"text": "<b>hi</b>", "type": "HTML"}, "requestedAttributes": {"TOXICITY": {}}},
            "COMMENT_TYPE",
            "HTML",
        ),
        (
            {"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {"scoreType": "STD_DEV_SCORE"}}},
            "INVALID_SCORE_TYPE",
            "STD_DEV_SCORE",
        ),
    ],
)
def test_perspective_errors(api: Api, body: dict[str, Any], error_type: str, mentions: str) -> None:
    error = _google_error(_analyze(api, body), 400)
    assert error["status"] == "INVALID_ARGUMENT" and mentions in error["message"]
    assert error["details"][0]["errorType"] == error_type


@pytest.mark.parametrize(
    "body",
    [
        {"comment": {"text": "hi"}, "requestedAttributes": {}},
        {"comment": {"text": "hi"}},
        {"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {"scoreThreshold": 2}}},
        {"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {}}, "unknownField": 1},
        {"comment": "hi", "requestedAttributes": {"TOXICITY": {}}},
    ],
)
def test_malformed_requests_are_400(api: Api, body: dict[str, Any]) -> None:
    assert _google_error(_analyze(api, body), 400)["status"] == "INVALID_ARGUMENT"


def test_auth_errors(api: Api) -> None:
    body = _request("hi", "TOXICITY")
    assert _google_error(_analyze(api, body, who=None), 401)["status"] == "UNAUTHENTICATED"
    bad = api.client.post(ANALYZE, params={"key": "mk_x_y"}, json=body)
    assert _google_error(bad, 401)["status"] == "UNAUTHENTICATED"
    assert _google_error(_analyze(api, body, who="moderator"), 403)["status"] == "PERMISSION_DENIED"
    assert _analyze(api, body, who="admin").status_code == 200
    # the header wins over a (wrong) query key
    both = api.client.post(ANALYZE, params={"key": "mk_x_y"}, json=body, headers=api.auth("cms"))
    assert both.status_code == 200
    # ?key= is only accepted on the Perspective routes
    other = api.client.post("/v1/moderate", params={"key": api.keys["cms"]}, json={"texts": ["hi"]})
    assert other.status_code == 401


def test_suggestscore_errors(api: Api) -> None:
    def suggest(attributes: dict[str, Any], who: str = "cms") -> Any:
        body = {"comment": {"text": "hi"}, "attributeScores": attributes}
        return api.client.post(SUGGEST, params={"key": api.keys[who]}, json=body)

    assert (
        "FLIRTATION"
        in _google_error(suggest({"FLIRTATION": {"summaryScore": {"value": 0.1}}}), 400)["message"]
    )
    assert "summaryScore" in _google_error(suggest({"TOXICITY": {}}), 400)["message"]
    _google_error(suggest({"TOXICITY": {"summaryScore": {"value": 1.5}}}), 400)
    _google_error(suggest({}), 400)
    assert suggest({"TOXICITY": {"summaryScore": {"value": 0.5}}}, who="moderator").status_code == 200
    invalid = api.client.post(
        SUGGEST, params={"key": api.keys["cms"]}, content=b"{", headers={"content-type": "application/json"}
    )
    _google_error(invalid, 400)
