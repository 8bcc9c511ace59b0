"""Reporting the expected failures of a preview, commit or cancel, shared by the three.

Expected failures are counted in ``omni_secret_failures_total{operation="rotation"}`` with the
error's code as ``reason``, once per member of the group concerned (the rotation failed for each
of them), and audited in the background; both are reactions to :class:`RotationFailed`. Failures
that name no catalog type (an unknown type, an unknown preview id) are not counted, because they
have no bounded ``secret_type`` label.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.errors import OmniSecretsError, RotationInProgress
from omni_secrets.domain.models import AuditAction
from omni_secrets.service.messagebus import EventBus
from omni_secrets.service.rotation.events import RotationFailed


@asynccontextmanager
async def reported_failures(
    bus: EventBus,
    clock: Clock,
    action: AuditAction,
    types: Sequence[SecretType],
    *,
    actor: str,
    correlation_id: str | None,
    details: dict[str, Any],
) -> AsyncIterator[None]:
    """Emit :class:`RotationFailed` for an expected failure raised inside the block, re-raise it.

    ``types`` and ``details`` are read when the failure happens, so a caller may fill them in as
    it learns which group it works on. A lost lock race is a ``conflict``, everything else a
    failure; the error's code and details go with the event.
    """
    try:
        yield
    except OmniSecretsError as exc:
        await bus.emit(
            RotationFailed(
                action=action,
                secret_types=tuple(t.value for t in types),
                code=exc.code,
                error_details=dict(exc.details),
                conflict=isinstance(exc, RotationInProgress),
                context=dict(details),
                actor=actor,
                correlation_id=correlation_id,
                at=clock.now(),
            )
        )
        raise
