"""Admin pages: policies, webhooks, API keys and models (no browser)."""

from __future__ import annotations

import html
import re

from models.registry import Registry
from tests.conftest import store_tiny_model
from tests.ui.conftest import SITE, UiApp


def test_sites_page_lists_sites_and_opens_one(ui: UiApp) -> None:
    ui.submit("c1", "you stupid idiot")
    client, _ = ui.sign_in("admin")
    page = client.get("/ui/admin/sites")
    assert page.status_code == 200 and ">news</a>" in page.text and "default policy" in page.text
    assert (
        client.get("/ui/admin/sites", params={"site": "fresh"}).headers["location"] == "/ui/admin/sites/fresh"
    )
    assert client.get("/ui/admin/sites", params={"site": "a/b"}).status_code == 422
    assert client.get("/ui/admin").headers["location"] == "/ui/admin/sites"


def test_saving_a_policy_changes_the_next_decision(ui: UiApp) -> None:
    client, csrf = ui.sign_in("admin")
    page = client.get(f"/ui/admin/sites/{SITE}").text
    assert "uses the default policy" in page and 'placeholder="0.50"' in page  # the tiny model's threshold
    form = {
        "csrf_token": csrf,
        "mode": "post",
        "default_reject": "0.99",
        "review_toxicity": "0.2",
        "reject_spam": "0.9",
        "banned_words": "scam\n  \nfake cure",
        "suspect_words": "",
    }
    response = client.post(f"/ui/admin/sites/{SITE}/policy", data=form)
    assert (
        response.status_code == 303 and response.headers["location"] == f"/ui/admin/sites/{SITE}?saved=policy"
    )
    page = client.get(response.headers["location"]).text
    assert "Policy saved" in page and 'value="0.2"' in page and "scam\nfake cure</textarea>" in page
    stored = ui.api("GET", f"/v1/sites/{SITE}/policy", "admin").json()
    assert stored["policy"]["mode"] == "post" and stored["policy"]["review"] == {"toxicity": 0.2}
    assert stored["policy"]["reject"] == {"spam": 0.9} and stored["policy"]["banned_words"] == [
        "scam",
        "fake cure",
    ]
    assert stored["updated_by"] == f"key:{ui.key_ids['admin']}"
    assert ui.submit("c1", "a scam")["status"] == "rejected"


def test_an_invalid_policy_is_shown_back_and_not_saved(ui: UiApp) -> None:
    client, csrf = ui.sign_in("admin")
    for fields, problem in (
        ({"review_toxicity": "abc"}, "review toxicity: 'abc' is not a number"),
        ({"review_toxicity": "1.5"}, "less than or equal to 1"),
        ({"review_toxicity": "0.9", "reject_toxicity": "0.5"}, "above its reject threshold"),
        ({"banned_words": "!!!"}, "needs at least one letter or digit"),
        ({"mode": "sometimes"}, "mode"),
    ):
        response = client.post(f"/ui/admin/sites/{SITE}/policy", data={"csrf_token": csrf, **fields})
        assert response.status_code == 422, fields
        assert problem in html.unescape(response.text), (problem, fields)
        value = next(iter(fields.values()))
        assert (
            f'value="{value}"' in response.text
            or f">{value}</textarea>" in response.text
            or fields.get("mode")
        )
    assert ui.api("GET", f"/v1/sites/{SITE}/policy", "admin").json()["source"] == "default"


def test_webhook_settings_show_the_secret_once(ui: UiApp) -> None:
    client, csrf = ui.sign_in("admin")
    response = client.post(
        f"/ui/admin/sites/{SITE}/webhook", data={"csrf_token": csrf, "url": "https://cms.example/hook"}
    )
    assert response.status_code == 200
    secret = re.search(r'<output class="secret">(whsec_[^<]+)</output>', response.text)
    assert secret is not None
    page = client.get(f"/ui/admin/sites/{SITE}").text
    assert "https://cms.example/hook" in page and secret.group(1) not in page
    with ui.database.transaction() as repo:
        hook = repo.get_webhook(SITE)
        assert hook is not None and hook.secret == secret.group(1)
    bad = client.post(f"/ui/admin/sites/{SITE}/webhook", data={"csrf_token": csrf, "url": "ftp://x"})
    assert bad.status_code == 422 and "The webhook was not saved" in bad.text
    short = client.post(
        f"/ui/admin/sites/{SITE}/webhook",
        data={"csrf_token": csrf, "url": "https://a.example", "secret": "short"},
    )
    assert short.status_code == 422
    gone = client.post(f"/ui/admin/sites/{SITE}/webhook/delete", data={"csrf_token": csrf})
    assert gone.status_code == 303 and "Webhook removed" in client.get(gone.headers["location"]).text
    again = client.post(f"/ui/admin/sites/{SITE}/webhook/delete", data={"csrf_token": csrf})
    assert again.status_code == 404


