"""Ops routes of the secrets themselves: status and the ApeX credential self-test."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from omni_secrets.api.deps import CorrelationId, ReadPrincipal, RotatePrincipal
from omni_secrets.api.errors import error_responses
from omni_secrets.api.schemas import SelfTestResponse, StatusResponse
from omni_secrets.api.state import services_of
from omni_secrets.api.status_document import render_status
from omni_secrets.domain import errors

router = APIRouter(prefix="/ops/apex-omni/secrets", tags=["secrets"])


@router.get("/status", response_model=StatusResponse, response_model_by_alias=True)
async def get_status(
    request: Request, principal: ReadPrincipal, correlation_id: CorrelationId
) -> Response:
    """Cache, rotation and break-glass state per secret type; never a value."""
    view = await services_of(request).secrets.status(
        actor=principal.actor, correlation_id=correlation_id
    )
    # Rendered directly (StatusResponse documents it): see api/status_document.py.
    return Response(render_status(view), media_type="application/json")


@router.post(
    "/self-test",
    response_model=SelfTestResponse,
    response_model_by_alias=True,
    responses=error_responses(errors.SecretsUnavailable),
)
async def self_test(
    request: Request, principal: RotatePrincipal, correlation_id: CorrelationId
) -> SelfTestResponse:
    """Sign ``GET /api/v3/account`` with the served credentials; ok false when ApeX refuses."""
    result = await services_of(request).secrets.self_test(
        actor=principal.actor, correlation_id=correlation_id
    )
    return SelfTestResponse.model_validate(result, from_attributes=True)
