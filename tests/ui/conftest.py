"""Fixtures for the web UI: an in-process app for the fast tests, a real server and Chromium for the
browser tests.

Fast tests drive the UI with TestClient (one client per "browser", each with its own cookies) on
the tiny model. Browser tests run uvicorn in a thread on a free port with the shipped linear model
and drive Debian's Chromium through Playwright; they are skipped, with the reason, only when that
Chromium is not installed (CI installs it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from models.registry import Registry
from service.app import create_app
from service.auth import Role, create_key
from service.settings import Settings
from service.state import AppState
from service.storage import migrate
from service.storage.db import Database
from service.ui.devserver import ThreadedServer
from service.ui.screenshots import CHROMIUM_ARGS

SITE = "news"
OTHER_SITE = "sport"
CHROMIUM = os.environ.get("MODERATION_CHROMIUM", "/usr/bin/chromium")
KEY_SPECS: dict[str, tuple[Role, str | None, str]] = {
    "admin": (Role.admin, None, "Ada"),
    "moderator": (Role.moderator, None, "Mo"),
    "moderator2": (Role.moderator, None, "Nina"),
    "moderator_news": (Role.moderator, SITE, "Newsdesk"),
    "cms": (Role.cms, None, "CMS"),
}
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
SIGN_IN_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_database(tmp_path: Path) -> tuple[str, dict[str, str], dict[str, str]]:
    """A migrated SQLite database with one key per KEY_SPECS entry: (url, secrets, ids)."""
    url = f"sqlite:///{tmp_path / 'moderation.db'}"
    database = Database.from_url(url)
    migrate.upgrade(database.engine)
    with database.transaction() as repo:
        made = {name: create_key(repo, role, site, label) for name, (role, site, label) in KEY_SPECS.items()}
    database.dispose()
    return url, {n: k.secret for n, k in made.items()}, {n: k.id for n, k in made.items()}


def settings_for(tmp_path: Path, url: str, **overrides: Any) -> Settings:
    """Settings for a test app: no rate limit, no model watching, webhooks off unless asked."""
    options: dict[str, Any] = {
        "data_dir": tmp_path,
        "database_url": url,
        "webhooks_enabled": False,
        "rate_limit_per_second": 0,
        "model_watch_seconds": 0,
        **overrides,
    }
    return Settings(**options)


@dataclass
class UiApp:
    """An app with its keys; `browser()` gives a client with cookies of its own."""

    app: FastAPI
    keys: dict[str, str]
    key_ids: dict[str, str]
    clients: list[TestClient] = field(default_factory=list)

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.moderation
        return state

    @property
    def database(self) -> Database:
        assert self.state.database is not None
        return self.state.database

    def browser(self) -> TestClient:
        """A fresh client (no cookies), not following redirects."""
        client = TestClient(self.app, follow_redirects=False)
        self.clients.append(client)
        return client

    def api(self, method: str, path: str, who: str = "cms", **kwargs: Any) -> httpx.Response:
        """Call the /v1 API with a key."""
        client = self.clients[0]
        return client.request(method, path, headers={"Authorization": f"Bearer {self.keys[who]}"}, **kwargs)

    def submit(self, comment_id: str, text: str, site: str = SITE, **extra: Any) -> dict[str, Any]:
        """POST /v1/comments as the cms key."""
        response = self.api(
            "POST", "/v1/comments", json={"site": site, "id": comment_id, "text": text, **extra}
        )
        assert response.status_code in (200, 201), response.text
        body: dict[str, Any] = response.json()
        return body

    def comment(self, comment_id: str, site: str = SITE) -> dict[str, Any]:
        """GET /v1/comments/{id} as the admin key."""
        response = self.api("GET", f"/v1/comments/{comment_id}", "admin", params={"site": site})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def sign_in(self, who: str) -> tuple[TestClient, str]:
        """A client signed in with the key `who`, and its CSRF token."""
        client = self.browser()
        token = SIGN_IN_TOKEN.search(client.get("/ui/login").text)
        assert token is not None
        response = client.post("/ui/login", data={"key": self.keys[who], "csrf_token": token.group(1)})
        assert response.status_code == 303, response.text
        page = client.get("/ui/queue")
        assert page.status_code == 200, page.text
        csrf = CSRF_META.search(page.text)
        assert csrf is not None
        return client, csrf.group(1)


JSON = {"Accept": "application/json"}


@pytest.fixture
def make_ui(tmp_path: Path, registry: Registry, tiny_model_id: str) -> Iterator[Any]:
    """make_ui(**settings) -> UiApp on the tiny model and a fresh SQLite database."""
    entered: list[TestClient] = []

    def factory(**overrides: Any) -> UiApp:
        url, keys, ids = make_database(tmp_path)
        app = create_app(settings_for(tmp_path, url, **overrides), registry=registry)
        ui = UiApp(app=app, keys=keys, key_ids=ids)
        client = ui.browser()
        client.__enter__()  # runs the lifespan: model loaded, database open
        entered.append(client)
        return ui

    yield factory
    for client in entered:
        client.__exit__(None, None, None)


@pytest.fixture
def ui(make_ui: Any) -> UiApp:
    """The UI on the tiny model (undo window 10 s, webhooks off)."""
    app: UiApp = make_ui()
    return app


# ---- browser tests ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium binary; the browser tests skip, saying why, when it is missing."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Any]:
    """One headless Chromium for the session, driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Live:
    """A real server with the shipped model, its keys, and an HTTP client for the /v1 API."""

    server: ThreadedServer
    keys: dict[str, str]
    key_ids: dict[str, str]
    http: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url

    def submit(self, comment_id: str, text: str, site: str = SITE, **extra: Any) -> dict[str, Any]:
        response = self.http.post(
            "/v1/comments",
            json={"site": site, "id": comment_id, "text": text, **extra},
            headers={"Authorization": f"Bearer {self.keys['cms']}"},
        )
        assert response.status_code in (200, 201), response.text
        body: dict[str, Any] = response.json()
        return body

    def comment(self, comment_id: str, site: str = SITE) -> dict[str, Any]:
        response = self.http.get(
            f"/v1/comments/{comment_id}",
            params={"site": site},
            headers={"Authorization": f"Bearer {self.keys['admin']}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def make_live(tmp_path: Path, chromium: str) -> Iterator[Any]:
    """make_live(**settings) -> Live: uvicorn in a thread, SQLite in tmp_path, the shipped model."""
    started: list[Live] = []

    def factory(**overrides: Any) -> Live:
        url, keys, ids = make_database(tmp_path)
        settings = settings_for(tmp_path, url, **overrides)
        registry = Registry(tmp_path / "registry")
        # The flows below were written against the shipped linear model's scores (fast, stable).
        [linear] = [i.id for i in registry.list() if i.kind == "linear" and registry.is_shipped(i.id)]
        registry.promote(linear)
        server = ThreadedServer(create_app(settings, registry)).start()
        live = Live(server, keys, ids, httpx.Client(base_url=server.url, timeout=10))
        started.append(live)
        return live

    yield factory
    for live in started:
        live.http.close()
        live.server.stop()


@pytest.fixture
def live(make_live: Any) -> Live:
    """A real server with the default settings."""
    server: Live = make_live()
    return server
