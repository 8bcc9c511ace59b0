"""Cache refresh requests: ids, lifecycle (queued → running → succeeded/failed/partial), results.

This is the accepting replica's own memory of its requests (the newest :data:`MAX_TRACKED`):
the cluster-wide record lives in the database (``domain/cluster.py``), and this log answers when
the database cannot (a request accepted while it was down runs on this replica only).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.cluster import RefreshResult, RefreshStatus, outcome_status
from omni_secrets.domain.errors import RefreshRequestNotFound

MAX_TRACKED = 1000


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


class RefreshRequestLog:
    """The newest refresh requests of this replica, by id."""

    def __init__(self, max_tracked: int = MAX_TRACKED) -> None:
        self._requests: OrderedDict[str, RefreshRequest] = OrderedDict()
        self._max = max_tracked

    def open(
        self,
        *,
        secret_types: Sequence[SecretType],
        targeted: bool,
        actor: str,
        now: datetime,
        request_id: str | None = None,
    ) -> RefreshRequest:
        request = RefreshRequest(
            request_id=request_id or uuid.uuid4().hex,
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

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._requests

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
