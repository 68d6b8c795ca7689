"""The process-wide objects the app factory and lifespan create (no import-time globals)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from models.registry import Registry
from models.scoring import Model
from service.batching import Batcher
from service.metrics import Metrics
from service.ratelimit import RateLimiter
from service.settings import Settings
from service.storage import migrate
from service.storage.db import Database
from service.storage.tables import utcnow

RECHECK_SECONDS = 1.0


@dataclass
class AppState:
    """What routes need: settings, registry, the served model, the database, limiter and metrics.

    `model` is replaced as a whole by a promotion; a request reads it once (ModelDep), so a
    request in flight finishes with the model it started with.
    """

    settings: Settings
    registry: Registry
    metrics: Metrics
    limiter: RateLimiter
    model: Model | None = None
    load_error: str | None = None
    database: Database | None = None
    database_error: str | None = "database not open"
    clock: Callable[[], datetime] = field(default=utcnow)
    # Started by the app's lifespan; until then (and after) it scores in the caller's thread.
    batcher: Batcher = field(default_factory=Batcher)
    _checked_at: float = field(default=0.0, repr=False)
    _check_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def swap_model(self, model: Model) -> None:
        """Serve `model` from now on."""
        self.model = model
        self.load_error = None
        self.metrics.set_model(model.id)

    def check_database(self, *, force: bool = False) -> bool:
        """Whether the database is ready; a database that was not is checked again (once a second).

        So the service recovers by itself when PostgreSQL comes up after it, or once
        `moderation db upgrade` has run.
        """
        if self.database is None:
            return False
        if self.database_error is None:
            return True
        with self._check_lock:
            now = time.monotonic()
            if self.database_error is not None and (force or now - self._checked_at >= RECHECK_SECONDS):
                self._checked_at = now
                self.database_error = migrate.prepare(self.database.engine, self.settings.migrate_on_start)
        return self.database_error is None
