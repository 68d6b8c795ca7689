"""Comments submitted by the CMS."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from service import comments
from service.deps import CmsKey, DatabaseDep, ReaderKey, StateDep
from service.schemas import CommentCreate, CommentDetail, CommentId, CommentOut, ErrorBody, SiteName
from service.views import comment_detail, comment_out

router = APIRouter(prefix="/v1/comments", tags=["comments"])

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 413, 422, 429, 503)
}


@router.post(
    "",
    response_model=CommentOut,
    status_code=201,
    responses={200: {"model": CommentOut, "description": "already stored with this text"}, **_ERRORS},
)
async def submit_comment(
    body: CommentCreate, response: Response, state: StateDep, database: DatabaseDep, principal: CmsKey
) -> CommentOut:
    """Score, decide and store a comment (201); the same (site, id) and text again returns it (200)."""
    principal.check_site(body.site)
    comments.check_text(body.text, state.settings.max_text_chars)
    model = state.model  # read once: a promotion during this request does not change it
    submission = await run_in_threadpool(
        comments.submit, database, model, state.load_error, body, principal, state.clock, state.batcher
    )
    if submission.changed:
        state.metrics.count_decision(submission.comment.flagged, submission.comment.decision, "auto")
    if not submission.created:
        response.status_code = 200
    return comment_out(submission.comment)


@router.get("/{comment_id}", response_model=CommentDetail, responses=_ERRORS)
def read_comment(
    comment_id: CommentId,
    site: Annotated[SiteName, Query(description="the comment's site")],
    database: DatabaseDep,
    principal: ReaderKey,
) -> CommentDetail:
    """A stored comment with its text, claim and full history."""
    principal.check_site(site)
    with database.transaction() as repo:
        row = comments.get_comment(repo, site, comment_id)
        return comment_detail(row, repo.get_claim(row.id), repo.history(row.id))
