"""Per-site settings: moderation policy and webhook (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.deps import AdminKey, DatabaseDep, StateDep
from service.errors import WebhookNotFoundError
from service.schemas import ErrorBody, PolicyDocument, PolicyOut, SiteName, WebhookIn, WebhookOut
from service.views import webhook_out
from service.webhooks import new_secret

router = APIRouter(prefix="/v1/sites/{site}", tags=["sites"])

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 422, 429)
}


@router.get("/policy", response_model=PolicyOut, responses=_ERRORS)
def read_policy(site: SiteName, database: DatabaseDep, principal: AdminKey) -> PolicyOut:
    """The policy that applies to a site (the default one until a site policy is set)."""
    with database.transaction() as repo:
        row = repo.get_policy(site)
        if row is None:
            return PolicyOut(site=site, source="default", policy=PolicyDocument())
        return PolicyOut(
            site=site,
            source="site",
            policy=PolicyDocument.model_validate(row.policy),
            updated_by=row.updated_by,
            updated_at=row.updated_at,
        )


@router.put("/policy", response_model=PolicyOut, responses=_ERRORS)
def write_policy(
    site: SiteName, body: PolicyDocument, state: StateDep, database: DatabaseDep, principal: AdminKey
) -> PolicyOut:
    """Set a site's thresholds, mode and word lists; applies to comments submitted from now on."""
    with database.transaction() as repo:
        row = repo.put_policy(site, body.model_dump(mode="json"), principal.actor, state.clock())
        return PolicyOut(
            site=site, source="site", policy=body, updated_by=row.updated_by, updated_at=row.updated_at
        )


@router.get("/webhook", response_model=WebhookOut, responses=_ERRORS)
def read_webhook(site: SiteName, database: DatabaseDep, principal: AdminKey) -> WebhookOut:
    """A site's webhook (without its secret)."""
    with database.transaction() as repo:
        row = repo.get_webhook(site)
        if row is None:
            raise WebhookNotFoundError(f"site {site!r} has no webhook")
        return webhook_out(row)


@router.put("/webhook", response_model=WebhookOut, responses=_ERRORS)
def write_webhook(
    site: SiteName, body: WebhookIn, state: StateDep, database: DatabaseDep, principal: AdminKey
) -> WebhookOut:
    """Set where a site's decisions are POSTed; the answer shows the signing secret once."""
    secret = body.secret or new_secret()
    with database.transaction() as repo:
        return webhook_out(repo.put_webhook(site, str(body.url), secret, state.clock()), with_secret=True)


@router.delete("/webhook", status_code=204, response_class=Response, responses=_ERRORS)
def delete_webhook(site: SiteName, database: DatabaseDep, principal: AdminKey) -> Response:
    """Stop sending a site's decisions (pending deliveries fail)."""
    with database.transaction() as repo:
        if not repo.delete_webhook(site):
            raise WebhookNotFoundError(f"site {site!r} has no webhook")
    return Response(status_code=204)
