"""The application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from models.errors import ModerationError
from models.labels import LABELS
from models.registry import Registry
from service.bodylimit import BodySizeLimitMiddleware
from service.errors import install_error_handlers
from service.metrics import Metrics, MetricsMiddleware
from service.ratelimit import make_rate_limiter
from service.routes import admin, comments, compat_openai, health, moderate, perspective, queue, sites
from service.settings import Settings
from service.state import AppState
from service.storage.db import Database
from service.ui import install_ui
from service.webhooks import WebhookDeliverer

logger = logging.getLogger(__name__)

_LABEL_DOCS = "\n".join(f"- **{label.name}**: {label.definition}" for label in LABELS)

_DESCRIPTION = f"""Scores reader comments, stores them with a decision and runs the review queue.

Every /v1 route needs `Authorization: Bearer <API key>` (keys are made with
`moderation keys create --role cms|moderator|admin [--site SITE]`): **cms** keys submit and read
comments and may use /v1/moderate, **moderator** keys work the review queue, **admin** keys may do
everything. Errors are JSON `{{"error": code, "detail": message}}`.

Labels:

{_LABEL_DOCS}
"""


def _queue_depths(state: AppState) -> Callable[[], dict[str, int]]:
    def depths() -> dict[str, int]:
        if state.database is None or state.database_error is not None:
            return {}
        with state.database.transaction() as repo:
            return repo.queue_depths()

    return depths


def _load_active(state: AppState) -> None:
    try:
        state.swap_model(state.registry.load())
        logger.info("serving model %s", state.model.id if state.model else None)
    except ModerationError as exc:
        # Stay up so /healthz answers and /readyz explains; scoring routes return 503.
        state.load_error = str(exc)
        logger.error("no model loaded: %s", exc)


async def _watch_active_model(state: AppState) -> None:
    """Follow promotions made by another process (another worker, or `moderation models promote`)."""
    failed: str | None = None
    while True:
        await asyncio.sleep(state.settings.model_watch_seconds)
        active: str | None = None
        try:
            active = await run_in_threadpool(state.registry.active_id)
            if active in (failed, state.model.id if state.model else None):
                continue
            state.swap_model(await run_in_threadpool(state.registry.load, active))
            logger.info("now serving model %s, promoted elsewhere", active)
        except ModerationError as exc:
            failed = active
            logger.error("cannot serve the active model: %s", exc)


def _open_database(state: AppState) -> None:
    state.database = Database.from_url(state.settings.database)
    if not state.check_database(force=True):
        logger.error("%s", state.database_error)


def create_app(settings: Settings | None = None, registry: Registry | None = None) -> FastAPI:
    """Build the FastAPI app; the lifespan loads the model, opens the database, starts webhooks."""
    settings = settings or Settings()
    registry = registry or Registry(settings.registry_path)
    metrics = Metrics()
    limiter = make_rate_limiter(settings.rate_limit_per_second, settings.rate_limit_burst, settings.redis_url)
    state = AppState(settings=settings, registry=registry, metrics=metrics, limiter=limiter)
    metrics.watch_queue(_queue_depths(state))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(_load_active, state)
        await run_in_threadpool(_open_database, state)
        assert state.database is not None
        state.batcher.start()
        tasks: list[asyncio.Task[None]] = []

        def start(coroutine: Coroutine[Any, Any, None], name: str) -> None:
            tasks.append(asyncio.create_task(coroutine, name=name))

        deliverer = WebhookDeliverer(state.database, settings, clock=lambda: state.clock())
        if settings.webhooks_enabled:
            start(deliverer.run(ready=state.check_database), "webhook-delivery")
        if settings.model_watch_seconds > 0:
            start(_watch_active_model(state), "model-watch")
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await deliverer.aclose()
            await run_in_threadpool(state.batcher.close)
            state.database.dispose()

    app = FastAPI(
        title="Comment moderation service",
        version="0.2.0",
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.moderation = state
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    for module in (health, moderate, comments, queue, sites, admin, compat_openai, perspective):
        app.include_router(module.router)
    install_ui(app, state)
    return app