def test_keys_are_shown_once_and_revoked(ui: UiApp) -> None:
    client, csrf = ui.sign_in("admin")
    response = client.post(
        "/ui/admin/keys", data={"csrf_token": csrf, "role": "cms", "site": SITE, "name": "Newsroom CMS"}
    )
    assert response.status_code == 201
    created = re.search(r"<output class=\"secret\" data-new-key>(mk_[^<]+)</output>", response.text)
    assert created is not None
    key = created.group(1)
    key_id = key.split("_")[1]
    assert ui.api("GET", "/v1/comments/x", params={"site": SITE}).status_code == 404  # the fixture's cms key
    headers = {"Authorization": f"Bearer {key}"}
    client_api = ui.clients[0]
    assert client_api.get("/v1/comments/x", params={"site": SITE}, headers=headers).status_code == 404
    page = client.get("/ui/admin/keys").text
    assert "Newsroom CMS" in page and key not in page
    revoked = client.post(f"/ui/admin/keys/{key_id}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303 and "stops working" in client.get(revoked.headers["location"]).text
    assert client_api.get("/v1/comments/x", params={"site": SITE}, headers=headers).status_code == 401
    refused = client.post("/ui/admin/keys", data={"csrf_token": csrf, "role": "admin", "site": SITE})
    assert refused.status_code == 422 and "cannot be limited to a site" in refused.text
    assert client.post("/ui/admin/keys/nope/revoke", data={"csrf_token": csrf}).status_code == 404
    assert client.post("/ui/admin/keys", data={"csrf_token": csrf, "role": "root"}).status_code == 422


def test_models_promote_and_roll_back(ui: UiApp, registry: Registry, tiny_model_id: str) -> None:
    newer = store_tiny_model(registry, threshold=0.9)
    client, csrf = ui.sign_in("admin")
    page = client.get("/ui/admin/models").text
    assert tiny_model_id in page and newer in page and "<strong>serving</strong>" in page
    # The API's promotion gate applies: tiny test models have no stored evaluation to compare.
    refused = client.post(f"/ui/admin/models/{newer}/promote", data={"csrf_token": csrf})
    assert refused.status_code == 409 and "was not promoted: cannot compare" in refused.text
    unexplained = client.post(f"/ui/admin/models/{newer}/promote", data={"csrf_token": csrf, "force": "true"})
    assert unexplained.status_code == 422 and "force needs a reason" in unexplained.text
    assert ui.state.model is not None and ui.state.model.id == tiny_model_id
    response = client.post(
        f"/ui/admin/models/{newer}/promote",
        data={"csrf_token": csrf, "force": "true", "reason": "test models"},
    )
    assert response.status_code == 303
    assert f"Now serving {newer}" in client.get(response.headers["location"]).text
    assert ui.state.model is not None and ui.state.model.id == newer and registry.active_id() == newer
    response = client.post("/ui/admin/models/rollback", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert ui.state.model.id == tiny_model_id and registry.active_id() == tiny_model_id
    nothing = client.post("/ui/admin/models/rollback", data={"csrf_token": csrf})
    assert nothing.status_code == 409 and "nothing to roll back to" in nothing.text
    missing = client.post(
        "/ui/admin/models/nope/promote", data={"csrf_token": csrf, "force": "1", "reason": "x"}
    )
    assert missing.status_code == 404
    broken = store_tiny_model(registry)
    next(p for p in registry.path(broken).iterdir() if p.suffix == ".joblib").write_bytes(b"corrupted")
    rejected = client.post(
        f"/ui/admin/models/{broken}/promote", data={"csrf_token": csrf, "force": "true", "reason": "x"}
    )
    assert rejected.status_code == 422 and "cannot be served" in rejected.text
    assert ui.state.model.id == tiny_model_id
