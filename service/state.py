"""The process-wide objects the lifespan creates (no import-time globals)."""

from __future__ import annotations

from dataclasses import dataclass

from models.registry import Registry
from models.scoring import Model
from service.policy import Policy
from service.settings import Settings


@dataclass
class AppState:
    """What routes need: settings, the registry and the currently served model."""

    settings: Settings
    registry: Registry
    policy: Policy
    model: Model | None = None
    load_error: str | None = None
