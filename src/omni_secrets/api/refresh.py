"""Internal, service-to-service cache refresh."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from omni_secrets.api import paths
from omni_secrets.api.deps import CorrelationId, RefreshPrincipal
from omni_secrets.api.errors import error_responses
from omni_secrets.api.schemas import RefreshQueued, RefreshRequestBody, RefreshStatusResponse
from omni_secrets.api.state import services_of
from omni_secrets.domain import errors
from omni_secrets.domain.cluster import RefreshResult

router = APIRouter(tags=["cache"])


@router.post(
    paths.CACHE_REFRESH_PATH,
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
    """Queue a refresh of every type, or of ``secretTypes``, on every live replica.

    Concurrent requests coalesce into one GSM read per type and replica.
    """
    queued = await services_of(request).cluster_refresh.request(
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
    paths.CACHE_REFRESH_REQUEST_PATH,
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
    """The aggregate state and per-type results of a refresh request, and each replica's."""
    view = await services_of(request).cluster_refresh.view(request_id)
    return RefreshStatusResponse.model_validate(
        {
            "request_id": view.request_id,
            "status": view.status,
            "results": [_result(r) for r in view.results],
            "completed_at": view.completed_at,
            "replicas": [
                {
                    "replica_id": replica.replica_id,
                    "status": replica.status,
                    "results": [_result(r) for r in replica.results],
                }
                for replica in view.replicas
            ],
        }
    )


def _result(result: RefreshResult) -> dict[str, object]:
    return {
        "secret_type": result.secret_type.value,
        "ok": result.ok,
        "version": result.version,
        "error": result.error,
    }
