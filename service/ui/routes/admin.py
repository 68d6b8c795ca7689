"""Admin pages: site policies and webhooks, API keys, models (admin keys only).

They write through the same functions and schemas as the /v1 API: PolicyDocument and WebhookIn
validate, auth.create_key / revoke_key manage keys, and a promotion is POST
/v1/admin/models/{id}/promote's own code (promotion gate, registry, hot swap into this process).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from models.errors import ArtifactError, ModerationError
from models.labels import LABEL_NAMES
from service.auth import Role, create_key, revoke_key
from service.deps import DatabaseDep, StateDep
from service.errors import ModelRejectedError, WebhookNotFoundError, error_status
from service.routes import admin as api_admin
from service.schemas import PolicyDocument, PromoteRequest, SiteName, WebhookIn
from service.state import AppState
from service.storage.db import Database
from service.ui import views
from service.ui.deps import AdminDep, AdminPostDep, UiDep
from service.ui.render import url_with
from service.ui.routing import UiRoute
from service.ui.session import Session
from service.webhooks import new_secret

router = APIRouter(prefix="/ui/admin", route_class=UiRoute, include_in_schema=False)

THRESHOLD_KINDS = ("review", "reject")


@router.get("")
def admin_home(session: AdminDep) -> Response:
    """The sites page is the admin home."""
    return RedirectResponse("/ui/admin/sites", status_code=303)


# ---- sites: policy and webhook ------------------------------------------------------------


@router.get("/sites")
def sites_page(
    request: Request,
    ui: UiDep,
    session: AdminDep,
    database: DatabaseDep,
    site: Annotated[SiteName | None, Query()] = None,
) -> Response:
    """Every known site with its policy and webhook; open one by name."""
    if site is not None:
        return RedirectResponse(f"/ui/admin/sites/{site}", status_code=303)
    with database.transaction() as repo:
        depths = repo.queue_depths()
        rows = [
            (name, repo.get_policy(name), repo.get_webhook(name), depths.get(name, 0))
            for name in repo.sites()
        ]
    return ui.page(request, "admin_sites.html", {"active": "sites", "rows": rows}, session=session)


def policy_fields(document: PolicyDocument) -> dict[str, str]:
    """A policy as the form's field values."""
    fields = {
        "mode": document.mode.value,
        "default_reject": f"{document.default_reject:g}",
        "banned_words": "\n".join(document.banned_words),
        "suspect_words": "\n".join(document.suspect_words),
    }
    for kind in THRESHOLD_KINDS:
        for label, value in getattr(document, kind).items():
            fields[f"{kind}_{label}"] = f"{value:g}"
    return fields


def policy_from_form(form: FormData) -> tuple[PolicyDocument | None, dict[str, str], list[str]]:
    """(document or None, the submitted values, problems) from the policy form."""
    fields = {name: value.strip() for name, value in form.items() if isinstance(value, str)}
    problems: list[str] = []
    document: dict[str, Any] = {
        "mode": fields.get("mode", "pre"),
        "review": {},
        "reject": {},
        "banned_words": [w.strip() for w in fields.get("banned_words", "").splitlines() if w.strip()],
        "suspect_words": [w.strip() for w in fields.get("suspect_words", "").splitlines() if w.strip()],
    }
    numbers = [("default_reject", None, None)] + [
        (f"{kind}_{label}", kind, label) for kind in THRESHOLD_KINDS for label in LABEL_NAMES
    ]
    for name, kind, label in numbers:
        raw = fields.get(name, "")
        if not raw:
            continue
        try:
            value = float(raw)
        except ValueError:
            problems.append(f"{name.replace('_', ' ')}: {raw[:20]!r} is not a number")
            continue
        if kind is None:
            document["default_reject"] = value
        else:
            document[kind][label] = value
    if problems:
        return None, fields, problems
    try:
        return PolicyDocument.model_validate(document), fields, []
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()))
            problems.append(f"{where + ': ' if where else ''}{error.get('msg', 'invalid')}")
        return None, fields, problems


