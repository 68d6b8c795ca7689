from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from models.registry import Registry
from tests.conftest import store_tiny_model
from tests.service.conftest import Api


def _moderate(api: Api) -> tuple[int, str]:
    r = api.client.post("/v1/moderate", json={"texts": ["you stupid idiot"]}, headers=api.auth("cms"))
    return r.status_code, r.json().get("model", "")


def test_promote_swaps_the_served_model_without_failing_requests(
    api: Api, registry: Registry, tiny_model_id: str
) -> None:
    new_id = store_tiny_model(registry, threshold=0.99)
    with ThreadPoolExecutor(max_workers=2) as pool:
        before = [pool.submit(_moderate, api) for _ in range(6)]
        # Tiny test models have no evaluation report for the gate to compare: forced, with a reason.
        r = api.client.post(
            f"/v1/admin/models/{new_id}/promote",
            json={"force": True, "reason": "test models"},
            headers=api.auth("admin"),
        )
        after = [pool.submit(_moderate, api) for _ in range(6)]
        results = [f.result() for f in before + after]
    assert r.status_code == 200 and (r.json()["model"], r.json()["previous"]) == (new_id, tiny_model_id)
    assert all(status == 200 for status, _ in results)
    assert {model for _, model in results[6:]} == {new_id}
    assert api.client.get("/readyz").json()["model"] == new_id
    assert registry.active_id() == new_id  # a restart serves it too
    assert api.submit("c1", "you stupid idiot")["model"] == new_id


def test_promote_refuses_unknown_and_broken_models(api: Api, registry: Registry, tiny_model_id: str) -> None:
    r = api.client.post("/v1/admin/models/nope/promote", headers=api.auth("admin"))
    assert r.status_code == 404 and r.json()["error"] == "model_not_found"
    broken = store_tiny_model(registry)
    model_file = next(p for p in registry.path(broken).iterdir() if p.suffix == ".joblib")
    model_file.write_bytes(b"corrupted")
    r = api.client.post(f"/v1/admin/models/{broken}/promote", headers=api.auth("admin"))
    assert r.status_code == 422 and r.json()["error"] == "model_rejected"
    assert api.client.get("/readyz").json()["model"] == tiny_model_id
    assert (
        api.client.post(f"/v1/admin/models/{broken}/promote", headers=api.auth("moderator")).status_code
        == 403
    )


def test_deliveries_need_a_site(api: Api) -> None:
    r = api.client.get("/v1/admin/webhooks/deliveries", headers=api.auth("admin"))
    assert r.status_code == 422
    r = api.client.get(
        "/v1/admin/webhooks/deliveries", params={"site": "s", "state": "lost"}, headers=api.auth("admin")
    )
    assert r.status_code == 422
