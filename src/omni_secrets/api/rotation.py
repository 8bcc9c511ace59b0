"""Rotation routes: preview, commit, cancel (contract section 5), rollback (section 15); scope
``omni-secrets:rotate``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from omni_secrets.api import paths
from omni_secrets.api.deps import CorrelationId, RotatePrincipal
from omni_secrets.api.errors import error_responses
from omni_secrets.api.schemas import (
    RotationCommitResponse,
    RotationPreviewRequest,
    RotationPreviewResponse,
    RotationRollbackRequest,
)
from omni_secrets.api.state import services_of
from omni_secrets.domain import errors

router = APIRouter(tags=["rotation"])

# camelCase in the path, like every other name on the wire (and like {overrideId}).
PreviewId = Annotated[
    str, Path(alias="previewId", description="The previewId of a rotation preview.")
]

# GSM or the database failed, the catalog is not seeded, or the audit row could not be written:
# nothing was changed.
_UNAVAILABLE = (
    errors.SecretStoreError,
    errors.DatabaseUnavailable,
    errors.CatalogNotSeeded,
    errors.AuditUnavailable,
)


@router.post(
    paths.ROTATION_PREVIEW_PATH,
    response_model=RotationPreviewResponse,
    response_model_by_alias=True,
    responses=error_responses(
        errors.RotationInProgress,
        errors.UnknownSecretType,
        errors.CandidateVersionInvalid,
        *_UNAVAILABLE,
    ),
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
        actor=principal.actor,
        correlation_id=correlation_id,
    )
    return RotationPreviewResponse.model_validate(view, from_attributes=True)


@router.post(
    paths.ROTATION_COMMIT_PATH,
    response_model=RotationCommitResponse,
    response_model_by_alias=True,
    responses=error_responses(
        errors.PreviewNotFound,
        errors.PreviewNotReady,
        errors.CandidateChanged,
        errors.GsmChanged,
        *_UNAVAILABLE,
    ),
)
async def commit_rotation(
    request: Request,
    preview_id: PreviewId,
    principal: RotatePrincipal,
    correlation_id: CorrelationId,
) -> RotationCommitResponse:
    """Pin the preview's candidate versions as active and release the group's lock."""
    view = await services_of(request).rotation.commit(
        preview_id, actor=principal.actor, correlation_id=correlation_id
    )
    return RotationCommitResponse.model_validate(view, from_attributes=True)


@router.post(
    paths.ROTATION_ROLLBACK_PATH,
    response_model=RotationCommitResponse,
    response_model_by_alias=True,
    responses=error_responses(
        errors.RollbackNotPossible,
        errors.RotationInProgress,
        errors.GsmChanged,
        errors.UnknownSecretType,
        *_UNAVAILABLE,
    ),
)
async def rollback_rotation(
    request: Request,
    body: RotationRollbackRequest,
    principal: RotatePrincipal,
    correlation_id: CorrelationId,
) -> RotationCommitResponse:
    """Move the type's whole group back to its ``previous`` versions (same checks as a preview)."""
    view = await services_of(request).rotation.rollback(
        body.secret_type, actor=principal.actor, correlation_id=correlation_id
    )
    return RotationCommitResponse.model_validate(view, from_attributes=True)


@router.delete(
    paths.ROTATION_PATH,
    status_code=204,
    response_class=Response,
    responses=error_responses(errors.PreviewNotFound, *_UNAVAILABLE),
)
async def cancel_rotation(
    request: Request,
    preview_id: PreviewId,
    principal: RotatePrincipal,
    correlation_id: CorrelationId,
) -> Response:
    """Cancel an open preview and release the group's lock."""
    await services_of(request).rotation.cancel(
        preview_id, actor=principal.actor, correlation_id=correlation_id
    )
    return Response(status_code=204)
