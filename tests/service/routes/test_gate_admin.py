"""POST /v1/admin/models/{id}/promote applies the promotion gate to the stored reports."""

from __future__ import annotations

import json

from models.labels import LABEL_NAMES
from models.registry import Registry
from tests.conftest import store_tiny_model
from tests.service.conftest import Api


def _reported(registry: Registry, auc: float, fpr: float = 0.3, test_hash: str = "h") -> str:
    model_id = store_tiny_model(registry)
    report = {
        "model_id": model_id,
        "labels": {label: {"roc_auc": auc, "n": 10} for label in LABEL_NAMES},
        "bias": {"fpr": fpr},
        "test_data_hash": test_hash,
    }
    (registry.path(model_id) / "report.json").write_text(json.dumps(report))
    return model_id


def _promote(api: Api, model_id: str, body: object = None) -> tuple[int, dict[str, object]]:
    response = api.client.post(f"/v1/admin/models/{model_id}/promote", json=body, headers=api.auth("admin"))
    return response.status_code, response.json()


def test_gate_on_stored_reports(api: Api, registry: Registry, tiny_model_id: str) -> None:
    active = _reported(registry, auc=0.9)
    # the fixture's active model has no report: not comparable unless forced
    status, body = _promote(api, active)
    assert (
        status == 409
        and body["error"] == "reports_not_comparable"
        and "no stored evaluation report" in body["detail"]
    )
    status, body = _promote(api, active, {"force": True, "reason": "first model with a report"})
    assert status == 200 and body["gate"] == "forced" and body["previous"] == tiny_model_id

    worse = _reported(registry, auc=0.8, fpr=0.35)
    status, body = _promote(api, worse)
    assert status == 409 and body["error"] == "promotion_refused"
    assert "toxicity ROC-AUC 0.9000 -> 0.8000" in str(body["detail"]) and "bias set" in str(body["detail"])
    assert api.client.get("/readyz").json()["model"] == active and registry.active_id() == active

    status, body = _promote(api, worse, {"force": True})
    assert status == 422 and "force needs a reason" in str(body["detail"])
    status, body = _promote(api, worse, {"force": True, "reason": "accepted regression"})
    assert status == 200 and body["gate"] == "forced" and len(body["regressions"]) == len(LABEL_NAMES) + 1  # type: ignore[arg-type]
    assert api.client.get("/readyz").json()["model"] == worse
    entry = registry.promotions()[-1]
    assert entry["forced"] is True and entry["reason"] == "accepted regression"
    assert entry["actor"] == f"key:{api.keys['admin'].split('_')[1]}"

    better = _reported(registry, auc=0.95, fpr=0.1)
    status, body = _promote(api, better)
    assert (status, body["gate"], body["regressions"]) == (200, "passed", [])
    elsewhere = _reported(registry, auc=0.99, test_hash="other")
    assert _promote(api, elsewhere)[1]["error"] == "reports_not_comparable"
    assert _promote(api, better, {"unknown": 1})[0] == 422
