"""The dashboard: queue depth, decisions, flag rates, the model's precision in practice."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from service.deps import DatabaseDep, StateDep
from service.state import AppState
from service.storage.db import Database
from service.ui import dashboard
from service.ui.deps import SessionDep, UiDep
from service.ui.routing import UiRoute
from service.ui.session import Session

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)


def _build(state: AppState, database: Database, session: Session) -> dashboard.Dashboard:
    model = state.model  # read once: a promotion meanwhile does not mix two models' figures
    with database.transaction() as repo:
        return dashboard.build(
            repo, state.registry, model.id if model else None, state.clock(), site=session.principal.site
        )


@router.get("/dashboard")
async def dashboard_page(
    request: Request, ui: UiDep, session: SessionDep, state: StateDep, database: DatabaseDep
) -> Response:
    """Figures for the whole service (or the key's site)."""
    board = await run_in_threadpool(_build, state, database, session)
    return ui.page(request, "dashboard.html", {"active": "dashboard", "board": board}, session=session)
