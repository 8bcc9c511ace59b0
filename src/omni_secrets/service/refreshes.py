"""``RefreshRunner``: operator refresh requests (202 now, run in the background, polled by id).

Each request is audited twice: ``cache_refresh_requested`` when queued and ``refresh`` with its
outcome (each GSM read is audited by the cache observer, actor ``system``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from omni_secrets.domain.cache import OmniSecretCache
from omni_secrets.domain.cache_models import FetchFailure
from omni_secrets.domain.catalog import Catalog, parse_secret_type
from omni_secrets.domain.clock import Clock
from omni_secrets.service.auditor import Auditor, access_event
from omni_secrets.service.refresh_requests import (
    RefreshRequest,
    RefreshRequestLog,
    RefreshResult,
)


class RefreshRunner:
    """Queues, runs and remembers refresh requests against ``cache``."""

    def __init__(
        self, *, catalog: Catalog, cache: OmniSecretCache, auditor: Auditor, clock: Clock
    ) -> None:
        self.catalog = catalog
        self.cache = cache
        self._auditor = auditor
        self._clock = clock
        self._requests = RefreshRequestLog()
        self._background: set[asyncio.Task[object]] = set()

    async def request_refresh(
        self, *, secret_types: Sequence[str] | None, actor: str, correlation_id: str | None
    ) -> RefreshRequest:
        """Queue a refresh of ``secret_types`` (all when None); returns at once (202).

        Raises:
            UnknownSecretType: a name outside the catalog (nothing is queued).
        """
        targeted = bool(secret_types)
        types = (
            tuple(dict.fromkeys(parse_secret_type(t) for t in secret_types))
            if secret_types
            else self.catalog.types
        )
        request = self._requests.open(
            secret_types=types, targeted=targeted, actor=actor, now=self._clock.now()
        )
        self._auditor.record_later(
            access_event(
                action="cache_refresh_requested",
                at=request.queued_at,
                actor=actor,
                secret_type=types[0].value if len(types) == 1 else None,
                correlation_id=correlation_id,
                details={"requestId": request.request_id, "secretTypes": [t.value for t in types]},
            )
        )
        self._spawn(self._run_refresh(request, correlation_id))
        return request

    def refresh_request(self, request_id: str) -> RefreshRequest:
        """Raises: RefreshRequestNotFound."""
        return self._requests.get(request_id)

    async def _run_refresh(self, request: RefreshRequest, correlation_id: str | None) -> None:
        self._requests.mark_running(request.request_id)
        started = time.perf_counter()
        outcomes = await self.cache.refresh(request.secret_types)
        results = [
            RefreshResult(
                secret_type=t,
                ok=outcomes[t].ok,
                version=outcomes[t].version,
                error=_error_code(outcomes[t].error),
            )
            for t in request.secret_types
        ]
        completed = self._requests.complete(request.request_id, results, self._clock.now())
        # Each GSM read is audited by the cache observer (actor system); this row ties the
        # request, its caller and its outcome together.
        self._auditor.record_later(
            access_event(
                action="refresh",
                at=self._clock.now(),
                actor=request.actor,
                result="success" if completed.status.value == "succeeded" else "failure",
                correlation_id=correlation_id,
                started=started,
                details={
                    "requestId": request.request_id,
                    "status": completed.status.value,
                    "results": {r.secret_type.value: r.error or "ok" for r in results},
                },
            )
        )

    async def stop(self) -> None:
        """Cancel the refreshes still running."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    def _spawn(self, coroutine: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _error_code(failure: FetchFailure | None) -> str | None:
    return failure.code if failure is not None else None
