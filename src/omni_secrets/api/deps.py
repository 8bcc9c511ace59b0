"""FastAPI dependencies: the authenticated principal per scope, and the app's services.

``Annotated`` aliases keep routes short: a route that takes ``principal: ReadPrincipal`` requires
a valid token with ``omni-secrets:read``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from omni_secrets.api.auth import Principal, Scope, TokenVerifier, Unauthenticated
from omni_secrets.api.middleware import request_id_of

MISSING_TOKEN = "missing bearer token"  # noqa: S105 (a message, not a credential)


def _verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier


async def authenticate(request: Request) -> Principal:
    """The caller's principal from ``Authorization: Bearer <jwt>``.

    Raises:
        Unauthenticated: no bearer token, or one that does not verify.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(MISSING_TOKEN)
    principal = await _verifier(request).verify(token.strip())
    request.scope.setdefault("state", {})["principal_subject"] = principal.subject
    return principal


def require(scope: Scope) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that authenticates and then requires ``scope`` (403 without it)."""

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
        principal.require(scope)
        return principal

    dependency.__name__ = f"require_{scope.name.lower()}"
    return dependency


async def correlation_id(request: Request) -> str:
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, per request.
    return request_id_of(request.scope)


require_read = require(Scope.READ)
"""The status route's check, also run by its fast path (``api/secrets.status_fast_path``)."""

ReadPrincipal = Annotated[Principal, Depends(require_read)]
RotatePrincipal = Annotated[Principal, Depends(require(Scope.ROTATE))]
BreakGlassPrincipal = Annotated[Principal, Depends(require(Scope.BREAK_GLASS))]
RefreshPrincipal = Annotated[Principal, Depends(require(Scope.REFRESH))]
ApexPrincipal = Annotated[Principal, Depends(require(Scope.APEX_READ))]
CorrelationId = Annotated[str, Depends(correlation_id)]
