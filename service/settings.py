"""Service settings, read from MODERATION_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DATABASE_SCHEMES = ("sqlite", "postgresql")


class Settings(BaseSettings):
    """Configuration of one service process."""

    model_config = SettingsConfigDict(env_prefix="MODERATION_", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="where the registry and SQLite data live")
    registry_dir: Path | None = Field(
        default=None, description="model registry root (default data_dir/registry)"
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL, sqlite:///... or postgresql+psycopg://... "
        "(default sqlite:///<data_dir>/moderation.db)",
    )
    auto_migrate: bool | None = Field(
        default=None,
        description="apply database migrations at start-up (default: yes for SQLite, no for PostgreSQL, "
        "where `moderation db upgrade` does it)",
    )
    redis_url: str | None = Field(
        default=None, description="share the per-key rate limit between processes through this Redis"
    )
    max_batch: int = Field(default=128, ge=1, le=1024, description="most texts per /v1/moderate request")
    max_text_chars: int = Field(default=20_000, ge=1, description="longest accepted comment, in characters")
    max_body_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="largest accepted request body (413 beyond)"
    )
    claim_ttl_seconds: int = Field(default=300, ge=1, description="how long a moderator's claim lasts")
    rate_limit_per_second: float = Field(
        default=20.0, ge=0, description="sustained requests per second per API key (0: no limit)"
    )
    rate_limit_burst: int = Field(default=60, ge=1, description="requests a key may send at once")
    model_watch_seconds: float = Field(
        default=10.0, ge=0, description="how often to look for a model promoted by another process (0: never)"
    )
    webhooks_enabled: bool = Field(default=True, description="run the webhook delivery task")
    webhook_poll_seconds: float = Field(default=1.0, gt=0, description="how often the outbox is polled")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, description="timeout of one delivery")
    webhook_lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="how long a taken delivery is hidden from other workers; a process that dies "
        "mid-delivery leaves it to be retried after this (keep it above the timeout)",
    )
    webhook_backoff_seconds: float = Field(
        default=5.0, gt=0, description="delay before the first retry; doubles with each failure"
    )
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0, description="longest retry delay")
    webhook_max_attempts: int = Field(default=12, ge=1, description="attempts before a delivery is dropped")
    session_secret: SecretStr | None = Field(
        default=None,
        description="signs the web UI's session cookies, at least 32 characters (default: generated once "
        "and kept in data_dir/session_secret; set it when processes do not share a data_dir)",
    )
    session_max_age_seconds: int = Field(
        default=12 * 3600, ge=60, description="how long a web UI sign-in lasts"
    )
    undo_seconds: float = Field(
        default=10.0,
        ge=0,
        le=300,
        description="how long a moderator may undo a decision made in the web UI; the decision's "
        "webhook is held back that long",
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is not None and value.split(":", 1)[0].split("+", 1)[0] not in _DATABASE_SCHEMES:
            raise ValueError("database_url must be a sqlite:// or postgresql:// URL")
        return value

    @field_validator("session_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        secret = value.get_secret_value() if value is not None else None
        # Refuse short secrets and placeholders such as "x" * 32.
        if secret is not None and (len(secret) < 32 or len(set(secret)) < 8):
            raise ValueError("session_secret needs at least 32 characters, not a few repeated ones")
        return value

    @property
    def registry_path(self) -> Path:
        """Resolved registry root."""
        return self.registry_dir or self.data_dir / "registry"

    @property
    def database(self) -> str:
        """Resolved database URL."""
        return self.database_url or f"sqlite:///{self.data_dir / 'moderation.db'}"

    @property
    def migrate_on_start(self) -> bool:
        """Whether the lifespan applies migrations (SQLite by default)."""
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.database.startswith("sqlite")
