from __future__ import annotations

from service.storage.db import Database, make_engine
from tests.service.conftest import SITE, Api


def test_readyz_checks_the_database(api: Api) -> None:
    assert api.client.get("/readyz").status_code == 200
    working = api.state.database
    api.state.database = Database(make_engine("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"))
    try:
        r = api.client.get("/readyz")
        assert r.status_code == 503 and "database does not answer" in r.json()["detail"]
        r = api.client.get("/v1/queue", params={"site": SITE}, headers=api.auth("moderator"))
        assert r.status_code == 503 and r.json()["error"] == "database_unavailable"
    finally:
        api.state.database.dispose()
        api.state.database = working


def test_metrics(api: Api, tiny_model_id: str) -> None:
    api.submit("c1", "you stupid idiot")
    api.submit("c2", "thanks for the article")
    api.client.get("/v1/comments/c1", params={"site": SITE}, headers=api.auth("cms"))
    api.client.post(
        "/v1/comments/c2/decision",
        params={"site": SITE},
        json={"decision": "reject"},
        headers=api.auth("moderator"),
    )
    r = api.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert (
        'moderation_http_requests_total{method="GET",route="/v1/comments/{comment_id}",status="200"} 1.0'
        in text
    )
    assert 'moderation_http_requests_total{method="POST",route="/v1/comments",status="201"} 2.0' in text
    assert (
        'moderation_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/v1/comments"}'
        in text
    )
    assert 'moderation_decisions_total{label="toxicity",outcome="review",source="auto"} 1.0' in text
    assert 'moderation_decisions_total{label="none",outcome="approve",source="auto"} 1.0' in text
    assert 'moderation_decisions_total{label="none",outcome="reject",source="moderator"} 1.0' in text
    assert f'moderation_queue_depth{{site="{SITE}"}} 1.0' in text
    assert f'moderation_model_info{{model="{tiny_model_id}"}} 1.0' in text
    assert "/v1/comments/c1" not in text  # raw paths would explode the label set
