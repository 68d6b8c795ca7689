from __future__ import annotations

from typing import Any

import pytest

from tests.service.conftest import SITE, Api

URL = f"/v1/sites/{SITE}/policy"


def test_unknown_site_gets_the_default_policy(api: Api) -> None:
    r = api.client.get(URL, headers=api.auth("admin"))
    assert r.status_code == 200
    body = r.json()
    assert body["source"] == "default" and body["policy"]["mode"] == "pre"
    assert body["policy"]["default_reject"] == 0.97 and body["updated_by"] is None


def test_policy_round_trip_and_effect(api_both: Api) -> None:
    api = api_both
    policy = {
        "mode": "post",
        "review": {"toxicity": 0.6},
        "reject": {"toxicity": 0.99999},
        "banned_words": ["Moron"],
        "suspect_words": ["council meeting"],
    }
    r = api.client.put(URL, json=policy, headers=api.auth("admin"))
    assert r.status_code == 200 and r.json()["source"] == "site"
    stored = api.client.get(URL, headers=api.auth("admin")).json()
    assert stored["policy"] == {**policy, "default_reject": 0.97} and stored["updated_by"].startswith("key:")

    flagged = api.submit("c1", "you stupid idiot")
    assert (flagged["status"], flagged["decision"]) == ("approved", "review")  # post-moderation
    assert api.submit("c2", "stupid MORON")["reasons"][0] == "banned_word:moron"
    suspect = api.submit("c3", "when is the council meeting")
    assert (suspect["decision"], suspect["reasons"]) == ("review", ["suspect_word:council meeting"])
    queue = api.client.get(
        "/v1/queue", params={"site": SITE, "sort": "oldest"}, headers=api.auth("moderator")
    ).json()
    assert [i["id"] for i in queue["items"]] == ["c1", "c3"]
    # Other sites keep the default.
    assert api.submit("c1", "you stupid idiot", site="elsewhere")["status"] == "pending"


@pytest.mark.parametrize(
    ("policy", "fragment"),
    [
        ({"review": {"sarcasm": 0.5}}, "unknown label"),
        ({"reject": {"toxicity": 1.5}}, "less than or equal to 1"),
        ({"review": {"toxicity": -0.1}}, "greater than or equal to 0"),
        ({"review": {"toxicity": 0.9}, "reject": {"toxicity": 0.8}}, "above its reject threshold"),
        ({"review": {"toxicity": 0.98}}, "above its reject threshold"),
        ({"mode": "sometimes"}, "mode"),
        ({"banned_words": ["!!!"]}, "letter or digit"),
        ({"banned_words": [""]}, "at least 1 character"),
        ({"extra": 1}, "extra"),
    ],
)
def test_invalid_policies_are_refused(api: Api, policy: dict[str, Any], fragment: str) -> None:
    r = api.client.put(URL, json=policy, headers=api.auth("admin"))
    assert r.status_code == 422 and r.json()["error"] == "validation_error"
    assert fragment in r.json()["detail"]
    assert api.client.get(URL, headers=api.auth("admin")).json()["source"] == "default"


@pytest.mark.parametrize("who", ["cms", "moderator"])
def test_policies_are_for_admins(api: Api, who: str) -> None:
    assert api.client.get(URL, headers=api.auth(who)).status_code == 403
    assert api.client.put(URL, json={}, headers=api.auth(who)).status_code == 403
    assert api.client.get(URL).status_code == 401
