"""Sign-in, sessions, CSRF and roles of the web UI (TestClient, no browser)."""

from __future__ import annotations

import re
import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from service.auth import revoke_key
from service.ui.session import SESSION_COOKIE, SIGN_IN_COOKIE
from tests.ui.conftest import JSON, OTHER_SITE, SIGN_IN_TOKEN, SITE, UiApp


def _sign_in_token(client: object) -> str:
    page = client.get("/ui/login")  # type: ignore[attr-defined]
    match = SIGN_IN_TOKEN.search(page.text)
    assert match is not None
    return match.group(1)


def test_pages_without_a_session_redirect_to_sign_in(ui: UiApp) -> None:
    client = ui.browser()
    for path in ("/ui/queue?site=news", "/ui/dashboard", "/ui/comments/news/c1", "/ui/admin/keys"):
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/ui/login?next=%2Fui%2F")
    assert client.get("/ui").headers["location"] == "/ui/queue"
    # The page's script gets JSON instead of a redirect.
    response = client.post("/ui/comments/news/c1/claim", headers=JSON)
    assert response.status_code == 401 and response.json()["sign_in"] == "/ui/login"


def test_sign_in_sets_an_http_only_session_without_the_key(ui: UiApp) -> None:
    client = ui.browser()
    token = _sign_in_token(client)
    response = client.post(
        "/ui/login", data={"key": ui.keys["moderator"], "csrf_token": token, "next": "/ui/dashboard"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/ui/dashboard"
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/ui" in cookie
    # mk_<id>_<secret>: the secret is urlsafe base64 and may hold "_" itself, so split off two parts only.
    secret = ui.keys["moderator"].split("_", 2)[2]
    assert len(secret) >= 40 and ui.keys["moderator"] not in cookie and secret not in cookie
    page = client.get("/ui/dashboard")
    assert page.status_code == 200 and "Mo (key " in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_sign_in_refuses_cms_unknown_and_revoked_keys(ui: UiApp) -> None:
    client = ui.browser()
    token = _sign_in_token(client)
    response = client.post("/ui/login", data={"key": ui.keys["cms"], "csrf_token": token})
    assert response.status_code == 403 and "Only moderator and admin keys" in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    response = client.post("/ui/login", data={"key": "mk_nope_nope", "csrf_token": token})
    assert response.status_code == 401 and "unknown or was revoked" in response.text
    with ui.database.transaction() as repo:
        revoke_key(repo, ui.key_ids["moderator2"])
    response = client.post("/ui/login", data={"key": ui.keys["moderator2"], "csrf_token": token})
    assert response.status_code == 401


def test_sign_in_needs_its_csrf_token(ui: UiApp) -> None:
    client = ui.browser()
    _sign_in_token(client)
    assert client.post("/ui/login", data={"key": ui.keys["moderator"]}).status_code == 403
    response = client.post("/ui/login", data={"key": ui.keys["moderator"], "csrf_token": "forged"})
    assert response.status_code == 403 and "security token" in response.text
    stranger = ui.browser()  # a cross-site form post carries no sign-in cookie
    token = _sign_in_token(client)
    stranger.cookies.clear()
    assert (
        stranger.post("/ui/login", data={"key": ui.keys["moderator"], "csrf_token": token}).status_code == 403
    )


def test_sign_in_only_redirects_inside_the_ui(ui: UiApp) -> None:
    client = ui.browser()
    token = _sign_in_token(client)
    for target in ("https://evil.example/", "//evil.example/ui", "/v1/queue"):
        response = client.post(
            "/ui/login", data={"key": ui.keys["moderator"], "csrf_token": token, "next": target}
        )
        assert response.headers["location"] == "/ui/queue", target


def test_a_revoked_key_stops_working_on_the_next_request(ui: UiApp) -> None:
    client, _ = ui.sign_in("moderator")
    assert client.get("/ui/queue").status_code == 200
    with ui.database.transaction() as repo:
        revoke_key(repo, ui.key_ids["moderator"])
    response = client.get("/ui/queue")
    assert response.status_code == 303 and response.headers["location"].startswith("/ui/login")


def test_forged_and_expired_sessions_are_refused(ui: UiApp, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = ui.sign_in("moderator")
    value = client.cookies[SESSION_COOKIE]
    forged = URLSafeTimedSerializer("not-the-secret" * 4, salt="moderation-ui").dumps(
        {"kind": "session", "k": ui.key_ids["admin"], "h": "", "c": "x"}
    )
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, forged, path="/ui")
    assert client.get("/ui/queue").status_code == 303
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, value, path="/ui")
    assert client.get("/ui/queue").status_code == 200
    later = int(time.time()) + 13 * 3600  # sessions last 12 h by default
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
    assert client.get("/ui/queue").status_code == 303


def test_the_sign_in_cookie_is_not_a_session(ui: UiApp) -> None:
    client = ui.browser()
    client.get("/ui/login")
    sign_in = client.cookies[SIGN_IN_COOKIE]
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, sign_in, path="/ui")
    assert client.get("/ui/queue").status_code == 303


