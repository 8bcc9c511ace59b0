"""The app factory. Nothing is built at import time: ``create_app(settings)`` builds everything."""

from __future__ import annotations

from fastapi import FastAPI

from omni_secrets import __version__
from omni_secrets.api import health
from omni_secrets.config import Settings


def create_app(settings: Settings) -> FastAPI:
    """Build the ASGI app for ``settings`` (already checked by the environment guard)."""
    app = FastAPI(title="omni-secrets", version=__version__)
    app.state.settings = settings
    app.include_router(health.router)
    return app
