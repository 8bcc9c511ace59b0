"""The app factory. Nothing is built at import time: ``create_app(settings)`` builds everything.

:func:`install` adds the routes to an app and wraps its lifespan in
:func:`omni_secrets.bootstrap.run_services` (build, then start), which puts the resulting
``Services`` on ``app.state.services``; routes reach it through ``api.state.services_of``.
:func:`create_app` is a fresh app with :func:`install` applied (the service's own entry point).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from typing import Any

from fastapi import FastAPI

from omni_secrets import __version__
from omni_secrets.api import break_glass, consumer, health, refresh, rotation, secrets
from omni_secrets.api.auth import Hs256Verifier, JwksVerifier, TokenVerifier
from omni_secrets.api.auth_policy import AuthPolicySource, PolicyVerifier
from omni_secrets.api.docs import OPENAPI_PATH, docs_enabled, install_docs
from omni_secrets.api.errors import install_error_handlers
from omni_secrets.api.fast_path import FastPath
from omni_secrets.api.middleware import RequestContextMiddleware
from omni_secrets.api.openapi import install_openapi
from omni_secrets.api.paths import STATUS_PATH
from omni_secrets.api.probes import probe_handlers
from omni_secrets.api.reload_signal import reload_on_sighup
from omni_secrets.api.secrets import status_fast_path
from omni_secrets.api.status_document import StatusRenderer
from omni_secrets.api.token_cache import CachingVerifier
from omni_secrets.bootstrap import Overrides, run_services
from omni_secrets.config import AuthMode, Settings


def build_token_verifier(settings: Settings) -> TokenVerifier:
    """The verifier of the configured auth mode.

    Raises:
        ValueError: no auth mode is configured (the environment guard refuses that earlier).
    """
    jwks_url = settings.effective_auth_jwks_url
    if settings.auth_mode is AuthMode.JWKS and jwks_url is not None:
        return JwksVerifier(
            jwks_url=jwks_url,
            audience=settings.auth_audience,
            issuer=settings.effective_auth_issuers or None,
        )
    if settings.auth_mode is AuthMode.HS256 and settings.auth_hs256_secret is not None:
        return Hs256Verifier(
            secret=settings.auth_hs256_secret.get_secret_value(),
            audience=settings.auth_audience,
            issuer=settings.auth_issuer,
        )
    raise ValueError("no auth mode configured")


ROUTERS = (
    health.router,
    secrets.router,
    refresh.router,
    consumer.router,
    rotation.router,
    break_glass.router,
)


def install(app: FastAPI, settings: Settings, *, overrides: Overrides | None = None) -> None:
    """Add omni-secrets to a host FastAPI ``app``: its routes, and its services in the lifespan.

    The host's own lifespan keeps running, nested inside ours: the services are built and started
    before the host's start-up code and stopped after its shutdown code (a mounted sub-app's
    lifespan would never run, hence this). ``app.state.services`` holds the running
    :class:`~omni_secrets.bootstrap.Services` (the cache is ``app.state.services.cache``).
    With ``OMNI_AUTH_POLICY_FILE`` set, ``SIGHUP`` reloads that file while the app runs
    (``app.state.auth_policy`` is the :class:`~omni_secrets.api.auth_policy.AuthPolicySource`).

    .. warning:: The error handlers are registered on the whole app, so the host's own routes
       answer errors with the contract's envelope too, and the request-id middleware wraps them.
       Once started, ``GET /healthz``, ``/readyz``, ``/metrics`` and the status route are
       answered by :class:`~omni_secrets.api.fast_path.FastPath` before the host's routes are
       consulted.

    Args:
        app: the host app (before it starts).
        settings: the validated configuration.
        overrides: adapters to use instead of the real ones (tests, ``dev``).

    Raises:
        ValueError: no auth mode is configured.
        AuthPolicyInvalid: ``OMNI_AUTH_POLICY_FILE`` cannot be read or is invalid.
    """
    auth_policy = AuthPolicySource(settings.auth_policy_file)
    app.state.settings = settings
    app.state.auth_policy = auth_policy
    app.state.status_renderer = StatusRenderer()
    # Verified tokens are remembered until exp (bounded, api/token_cache.py); the policy's grants
    # are applied outside the cache, on every call, so a SIGHUP reload takes effect at once.
    app.state.token_verifier = PolicyVerifier(
        CachingVerifier(build_token_verifier(settings)), auth_policy
    )
    # add_middleware puts the last added outermost: the request context wraps the probe path.
    app.add_middleware(
        FastPath,
        state=app.state,
        handlers={**probe_handlers(), STATUS_PATH: status_fast_path},
        routes=[*health.router.routes, *secrets.router.routes],
    )
    app.add_middleware(RequestContextMiddleware)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    host_lifespan = app.router.lifespan_context

    def policy_reloads() -> AbstractContextManager[object]:
        # Without a policy file there is nothing to reload: leave SIGHUP to the host.
        if auth_policy.path is None:
            return nullcontext()
        return reload_on_sighup(auth_policy.reload)

    @asynccontextmanager
    async def lifespan(host: FastAPI) -> AsyncIterator[Any]:
        async with run_services(settings, overrides) as services:
            app.state.services = services
            try:
                with policy_reloads():
                    async with host_lifespan(host) as state:
                        yield state
            finally:
                app.state.services = None

    app.router.lifespan_context = lifespan


def create_app(settings: Settings, *, overrides: Overrides | None = None) -> FastAPI:
    """Build the ASGI app for ``settings`` (already checked by the environment guard).

    Args:
        settings: the validated configuration.
        overrides: adapters to use instead of the real ones (tests, ``dev``).

    Raises:
        AuthPolicyInvalid: ``OMNI_AUTH_POLICY_FILE`` cannot be read or is invalid.
    """
    with_docs = docs_enabled(settings.environment)
    app = FastAPI(
        title="omni-secrets",
        version=__version__,
        description="Serves ApeX Omni exchange credentials from Google Secret Manager.",
        openapi_url=OPENAPI_PATH if with_docs else None,
        docs_url=None,  # replaced by install_docs: same pages, assets served locally
        redoc_url=None,
    )
    # Starlette answers /path/ with a redirect to /path built from the Host header (an open
    # redirect for whoever controls that header): unknown paths are a 404, with or without "/".
    app.router.redirect_slashes = False
    if with_docs:
        install_docs(app)
    install(app, settings, overrides=overrides)
    install_openapi(app)
    return app
