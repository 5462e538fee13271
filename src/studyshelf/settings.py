"""Settings: the only module that reads the environment."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET_KEY = "insecure-development-key-change-me"  # noqa: S105 - refused in production below


class Settings(BaseSettings):
    """Everything StudyShelf can be configured with (env prefix STUDYSHELF_)."""

    model_config = SettingsConfigDict(env_prefix="STUDYSHELF_", extra="forbid", env_file=None)

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path("./var")
    database_url: str | None = None
    storage_url: str | None = None
    warehouse_url: str | None = None
    redis_url: str | None = None
    secret_key: str = DEFAULT_SECRET_KEY
    base_url: str = "http://127.0.0.1:8000"
    admin_email: str = "admin@studyshelf.local"
    admin_password: str | None = None
    max_upload_bytes: int = Field(default=5 * 1024**3, ge=1)
    trash_retention_days: int = Field(default=30, ge=0)
    session_lifetime_hours: int = Field(default=12, ge=1)
    trusted_proxies: list[str] = Field(default_factory=list)
    login_max_failures: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)
    smtp_url: str | None = None
    scheduler_interval_seconds: int = Field(default=300, ge=0, description="0 turns the in-process scheduler off")

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        if self.environment == "production" and self.secret_key == DEFAULT_SECRET_KEY:
            raise ValueError(
                "STUDYSHELF_SECRET_KEY must be set to a long random value in production "
                f"(for example: {secrets.token_urlsafe(48)})"
            )
        if self.environment == "production" and len(self.secret_key) < 32:
            raise ValueError("STUDYSHELF_SECRET_KEY must be at least 32 characters in production")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'studyshelf.sqlite3').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        if self.storage_url:
            return self.storage_url
        return f"file://{(self.data_dir / 'blobs').resolve()}"

    @property
    def is_embedded_database(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")
