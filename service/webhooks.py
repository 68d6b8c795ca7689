"""Webhooks: a durable outbox written with each decision, and the task that delivers it.

Each delivery is a POST of a JSON body (never the comment text) with

    X-Moderation-Timestamp: <unix seconds of this attempt>
    X-Moderation-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
    X-Moderation-Delivery: <outbox id, the same on every retry>

A receiver recomputes the HMAC over the raw body, compares in constant time and rejects old
timestamps. Failures are retried with exponential backoff (base * 2^(attempt-1), capped), up to
`webhook_max_attempts`; each attempt's status and error are visible to admins.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from service.settings import Settings
from service.storage.db import Database
from service.storage.repository import Repository
from service.storage.tables import CommentRow, OutboxRow, utcnow

logger = logging.getLogger(__name__)

EVENT_DECIDED = "comment.decided"
BATCH = 20


def new_secret() -> str:
    """A random webhook secret."""
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Moderation-Signature value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: int, body: bytes, signature: str) -> bool:
    """Whether `signature` is valid for `body` (what a receiver does)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def enqueue_decision(
    repo: Repository,
    comment: CommentRow,
    *,
    source: str,
    actor: str,
    override: bool,
    now: datetime,
    not_before: datetime | None = None,
) -> None:
    """Add a `comment.decided` delivery to the outbox, if the site has a webhook.

    `not_before` holds the delivery back (the web UI's undo window): until then it can be cancelled.
    """
    if repo.get_webhook(comment.site) is None:
        return
    payload = {
        "event": EVENT_DECIDED,
        "site": comment.site,
        "comment_id": comment.external_id,
        "status": comment.status,
        "decision": comment.decision,
        "flagged": comment.flagged,
        "reasons": comment.reasons,
        "model": comment.model_id,
        "source": source,
        "actor": actor,
        "override": override,
        "at": now.isoformat(),
    }
    repo.enqueue(
        OutboxRow(
            site=comment.site,
            event=EVENT_DECIDED,
            comment_id=comment.id,
            body=json.dumps(payload, separators=(",", ":"), sort_keys=True),
            state="pending",
            attempts=0,
            next_attempt_at=not_before or now,
            created_at=now,
        )
    )


def backoff(attempts: int, base: float, cap: float) -> timedelta:
    """Delay after the `attempts`-th failure."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class _Job:
    id: int
    site: str
    body: str
    attempts: int
    url: str | None
    secret: str | None


class WebhookDeliverer:
    """Polls the outbox and delivers what is due; several processes may run one each."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.database = database
        self.settings = settings
        self.client = client or httpx.AsyncClient(timeout=settings.webhook_timeout_seconds)
        self.clock = clock

    def _lease(self) -> list[_Job]:
        with self.database.transaction() as repo:
            jobs = []
            for row in repo.lease_due(
                self.clock(), BATCH, timedelta(seconds=self.settings.webhook_lease_seconds)
            ):
                hook = repo.get_webhook(row.site)
                jobs.append(
                    _Job(
                        row.id,
                        row.site,
                        row.body,
                        row.attempts,
                        hook.url if hook else None,
                        hook.secret if hook else None,
                    )
                )
            return jobs

    def _record(self, job: _Job, status: int | None, error: str | None) -> None:
        now = self.clock()
        delivered = error is None
        attempts = job.attempts + 1
        next_at: datetime | None = None
        if not delivered and job.url is not None and attempts < self.settings.webhook_max_attempts:
            next_at = now + backoff(
                attempts, self.settings.webhook_backoff_seconds, self.settings.webhook_backoff_max_seconds
            )
        with self.database.transaction() as repo:
            repo.record_delivery(
                job.id, now=now, delivered=delivered, status=status, error=error, next_attempt_at=next_at
            )
        if not delivered:
            logger.warning(
                "webhook delivery %d for site %s failed (attempt %d): %s", job.id, job.site, attempts, error
            )

    async def _deliver(self, job: _Job) -> None:
        if job.url is None or job.secret is None:
            await asyncio.to_thread(self._record, job, None, "the site has no webhook any more")
            return
        body = job.body.encode("utf-8")
        timestamp = int(self.clock().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "moderation-webhooks/1",
            "X-Moderation-Timestamp": str(timestamp),
            "X-Moderation-Signature": sign(job.secret, timestamp, body),
            "X-Moderation-Delivery": str(job.id),
        }
        status: int | None = None
        error: str | None = None
        try:
            response = await self.client.post(job.url, content=body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        await asyncio.to_thread(self._record, job, status, error)

    async def run_once(self) -> int:
        """Deliver one batch of due deliveries; returns how many were attempted."""
        jobs = await asyncio.to_thread(self._lease)
        await asyncio.gather(*(self._deliver(job) for job in jobs))
        return len(jobs)

    async def run(self, ready: Callable[[], bool] = lambda: True) -> None:
        """Deliver until cancelled, while `ready()` says the database is usable."""
        while True:
            try:
                attempted = await self.run_once() if await asyncio.to_thread(ready) else 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep delivering after a database hiccup
                logger.error("webhook delivery loop: %s", type(exc).__name__, exc_info=exc)
                attempted = 0
            if attempted < BATCH:
                await asyncio.sleep(self.settings.webhook_poll_seconds)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()
