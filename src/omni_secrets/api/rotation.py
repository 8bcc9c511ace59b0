"""Rotation routes: preview, commit, cancel (contract section 5); scope ``omni-secrets:rotate``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from omni_secrets.api.deps import CorrelationId, RotatePrincipal
from omni_secrets.api.schemas import (
    RotationCommitResponse,
    RotationPreviewRequest,
    RotationPreviewResponse,
)
from omni_secrets.api.state import services_of

router = APIRouter(prefix="/ops/apex-omni/secrets", tags=["rotation"])

# camelCase in the path, like every other name on the wire (and like {overrideId}).
PreviewId = Annotated[
    str, Path(alias="previewId", description="The previewId of a rotation preview.")
]

_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "UNAVAILABLE / AUDIT_UNAVAILABLE: GSM or the database failed, or the "
        "catalog is not seeded; nothing was changed"
    }
}


@router.post(
    "/rotation-preview",
    response_model=RotationPreviewResponse,
    response_model_by_alias=True,
    responses={
        409: {"description": "ROTATION_IN_PROGRESS: another preview holds the group's lock"},
        422: {"description": "VALIDATION_FAILED: unknown secret type or unusable candidate"},
        **_UNAVAILABLE,
    },
)
async def preview_rotation(
    request: Request,
    body: RotationPreviewRequest,
    principal: RotatePrincipal,
    correlation_id: CorrelationId,
) -> RotationPreviewResponse:
    """Check the candidate versions of the type's whole group and lock the group for 15 min."""
    view = await services_of(request).rotation.preview(
        body.secret_type,
        body.candidate_version,
        actor=principal.subject,
        correlation_id=correlation_id,
    )
    return RotationPreviewResponse.model_validate(view, from_attributes=True)


@router.post(
    "/rotations/{previewId}/commit",
    response_model=RotationCommitResponse,
    response_model_by_alias=True,
    responses={
        404: {"description": "NOT_FOUND: unknown, expired or no longer open preview"},
        409: {"description": "PREVIEW_NOT_READY: a check of the preview failed"},
        **_UNAVAILABLE,
    },
)
async def commit_rotation(
    request: Request,
    preview_id: PreviewId,
    principal: RotatePrincipal,
    correlation_id: CorrelationId,
) -> RotationCommitResponse:
    """Pin the preview's candidate versions as active and release the group's lock."""
    view = await services_of(request).rotation.commit(
        preview_id, actor=principal.subject, correlation_id=correlation_id
    )
    return RotationCommitResponse.model_validate(view, from_attributes=True)


@router.delete(
    "/rotations/{previewId}",
    status_code=204,
    response_class=Response,
    responses={
        404: {"description": "NOT_FOUND: unknown or no longer open preview"},
        **_UNAVAILABLE,
    },
)
async def cancel_rotation(
    request: Request,
    preview_id: PreviewId,
    principal: RotatePrincipal,
    correlation_id: CorrelationId,
) -> Response:
    """Cancel an open preview and release the group's lock."""
    await services_of(request).rotation.cancel(
        preview_id, actor=principal.subject, correlation_id=correlation_id
    )
    return Response(status_code=204)
