"""The review queue page and the moderator's actions: claim, release, decide (one or many), undo.

Each action answers JSON to the page's script (Accept: application/json) and redirects back to
the page otherwise, so every form also works without JavaScript. The business rules are those
of service.review, shared with the /v1 API; decisions made here hold their webhook back for
`undo_seconds`, so that `undo` can still take them back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from pydantic import TypeAdapter, ValidationError
from starlette.responses import JSONResponse, RedirectResponse, Response

from models.errors import InputDataError
from models.labels import validate_labels
from service import review
from service.comments import get_comment
from service.deps import DatabaseDep, StateDep
from service.errors import NotFoundError, PermissionDeniedError, ReviewConflictError
from service.schemas import CommentId, DecisionRequest, SiteName
from service.state import AppState
from service.storage.db import Database
from service.ui import views
from service.ui.deps import PostSessionDep, SessionDep, UiDep
from service.ui.render import safe_next, url_with, wants_json
from service.ui.routing import UiRoute
from service.ui.session import Session

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)

PAGE_SIZE = 25
MAX_BULK = 200
_SITE = TypeAdapter(SiteName)
_COMMENT_ID = TypeAdapter(CommentId)

Items = Annotated[list[str], Form(max_length=MAX_BULK)]
# What a redirect after a decision or undo tells the page: what was done to which comments.
DoneQuery = Annotated[Literal["approve", "reject", "undo"] | None, Query()]
ItemsQuery = Annotated[list[str], Query(max_length=MAX_BULK)]
FailedQuery = Annotated[int, Query(ge=0, le=MAX_BULK)]


def parse_ref(ref: str) -> tuple[str, str]:
    """'site/id' (how forms name a comment) as (site, id)."""
    site, _, comment_id = ref.partition("/")
    try:
        return _SITE.validate_python(site), _COMMENT_ID.validate_python(comment_id)
    except ValidationError:
        raise InputDataError(f"{ref[:100]!r} does not name a comment as site/id") from None


def decision_request(
    decision: Literal["approve", "reject"], reason: str, labels: list[str], flagged: list[str], override: bool
) -> DecisionRequest:
    """The API's decision body; `labels` count as a correction only when they differ from the flags."""
    validate_labels([*labels, *flagged])
    corrected = sorted(set(labels)) if set(labels) != set(flagged) else None
    return DecisionRequest(
        decision=decision, reason=reason.strip() or None, labels=corrected, override=override
    )


@router.get("/queue")
def queue_page(
    request: Request,
    ui: UiDep,
    session: SessionDep,
    state: StateDep,
    database: DatabaseDep,
    site: Annotated[SiteName | None, Query()] = None,
    label: Annotated[str | None, Query(max_length=64)] = None,
    sort: Annotated[Literal["priority", "oldest"], Query()] = "priority",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    done: DoneQuery = None,
    items: ItemsQuery = [],  # noqa: B006 - FastAPI copies defaults
    failed: FailedQuery = 0,
) -> Response:
    """Comments awaiting review on one site, a page at a time."""
    principal = session.principal
    label = label or None
    if label is not None:
        validate_labels([label])
    with database.transaction() as repo:
        depths = repo.queue_depths()
        sites = [principal.site] if principal.site else sorted(set(repo.sites()) | set(depths))
    if site is None:
        busiest = sorted(depths, key=lambda s: (-depths[s], s))
        site = principal.site or (busiest[0] if busiest else sites[0] if sites else None)
    entries: list[views.Entry] = []
    next_cursor = None
    if site is not None:
        principal.check_site(site)
        result = review.list_queue(database, site, sort=sort, limit=PAGE_SIZE, label=label, cursor=cursor)
        next_cursor = result.next_cursor
        with database.transaction() as repo:
            entries = views.entries(repo, result.comments, result.claims, session, state.clock())
    here = url_with("/ui/queue", site=site, label=label, sort=sort)
    return ui.page(
        request,
        "queue.html",
        {
            "active": "queue",
            "site": site,
            "sites": sites,
            "depths": depths,
            "label": label,
            "sort": sort,
            "cursor": cursor,
            "entries": entries,
            "next_url": url_with(here, cursor=next_cursor) if next_cursor else None,
            "here": here,
            "notice": views.notice_text(done, len(items), failed),
            "undo_items": items if done in ("approve", "reject") else [],
            "undo_seconds": state.settings.undo_seconds,
            "claim_seconds": state.settings.claim_ttl_seconds,
        },
        session=session,
    )


def _claim_json(info: views.ClaimInfo) -> dict[str, Any]:
    return {
        "mine": info.mine,
        "holder": info.holder,
        "until": info.until.isoformat(),
        "message": info.message,
    }


