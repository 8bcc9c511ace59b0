"""The app factory. Nothing is built at import time: ``create_app(settings)`` builds everything.

The lifespan runs :func:`omni_secrets.bootstrap.run_services` and puts the resulting
``Services`` on ``app.state.services``; routes reach it through ``api.state.services_of``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from omni_secrets import __version__
from omni_secrets.api import breakglass, consumer, health, refresh, rotation, secrets
from omni_secrets.api.auth import Hs256Verifier, JwksVerifier, TokenVerifier
from omni_secrets.api.errors import install_error_handlers
from omni_secrets.api.middleware import RequestContextMiddleware
from omni_secrets.api.openapi import install_openapi
from omni_secrets.bootstrap import Overrides, run_services
from omni_secrets.config import AuthMode, Settings


def build_token_verifier(settings: Settings) -> TokenVerifier:
    """The verifier of the configured auth mode.

    Raises:
        ValueError: no auth mode is configured (the environment guard refuses that earlier).
    """
    if settings.auth_mode is AuthMode.JWKS and settings.auth_jwks_url is not None:
        return JwksVerifier(
            jwks_url=str(settings.auth_jwks_url),
            audience=settings.auth_audience,
            issuer=settings.auth_issuer,
        )
    if settings.auth_mode is AuthMode.HS256 and settings.auth_hs256_secret is not None:
        return Hs256Verifier(
            secret=settings.auth_hs256_secret.get_secret_value(),
            audience=settings.auth_audience,
            issuer=settings.auth_issuer,
        )
    raise ValueError("no auth mode configured")


def create_app(settings: Settings, *, overrides: Overrides | None = None) -> FastAPI:
    """Build the ASGI app for ``settings`` (already checked by the environment guard).

    Args:
        settings: the validated configuration.
        overrides: adapters to use instead of the real ones (tests, ``dev``).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with run_services(settings, overrides) as services:
            app.state.services = services
            yield
            app.state.services = None

    app = FastAPI(
        title="omni-secrets",
        version=__version__,
        lifespan=lifespan,
        description="Serves ApeX Omni exchange credentials from Google Secret Manager.",
    )
    app.state.settings = settings
    app.state.token_verifier = build_token_verifier(settings)
    app.add_middleware(RequestContextMiddleware)
    install_error_handlers(app)
    for router in (
        health.router,
        secrets.router,
        refresh.router,
        consumer.router,
        rotation.router,
        breakglass.router,
    ):
        app.include_router(router)
    install_openapi(app)
    return app
