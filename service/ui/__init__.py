"""The moderators' web UI under /ui: server-rendered pages with a little JavaScript.

Jinja2 templates render every page on the server (autoescaped), a small script adds the keyboard
shortcuts, claim-on-open, bulk actions and undo, and every form also works without it. Nothing
to build: the templates and static files ship in this package.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from service.state import AppState
from service.ui.deps import UiContext
from service.ui.render import STATIC_DIR, make_templates
from service.ui.routes import admin, auth, comments, dashboard, queue
from service.ui.session import SessionCodec


def install_ui(app: FastAPI, state: AppState) -> None:
    """Mount the UI's routes and static files on `app` (the session secret is read on first use)."""
    app.state.ui = UiContext(templates=make_templates(), codec=SessionCodec(state.settings))
    for module in (auth, queue, comments, dashboard, admin):
        app.include_router(module.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