def test_sign_out_needs_the_token_and_ends_the_session(ui: UiApp) -> None:
    client, csrf = ui.sign_in("moderator")
    assert client.post("/ui/logout").status_code == 403
    response = client.post("/ui/logout", data={"csrf_token": csrf})
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    assert client.get("/ui/queue").status_code == 303


def test_every_post_needs_the_session_csrf_token(ui: UiApp) -> None:
    ui.submit("c1", "you stupid idiot")
    client, csrf = ui.sign_in("moderator")
    other, other_csrf = ui.sign_in("moderator2")
    posts = [
        ("/ui/comments/news/c1/claim", {}),
        ("/ui/comments/news/c1/release", {}),
        ("/ui/comments/news/c1/decision", {"decision": "reject"}),
        ("/ui/decisions", {"decision": "reject", "items": "news/c1"}),
        ("/ui/undo", {"items": "news/c1"}),
    ]
    for path, data in posts:
        assert client.post(path, data=data).status_code == 403, path
        assert client.post(path, data={**data, "csrf_token": other_csrf}).status_code == 403, path
        assert client.post(path, data=data, headers={"X-CSRF-Token": "forged", **JSON}).status_code == 403
    assert ui.comment("c1")["status"] == "pending"
    assert (
        client.post("/ui/comments/news/c1/claim", headers={"X-CSRF-Token": csrf, **JSON}).status_code == 200
    )
    assert other.get("/ui/queue").status_code == 200


def test_moderators_cannot_open_admin_pages(ui: UiApp) -> None:
    client, csrf = ui.sign_in("moderator")
    for path in (
        "/ui/admin",
        "/ui/admin/sites",
        "/ui/admin/sites/news",
        "/ui/admin/keys",
        "/ui/admin/models",
    ):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "needs a key with role admin" in response.text
    response = client.post("/ui/admin/keys", data={"role": "admin", "csrf_token": csrf})
    assert response.status_code == 403
    response = client.post("/ui/admin/sites/news/policy", data={"mode": "post", "csrf_token": csrf})
    assert response.status_code == 403
    assert "/ui/admin" not in client.get("/ui/queue").text  # no admin links either


def test_a_site_scoped_moderator_sees_only_its_site(ui: UiApp) -> None:
    ui.submit("c1", "you stupid idiot", site=OTHER_SITE)
    ui.submit("c2", "you stupid idiot", site=SITE)
    client, csrf = ui.sign_in("moderator_news")
    page = client.get("/ui/queue")
    assert page.status_code == 200 and f'value="{OTHER_SITE}"' not in page.text and "Comment c2" in page.text
    assert client.get(f"/ui/queue?site={OTHER_SITE}").status_code == 403
    assert client.get(f"/ui/comments/{OTHER_SITE}/c1").status_code == 403
    response = client.post(
        f"/ui/comments/{OTHER_SITE}/c1/decision", data={"decision": "reject", "csrf_token": csrf}
    )
    assert response.status_code == 403
    response = client.post(
        "/ui/decisions",
        data={"decision": "reject", "items": f"{OTHER_SITE}/c1", "csrf_token": csrf},
        headers=JSON,
    )
    assert response.json()["failed"][0]["ref"] == f"{OTHER_SITE}/c1"
    assert ui.comment("c1", site=OTHER_SITE)["status"] == "pending"


def test_ui_routes_are_not_in_the_api_schema(ui: UiApp) -> None:
    paths = ui.browser().get("/openapi.json").json()["paths"]
    assert paths and not [path for path in paths if path.startswith("/ui")]


def test_static_files_are_served(ui: UiApp) -> None:
    client = ui.browser()
    script = client.get("/ui/static/ui.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert not re.search(r"\.innerHTML|insertAdjacentHTML|outerHTML|document\.write", script.text)
    assert client.get("/ui/static/ui.css").status_code == 200
    assert client.get("/ui/static/../../app.py").status_code == 404
