"""The ApeX Omni consumer route: signed calls with the served credentials."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from omni_secrets.api.deps import ApexPrincipal, CorrelationId
from omni_secrets.api.errors import error_responses
from omni_secrets.api.state import services_of
from omni_secrets.domain import errors

router = APIRouter(prefix="/apex-omni", tags=["apex-omni"])


@router.get(
    "/account",
    responses=error_responses(errors.SecretsUnavailable, errors.ApexUpstreamError),
)
async def get_account(
    request: Request, principal: ApexPrincipal, correlation_id: CorrelationId
) -> dict[str, Any]:
    """ApeX's ``data`` object of a signed ``GET /api/v3/account``.

    Answers 503 at once, with no GSM call, when the cache cannot serve every required type.
    """
    account = await services_of(request).secrets.get_account(
        actor=principal.actor, correlation_id=correlation_id
    )
    return dict(account.data)
