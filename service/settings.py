"""Service settings, read from MODERATION_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration of one service process."""

    model_config = SettingsConfigDict(env_prefix="MODERATION_", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="where the registry and SQLite data live")
    registry_dir: Path | None = Field(
        default=None, description="model registry root (default data_dir/registry)"
    )
    max_batch: int = Field(default=128, ge=1, le=1024, description="most texts per /v1/moderate request")
    max_text_chars: int = Field(default=20_000, ge=1, description="longest accepted comment, in characters")

    @property
    def registry_path(self) -> Path:
        """Resolved registry root."""
        return self.registry_dir or self.data_dir / "registry"
