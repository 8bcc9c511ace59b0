"""The ApeX Omni consumer route: signed calls with the served credentials."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from omni_secrets.api import paths
from omni_secrets.api.auth import Scope
from omni_secrets.api.deps import require
from omni_secrets.api.errors import error_responses
from omni_secrets.api.state import services_of
from omni_secrets.domain import errors

router = APIRouter(tags=["apex-omni"])


@router.get(
    paths.ACCOUNT_PATH,
    responses=error_responses(errors.SecretsUnavailable, errors.ApexUpstreamError),
    # Account reads are not audited, so the caller's identity is checked, never passed on.
    dependencies=[Depends(require(Scope.APEX_READ))],
)
async def get_account(request: Request) -> dict[str, Any]:
    """ApeX's ``data`` object of a signed ``GET /api/v3/account``.

    Answers 503 at once, with no GSM call, when the cache cannot serve every required type.
    """
    account = await services_of(request).secrets.get_account()
    return dict(account.data)
