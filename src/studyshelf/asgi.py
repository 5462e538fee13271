"""Entry point for ASGI servers started as separate worker processes: `studyshelf.asgi:create`."""

from __future__ import annotations

from fastapi import FastAPI

from studyshelf.app import create_app
from studyshelf.core.logs import configure_logging
from studyshelf.settings import Settings


def create() -> FastAPI:
    """Build the app from the environment (each worker process calls this once)."""
    settings = Settings()
    configure_logging(log_format=settings.log_format, personal_data=settings.log_personal_data)
    return create_app(settings)
