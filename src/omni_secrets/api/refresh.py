"""Internal, service-to-service cache refresh."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from omni_secrets.api.deps import CorrelationId, RefreshPrincipal
from omni_secrets.api.errors import error_responses
from omni_secrets.api.schemas import RefreshQueued, RefreshRequestBody, RefreshStatusResponse
from omni_secrets.api.state import services_of
from omni_secrets.domain import errors

router = APIRouter(prefix="/internal/apex-omni/secrets/cache", tags=["cache"])


@router.post(
    "/refresh",
    status_code=202,
    response_model=RefreshQueued,
    response_model_by_alias=True,
    responses=error_responses(errors.UnknownSecretType),
)
async def request_refresh(
    request: Request,
    principal: RefreshPrincipal,
    correlation_id: CorrelationId,
    body: RefreshRequestBody | None = None,
) -> RefreshQueued:
    """Queue a refresh of every type, or of ``secretTypes``; concurrent requests coalesce."""
    queued = await services_of(request).secrets.request_refresh(
        secret_types=body.secret_types if body else None,
        actor=principal.actor,
        correlation_id=correlation_id,
    )
    return RefreshQueued(
        request_id=queued.request_id,
        scope="targeted" if queued.targeted else "all",
        secret_types=[t.value for t in queued.secret_types],
        status=queued.status.value,
        queued_at=queued.queued_at,
    )


@router.get(
    "/refresh/{requestId}",
    response_model=RefreshStatusResponse,
    response_model_by_alias=True,
    responses=error_responses(errors.RefreshRequestNotFound),
)
async def get_refresh(
    request: Request,
    request_id: Annotated[
        str, Path(alias="requestId", description="The requestId answered by POST …/refresh.")
    ],
    _: RefreshPrincipal,
) -> RefreshStatusResponse:
    """The state and per-type results of a refresh request."""
    tracked = services_of(request).secrets.refresh_request(request_id)
    return RefreshStatusResponse.model_validate(
        {
            "request_id": tracked.request_id,
            "status": tracked.status.value,
            "results": [
                {
                    "secret_type": r.secret_type.value,
                    "ok": r.ok,
                    "version": r.version,
                    "error": r.error,
                }
                for r in tracked.results
            ],
            "completed_at": tracked.completed_at,
        }
    )
