"""Entry point for ASGI servers started as separate worker processes: `studyshelf.asgi:create`."""

from __future__ import annotations

from fastapi import FastAPI

from studyshelf.app import create_app
from studyshelf.settings import Settings


def create() -> FastAPI:
    """Build the app from the environment (each worker process calls this once)."""
    return create_app(Settings())
