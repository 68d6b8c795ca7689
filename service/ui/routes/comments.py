"""A comment's page: text, scores, claim, decision form, full history and webhook deliveries."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.comments import get_comment
from service.deps import DatabaseDep, StateDep
from service.schemas import CommentId, SiteName
from service.ui import views
from service.ui.deps import SessionDep, UiDep
from service.ui.render import url_with
from service.ui.routes.queue import DoneQuery, FailedQuery, ItemsQuery
from service.ui.routing import UiRoute

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)


@router.get("/comments/{site}/{comment_id}")
def comment_page(
    site: SiteName,
    comment_id: CommentId,
    request: Request,
    ui: UiDep,
    session: SessionDep,
    state: StateDep,
    database: DatabaseDep,
    done: DoneQuery = None,
    items: ItemsQuery = [],  # noqa: B006 - FastAPI copies defaults
    failed: FailedQuery = 0,
) -> Response:
    """One comment with everything known about it."""
    session.principal.check_site(site)
    now = state.clock()
    with database.transaction() as repo:
        row = get_comment(repo, site, comment_id)
        claim = repo.get_claim(row.id)
        entry = views.entries(repo, [row], {row.id: claim} if claim else {}, session, now)[0]
        history = views.history(repo, repo.history(row.id))
        deliveries = [(d, views.delivery_state(d, now)) for d in repo.comment_deliveries(row.id)]
        reviewer = (
            views.key_name(row.reviewed_by, repo.keys_by_id([row.reviewed_by])) if row.reviewed_by else None
        )
        has_webhook = repo.get_webhook(site) is not None
    return ui.page(
        request,
        "comment.html",
        {
            "active": "queue",
            "entry": entry,
            "history": history,
            "deliveries": deliveries,
            "has_webhook": has_webhook,
            "reviewer": reviewer,
            "back": url_with("/ui/queue", site=site),
            "notice": views.notice_text(done, len(items), failed),
            "undo_items": items if done in ("approve", "reject") else [],
            "undo_seconds": state.settings.undo_seconds,
            "claim_seconds": state.settings.claim_ttl_seconds,
        },
        session=session,
    )
