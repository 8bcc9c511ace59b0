"""Break-glass routes: the public key, activating a sealed override, revoking it early.

All three need ``omni-secrets:break-glass``. The request carries only ciphertext; no response
carries a value.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from omni_secrets.api.deps import BreakGlassPrincipal, CorrelationId
from omni_secrets.api.schemas import BreakGlassActivated, BreakGlassRequest, PublicKeyResponse
from omni_secrets.api.state import services_of

router = APIRouter(prefix="/ops/apex-omni/secrets/break-glass", tags=["break-glass"])

_DISABLED: dict[int | str, dict[str, Any]] = {
    503: {"description": "BREAK_GLASS_DISABLED: no key pair is configured"}
}


@router.get(
    "/public-key",
    response_model=PublicKeyResponse,
    response_model_by_alias=True,
    responses=_DISABLED,
)
async def get_public_key(request: Request, _: BreakGlassPrincipal) -> PublicKeyResponse:
    """The X25519 public key (and its key id) to seal break-glass payloads to."""
    info = services_of(request).break_glass.public_key()
    return PublicKeyResponse(key_id=info.key_id, public_key=info.public_key)


@router.post(
    "",
    status_code=201,
    response_model=BreakGlassActivated,
    response_model_by_alias=True,
    responses={
        409: {"description": "REPLAY_DETECTED: the payload's nonce was used before"},
        422: {
            "description": (
                "TTL_TOO_LONG, VALIDATION_FAILED (TTL below 60 s, empty reason, unknown type), "
                "UNKNOWN_KEY_ID, CIPHERTEXT_INVALID, PAYLOAD_MISMATCH or PAYLOAD_EXPIRED"
            )
        },
        503: {
            "description": (
                "AUDIT_UNAVAILABLE (nothing activated) or BREAK_GLASS_DISABLED (no key pair)"
            )
        },
    },
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
    "/{overrideId}",
    status_code=204,
    response_class=Response,
    responses={
        404: {"description": "NOT_FOUND: unknown override, or already ended"},
        503: {"description": "UNAVAILABLE: the database cannot be reached (nothing changed)"},
    },
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
