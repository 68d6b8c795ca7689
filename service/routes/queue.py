"""The review queue: list, claim, release, decide."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from models.labels import validate_labels
from service import review
from service.deps import DatabaseDep, ModeratorKey, StateDep
from service.schemas import (
    ClaimOut,
    CommentDetail,
    CommentId,
    DecisionRequest,
    ErrorBody,
    QueuePage,
    SiteName,
)
from service.views import claim_out, comment_detail, queue_item

router = APIRouter(prefix="/v1", tags=["review"])

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422, 429)
}
SiteQuery = Annotated[SiteName, Query(description="the comment's site")]


@router.get("/queue", response_model=QueuePage, responses=_ERRORS)
def list_queue(
    site: SiteQuery,
    state: StateDep,
    database: DatabaseDep,
    principal: ModeratorKey,
    label: Annotated[str | None, Query(description="only comments flagged with this label")] = None,
    sort: Annotated[
        Literal["priority", "oldest"], Query(description="highest score or oldest first")
    ] = "priority",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=500, description="next_cursor of the previous page")
    ] = None,
) -> QueuePage:
    """Comments awaiting review on a site, a page at a time."""
    principal.check_site(site)
    if label is not None:
        validate_labels([label])
    result = review.list_queue(database, site, sort=sort, limit=limit, label=label, cursor=cursor)
    now = state.clock()
    items = []
    for row in result.comments:
        held = result.claims.get(row.id)
        items.append(queue_item(row, held if held and held.expires_at > now else None))
    return QueuePage(items=items, next_cursor=result.next_cursor)


@router.post("/comments/{comment_id}/claim", response_model=ClaimOut, responses=_ERRORS)
def claim_comment(
    comment_id: CommentId, site: SiteQuery, state: StateDep, database: DatabaseDep, principal: ModeratorKey
) -> ClaimOut:
    """Lease a comment for review; 409 while another moderator holds it."""
    principal.check_site(site)
    ttl = timedelta(seconds=state.settings.claim_ttl_seconds)
    comment, claim = review.claim(database, site, comment_id, principal, ttl, state.clock())
    return claim_out(comment, claim)


@router.delete("/comments/{comment_id}/claim", status_code=204, response_class=Response, responses=_ERRORS)
def release_claim(
    comment_id: CommentId, site: SiteQuery, state: StateDep, database: DatabaseDep, principal: ModeratorKey
) -> Response:
    """Give a claimed comment back to the queue."""
    principal.check_site(site)
    review.release(database, site, comment_id, principal, state.clock())
    return Response(status_code=204)


@router.post("/comments/{comment_id}/decision", response_model=CommentDetail, responses=_ERRORS)
def decide(
    comment_id: CommentId,
    site: SiteQuery,
    body: DecisionRequest,
    state: StateDep,
    database: DatabaseDep,
    principal: ModeratorKey,
) -> CommentDetail:
    """Approve or reject a comment; a second moderator decision needs override: true."""
    principal.check_site(site)
    row = review.decide(database, site, comment_id, principal, body, state.clock())
    state.metrics.count_decision(row.flagged, row.decision, "moderator")
    with database.transaction() as repo:
        return comment_detail(row, None, repo.history(row.id))
