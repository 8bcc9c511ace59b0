"""Cache refresh requests: ids, lifecycle (queued → running → succeeded/failed/partial), results.

Requests live in memory on the replica that accepted them (a refresh is a local cache
operation); the newest :data:`MAX_TRACKED` are kept so a poller can read the outcome.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.errors import RefreshRequestNotFound

MAX_TRACKED = 1000


class RefreshStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIAL = "partial"


@dataclass(frozen=True, slots=True)
class RefreshResult:
    secret_type: SecretType
    ok: bool
    version: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class RefreshRequest:
    request_id: str
    targeted: bool
    secret_types: tuple[SecretType, ...]
    status: RefreshStatus
    queued_at: datetime
    actor: str
    results: tuple[RefreshResult, ...] = field(default=())
    completed_at: datetime | None = None


def outcome_status(results: Sequence[RefreshResult]) -> RefreshStatus:
    """succeeded when every type refreshed, failed when none did, partial otherwise."""
    oks = sum(1 for r in results if r.ok)
    if oks == len(results):
        return RefreshStatus.SUCCEEDED
    return RefreshStatus.FAILED if oks == 0 else RefreshStatus.PARTIAL


class RefreshRequestLog:
    """The newest refresh requests of this replica, by id."""

    def __init__(self, max_tracked: int = MAX_TRACKED) -> None:
        self._requests: OrderedDict[str, RefreshRequest] = OrderedDict()
        self._max = max_tracked

    def open(
        self, *, secret_types: Sequence[SecretType], targeted: bool, actor: str, now: datetime
    ) -> RefreshRequest:
        request = RefreshRequest(
            request_id=uuid.uuid4().hex,
            targeted=targeted,
            secret_types=tuple(secret_types),
            status=RefreshStatus.QUEUED,
            queued_at=now,
            actor=actor,
        )
        self._requests[request.request_id] = request
        while len(self._requests) > self._max:
            self._requests.popitem(last=False)
        return request

    def mark_running(self, request_id: str) -> None:
        self._update(request_id, status=RefreshStatus.RUNNING)

    def complete(
        self, request_id: str, results: Sequence[RefreshResult], now: datetime
    ) -> RefreshRequest:
        return self._update(
            request_id,
            status=outcome_status(results),
            results=tuple(results),
            completed_at=now,
        )

    def get(self, request_id: str) -> RefreshRequest:
        """Raises: RefreshRequestNotFound: unknown (or long forgotten) id."""
        try:
            return self._requests[request_id]
        except KeyError:
            raise RefreshRequestNotFound(request_id) from None

    def _update(self, request_id: str, **changes: object) -> RefreshRequest:
        current = self._requests.get(request_id)
        if current is None:  # evicted while running: nothing left to update
            raise RefreshRequestNotFound(request_id)
        updated = replace(current, **changes)  # type: ignore[arg-type]
        self._requests[request_id] = updated
        return updated