def _site_page(
    request: Request,
    ui: UiDep,
    session: Session,
    state: AppState,
    database: Database,
    site: str,
    *,
    fields: dict[str, str] | None = None,
    problems: list[str] | None = None,
    notice: str | None = None,
    secret: str | None = None,
    webhook_problem: str | None = None,
    status: int = 200,
) -> Response:
    now = state.clock()
    with database.transaction() as repo:
        policy = repo.get_policy(site)
        document = PolicyDocument.model_validate(policy.policy) if policy else PolicyDocument()
        webhook = repo.get_webhook(site)
        deliveries = [(d, views.delivery_state(d, now)) for d in repo.deliveries(site, 50)]
    model = state.model
    return ui.page(
        request,
        "admin_site.html",
        {
            "active": "sites",
            "site": site,
            "policy": policy,
            "fields": fields if fields is not None else policy_fields(document),
            "problems": problems or [],
            "model_thresholds": model.info.thresholds if model else {},
            "identity_thresholds": (
                dict(model.info.identity_cut.thresholds) if model and model.info.identity_cut else {}
            ),
            "default_reject": PolicyDocument().default_reject,
            "webhook": webhook,
            "deliveries": deliveries,
            "notice": notice,
            "secret": secret,
            "webhook_problem": webhook_problem,
        },
        session=session,
        status=status,
    )


@router.get("/sites/{site}")
def site_page(
    site: SiteName,
    request: Request,
    ui: UiDep,
    session: AdminDep,
    state: StateDep,
    database: DatabaseDep,
    saved: Annotated[Literal["policy", "webhook-deleted"] | None, Query()] = None,
) -> Response:
    """A site's policy form, webhook and recent deliveries."""
    notice = {
        "policy": "Policy saved: it applies to comments submitted from now on.",
        "webhook-deleted": "Webhook removed.",
    }.get(saved or "")
    return _site_page(request, ui, session, state, database, site, notice=notice)


@router.post("/sites/{site}/policy")
async def save_policy(
    site: SiteName, request: Request, ui: UiDep, session: AdminPostDep, state: StateDep, database: DatabaseDep
) -> Response:
    """Save a site's thresholds, mode and word lists (422 with the problems when invalid)."""
    document, fields, problems = policy_from_form(await request.form())
    if document is None:
        return await run_in_threadpool(
            _site_page,
            request,
            ui,
            session,
            state,
            database,
            site,
            fields=fields,
            problems=problems,
            status=422,
        )

    def save() -> None:
        with database.transaction() as repo:
            repo.put_policy(site, document.model_dump(mode="json"), session.principal.actor, state.clock())

    await run_in_threadpool(save)
    return RedirectResponse(url_with(f"/ui/admin/sites/{site}", saved="policy"), status_code=303)


