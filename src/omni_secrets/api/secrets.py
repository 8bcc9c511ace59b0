"""Ops routes of the secrets themselves: status and the ApeX credential self-test."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response

from omni_secrets.api import paths
from omni_secrets.api.auth import Principal
from omni_secrets.api.deps import CorrelationId, ReadPrincipal, RotatePrincipal, require_read
from omni_secrets.api.errors import error_responses
from omni_secrets.api.middleware import request_id_of
from omni_secrets.api.schemas import SelfTestResponse, StatusResponse
from omni_secrets.api.state import services_of
from omni_secrets.api.status_document import StatusRenderer
from omni_secrets.domain import errors

if TYPE_CHECKING:
    from omni_secrets.bootstrap import Services

router = APIRouter(tags=["secrets"])


@router.get(paths.STATUS_PATH, response_model=StatusResponse, response_model_by_alias=True)
async def get_status(
    request: Request, principal: ReadPrincipal, correlation_id: CorrelationId
) -> Response:
    """Cache, rotation and break-glass state per secret type; never a value."""
    return await _status_response(request, services_of(request), principal, correlation_id)


async def status_fast_path(services: Services, request: Request) -> Response:
    """``get_status`` for :class:`~omni_secrets.api.fast_path.FastPath`: the same checks in the
    same order (token, then scope), without FastAPI's dependency solving."""
    principal = await require_read(request)
    return await _status_response(request, services, principal, request_id_of(request.scope))


async def _status_response(
    request: Request, services: Services, principal: Principal, correlation_id: str
) -> Response:
    view = await services.secrets.status(actor=principal.actor, correlation_id=correlation_id)
    # Rendered directly (StatusResponse documents it): see api/status_document.py.
    render: StatusRenderer = request.app.state.status_renderer
    return Response(render(view), media_type="application/json")


@router.post(
    paths.SELF_TEST_PATH,
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