@router.post("/comments/{site}/{comment_id}/claim")
def claim(
    site: SiteName,
    comment_id: CommentId,
    request: Request,
    session: PostSessionDep,
    state: StateDep,
    database: DatabaseDep,
) -> Response:
    """Claim a comment on opening it; 409 with the holder when another moderator has it."""
    session.principal.check_site(site)
    now = state.clock()
    ttl = timedelta(seconds=state.settings.claim_ttl_seconds)
    try:
        _, row = review.claim(database, site, comment_id, session.principal, ttl, now)
        info, status = views.ClaimInfo(session.display, True, row.expires_at), 200
    except ReviewConflictError:
        with database.transaction() as repo:
            comment = get_comment(repo, site, comment_id)
            held = repo.get_claim(comment.id)
            holder = views.claim_info(held, repo.keys_by_id([held.key_id] if held else []), session, now)
        if holder is None:  # not awaiting review any more: a plain conflict
            raise
        info, status = holder, 409
    if wants_json(request):
        return JSONResponse(_claim_json(info), status_code=status)
    return RedirectResponse(f"/ui/comments/{site}/{comment_id}", status_code=303)


@router.post("/comments/{site}/{comment_id}/release")
def release(
    site: SiteName,
    comment_id: CommentId,
    request: Request,
    session: PostSessionDep,
    state: StateDep,
    database: DatabaseDep,
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Give a claimed comment back to the queue."""
    session.principal.check_site(site)
    review.release(database, site, comment_id, session.principal, state.clock())
    if wants_json(request):
        return JSONResponse({"released": True})
    return RedirectResponse(safe_next(next), status_code=303)


def _decide(
    state: AppState, database: Database, session: Session, site: str, comment_id: str, body: DecisionRequest
) -> dict[str, str]:
    session.principal.check_site(site)
    hold = timedelta(seconds=state.settings.undo_seconds)
    row = review.decide(database, site, comment_id, session.principal, body, state.clock(), hold=hold)
    state.metrics.count_decision(row.flagged, row.decision, "moderator")
    return {"ref": f"{site}/{comment_id}", "site": site, "id": comment_id, "status": row.status}


def _answer(
    request: Request,
    next_url: str,
    done: Literal["approve", "reject", "undo"],
    succeeded: list[dict[str, str]],
    failed: list[dict[str, str]],
    undo_seconds: float,
) -> Response:
    if wants_json(request):
        return JSONResponse(
            {
                "done": done,
                "succeeded": succeeded,
                "failed": failed,
                "undo_seconds": undo_seconds if done != "undo" else 0,
                "message": views.notice_text(done, len(succeeded), len(failed)),
            }
        )
    target = url_with(
        safe_next(next_url), done=done, items=[s["ref"] for s in succeeded], failed=len(failed) or None
    )
    return RedirectResponse(target, status_code=303)


@router.post("/comments/{site}/{comment_id}/decision")
def decide(
    site: SiteName,
    comment_id: CommentId,
    request: Request,
    session: PostSessionDep,
    state: StateDep,
    database: DatabaseDep,
    decision: Annotated[Literal["approve", "reject"], Form()],
    reason: Annotated[str, Form(max_length=2000)] = "",
    labels: Annotated[list[str], Form()] = [],  # noqa: B006
    flagged: Annotated[list[str], Form()] = [],  # noqa: B006
    override: Annotated[bool, Form()] = False,
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Approve or reject one comment (409 when another moderator holds it or already decided it)."""
    body = decision_request(decision, reason, labels, flagged, override)
    done = _decide(state, database, session, site, comment_id, body)
    return _answer(request, next, decision, [done], [], state.settings.undo_seconds)


@router.post("/decisions")
def decide_many(
    request: Request,
    session: PostSessionDep,
    state: StateDep,
    database: DatabaseDep,
    decision: Annotated[Literal["approve", "reject"], Form()],
    items: Items = [],  # noqa: B006
    reason: Annotated[str, Form(max_length=2000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Approve or reject a selection; each comment is decided on its own (conflicts are reported)."""
    if not items:
        raise InputDataError("select at least one comment first")
    body = decision_request(decision, reason, [], [], False)
    succeeded, failed = [], []
    for ref in items:
        site, comment_id = parse_ref(ref)
        try:
            succeeded.append(_decide(state, database, session, site, comment_id, body))
        except (ReviewConflictError, NotFoundError, PermissionDeniedError) as exc:
            failed.append({"ref": ref, "detail": str(exc)})
    return _answer(request, next, decision, succeeded, failed, state.settings.undo_seconds)


@router.post("/undo")
def undo(
    request: Request,
    session: PostSessionDep,
    state: StateDep,
    database: DatabaseDep,
    items: Items = [],  # noqa: B006
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Take back one's own decisions made in the last `undo_seconds`; the comments return to the queue."""
    window = timedelta(seconds=state.settings.undo_seconds)
    ttl = timedelta(seconds=state.settings.claim_ttl_seconds)
    succeeded, failed = [], []
    for ref in items:
        site, comment_id = parse_ref(ref)
        try:
            session.principal.check_site(site)
            row = review.undo(database, site, comment_id, session.principal, window, ttl, state.clock())
            succeeded.append({"ref": ref, "site": site, "id": comment_id, "status": row.status})
        except (ReviewConflictError, NotFoundError, PermissionDeniedError) as exc:
            failed.append({"ref": ref, "detail": str(exc)})
    return _answer(request, next, "undo", succeeded, failed, 0)
