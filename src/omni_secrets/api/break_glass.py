"""Break-glass routes: the public key, activating a sealed override, revoking it early.

All three need ``omni-secrets:break-glass``. The request carries only ciphertext; no response
carries a value.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from omni_secrets.api import paths
from omni_secrets.api.deps import BreakGlassPrincipal, CorrelationId
from omni_secrets.api.errors import error_responses
from omni_secrets.api.schemas import BreakGlassActivated, BreakGlassRequest, PublicKeyResponse
from omni_secrets.api.state import services_of
from omni_secrets.domain import errors

router = APIRouter(tags=["break-glass"])


@router.get(
    paths.BREAK_GLASS_PUBLIC_KEY_PATH,
    response_model=PublicKeyResponse,
    response_model_by_alias=True,
    responses=error_responses(errors.BreakGlassDisabled),
)
async def get_public_key(request: Request, _: BreakGlassPrincipal) -> PublicKeyResponse:
    """The X25519 public key (and its key id) to seal break-glass payloads to."""
    info = services_of(request).break_glass.public_key()
    return PublicKeyResponse(key_id=info.key_id, public_key=info.public_key)


@router.post(
    paths.BREAK_GLASS_PATH,
    status_code=201,
    response_model=BreakGlassActivated,
    response_model_by_alias=True,
    responses=error_responses(
        errors.ReplayDetected,
        errors.TtlTooLong,
        errors.InvalidInput,
        errors.UnknownKeyId,
        errors.CiphertextInvalid,
        errors.PayloadMismatch,
        errors.PayloadExpired,
        errors.AuditUnavailable,
        errors.BreakGlassDisabled,
    ),
)
async def activate(
    request: Request,
    body: BreakGlassRequest,
    principal: BreakGlassPrincipal,
    correlation_id: CorrelationId,
) -> BreakGlassActivated:
    """Serve the sealed value for ``secretType`` instead of GSM for ``ttlSeconds`` (<= 30 min)."""
    activated = await services_of(request).break_glass.activate(
        secret_type=body.secret_type,
        key_id=body.key_id,
        ciphertext=body.ciphertext,
        ttl_seconds=body.ttl_seconds,
        reason=body.reason,
        ticket=body.ticket,
        actor=principal.actor,
        correlation_id=correlation_id,
    )
    return BreakGlassActivated(
        override_id=activated.override_id,
        secret_type=activated.secret_type,
        activated_at=activated.activated_at,
        expires_at=activated.expires_at,
    )


@router.delete(
    paths.BREAK_GLASS_OVERRIDE_PATH,
    status_code=204,
    response_class=Response,
    responses=error_responses(errors.OverrideNotFound, errors.DatabaseUnavailable),
)
async def revoke(
    request: Request,
    override_id: Annotated[str, Path(alias="overrideId")],
    principal: BreakGlassPrincipal,
    correlation_id: CorrelationId,
) -> Response:
    """End an active override early; the type reverts to GSM."""
    await services_of(request).break_glass.revoke(
        override_id, actor=principal.actor, correlation_id=correlation_id
    )
    return Response(status_code=204)
