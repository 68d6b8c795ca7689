"""The application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from models.errors import ModerationError
from models.labels import LABELS
from models.registry import Registry
from service.errors import install_error_handlers
from service.policy import Policy
from service.routes import health, moderate
from service.settings import Settings
from service.state import AppState

logger = logging.getLogger(__name__)

_LABEL_DOCS = "\n".join(f"- **{label.name}**: {label.definition}" for label in LABELS)


def create_app(settings: Settings | None = None, registry: Registry | None = None) -> FastAPI:
    """Build the FastAPI app; the lifespan loads the active model once."""
    settings = settings or Settings()
    registry = registry or Registry(settings.registry_path)
    state = AppState(settings=settings, registry=registry, policy=Policy())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            state.model = await run_in_threadpool(registry.load)
            logger.info("serving model %s", state.model.id)
        except ModerationError as exc:
            # Stay up so /healthz answers and /readyz explains; scoring routes return 503.
            state.load_error = str(exc)
            logger.error("no model loaded: %s", exc)
        yield

    app = FastAPI(
        title="Comment moderation service",
        version="0.1.0",
        description="Scores reader comments for these labels:\n\n" + _LABEL_DOCS,
        lifespan=lifespan,
    )
    app.state.moderation = state
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(moderate.router)
    return app