@router.post("/sites/{site}/webhook")
def save_webhook(
    site: SiteName,
    request: Request,
    ui: UiDep,
    session: AdminPostDep,
    state: StateDep,
    database: DatabaseDep,
    url: Annotated[str, Form(max_length=2000)] = "",
    secret: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Set the site's webhook; the page shows the signing secret this once."""
    try:
        body = WebhookIn(url=url.strip(), secret=secret.strip() or None)  # type: ignore[arg-type]
    except ValidationError as exc:
        problem = "; ".join(str(e.get("msg", "invalid")) for e in exc.errors())
        return _site_page(request, ui, session, state, database, site, webhook_problem=problem, status=422)
    chosen = body.secret or new_secret()
    with database.transaction() as repo:
        repo.put_webhook(site, str(body.url), chosen, state.clock())
    return _site_page(request, ui, session, state, database, site, notice="Webhook saved.", secret=chosen)


@router.post("/sites/{site}/webhook/delete")
def delete_webhook(site: SiteName, session: AdminPostDep, database: DatabaseDep) -> Response:
    """Stop sending the site's decisions."""
    with database.transaction() as repo:
        if not repo.delete_webhook(site):
            raise WebhookNotFoundError(f"site {site!r} has no webhook")
    return RedirectResponse(url_with(f"/ui/admin/sites/{site}", saved="webhook-deleted"), status_code=303)


# ---- API keys -----------------------------------------------------------------------------


def _keys_page(
    request: Request,
    ui: UiDep,
    session: Session,
    database: Database,
    *,
    created: Any = None,
    notice: str | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    with database.transaction() as repo:
        keys = repo.api_keys()
    return ui.page(
        request,
        "admin_keys.html",
        {"active": "keys", "keys": keys, "created": created, "notice": notice, "problem": problem},
        session=session,
        status=status,
    )


@router.get("/keys")
def keys_page(
    request: Request,
    ui: UiDep,
    session: AdminDep,
    database: DatabaseDep,
    revoked: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Every API key (only hashes are stored, so keys cannot be shown again)."""
    notice = f"Key {revoked} revoked: it stops working on its next request." if revoked else None
    return _keys_page(request, ui, session, database, notice=notice)


@router.post("/keys")
def create_key_action(
    request: Request,
    ui: UiDep,
    session: AdminPostDep,
    database: DatabaseDep,
    role: Annotated[Role, Form()],
    site: Annotated[str, Form(max_length=200)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Create a key; the page shows it once."""
    try:
        with database.transaction() as repo:
            created = create_key(repo, role, site.strip() or None, name.strip() or None)
    except ModerationError as exc:
        return _keys_page(request, ui, session, database, problem=str(exc), status=422)
    return _keys_page(request, ui, session, database, created=created, status=201)


@router.post("/keys/{key_id}/revoke")
def revoke_key_action(key_id: str, session: AdminPostDep, database: DatabaseDep) -> Response:
    """Revoke a key."""
    with database.transaction() as repo:
        revoke_key(repo, key_id)
    return RedirectResponse(url_with("/ui/admin/keys", revoked=key_id), status_code=303)


# ---- models -------------------------------------------------------------------------------


def rollback_and_serve(state: AppState) -> str:
    """Reactivate the previously active model and serve it; returns its id."""
    current = state.registry.active_id()
    restored = state.registry.rollback()
    try:
        state.swap_model(state.registry.load(restored))
    except ArtifactError as exc:
        state.registry.promote(current)  # do not leave an unloadable model active
        raise ModelRejectedError(f"model {restored} cannot be served: {exc}") from exc
    return restored


def _models_page(
    request: Request,
    ui: UiDep,
    session: Session,
    state: AppState,
    *,
    notice: str | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    registry = state.registry
    try:
        active: str | None = registry.active_id()
    except ModerationError:
        active = None
    models = list(reversed(registry.list()))
    served = state.model.id if state.model else None
    return ui.page(
        request,
        "admin_models.html",
        {
            "active": "models",
            "models": models,
            "active_id": active,
            "served": served,
            "shipped": {m.id for m in models if registry.is_shipped(m.id)},
            "notice": notice,
            "problem": problem,
        },
        session=session,
        status=status,
    )


@router.get("/models")
def models_page(
    request: Request,
    ui: UiDep,
    session: AdminDep,
    state: StateDep,
    changed: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The registry's models, with promote and rollback."""
    return _models_page(request, ui, session, state, notice=f"Now serving {changed}." if changed else None)


@router.post("/models/{model_id}/promote")
async def promote(
    model_id: str,
    request: Request,
    ui: UiDep,
    session: AdminPostDep,
    state: StateDep,
    force: Annotated[bool, Form()] = False,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Promote a model through the API's own promotion (gate, registry, hot swap)."""
    try:
        options = PromoteRequest(force=force, reason=reason.strip() or None)
        await api_admin.promote_model(model_id, state, session.principal, options)
    except (ModerationError, ValidationError) as exc:
        if isinstance(exc, ValidationError):
            status, detail = 422, "; ".join(str(e.get("msg", "invalid")) for e in exc.errors())
        else:
            status, detail = error_status(exc)[0], str(exc)
        return await run_in_threadpool(
            _models_page,
            request,
            ui,
            session,
            state,
            problem=f"{model_id} was not promoted: {detail}",
            status=status,
        )
    return RedirectResponse(url_with("/ui/admin/models", changed=model_id), status_code=303)


@router.post("/models/rollback")
async def rollback(request: Request, ui: UiDep, session: AdminPostDep, state: StateDep) -> Response:
    """Serve the previously active model again."""
    try:
        restored = await run_in_threadpool(rollback_and_serve, state)
    except ModerationError as exc:
        return await run_in_threadpool(
            _models_page, request, ui, session, state, problem=f"No rollback: {exc}", status=409
        )
    return RedirectResponse(url_with("/ui/admin/models", changed=restored), status_code=303)
