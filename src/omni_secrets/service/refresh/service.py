"""``ClusterRefreshService``: a cache refresh asked of one replica runs on every live replica.

The accepting replica stores the request in the database, publishes ``KIND_REFRESH`` through the
cross-replica notifier and refreshes its own cache; each other replica, on the notification (or
at its next periodic reconcile, the fallback), finds the requests it has not run yet
(:meth:`ClusterRefreshService.catch_up`), refreshes and records its outcome. Any replica answers
``GET …/refresh/{requestId}`` from the database: one entry per replica beside the aggregate.

Concurrent requests still coalesce into one GSM read per type and replica (the cache's
single-flight). When the database cannot be reached the request runs on this replica only and
is answered from this replica's memory, so a refresh never depends on the database.

The service decides and runs; what follows (audit rows, warnings, telling the other replicas) is
emitted as events (``events.py``) and happens in ``reactions.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime

from omni_secrets.domain.cache import FetchFailure, OmniSecretCache
from omni_secrets.domain.catalog import Catalog, SecretType, parse_secret_type
from omni_secrets.domain.clock import Clock
from omni_secrets.domain.cluster import (
    ClusterRefresh,
    RefreshLedger,
    RefreshResult,
    RefreshStatus,
    ReplicaRefreshOutcome,
    aggregate_status,
    outcome_status,
    participants,
)
from omni_secrets.service.messagebus import EventBus
from omni_secrets.service.refresh.events import (
    ClusterRefreshRequested,
    RefreshCatchUpFailed,
    RefreshNotShared,
    RefreshOutcomeNotRecorded,
    RefreshShared,
    RefreshViewFromMemory,
    ReplicaRefreshed,
)
from omni_secrets.service.refresh.request_log import RefreshRequest, RefreshRequestLog
from omni_secrets.service.replicas import ReplicaService

_TERMINAL = frozenset({RefreshStatus.SUCCEEDED, RefreshStatus.FAILED, RefreshStatus.PARTIAL})


@dataclass(frozen=True, slots=True)
class ReplicaRefreshView:
    replica_id: str
    status: str
    results: tuple[RefreshResult, ...]


@dataclass(frozen=True, slots=True)
class RefreshView:
    """``GET …/refresh/{requestId}``: the section 5 fields plus one entry per replica."""

    request_id: str
    status: str
    results: tuple[RefreshResult, ...]
    completed_at: datetime | None
    replicas: tuple[ReplicaRefreshView, ...]


class ClusterRefreshService:
    """Cluster-wide refresh requests (see the module docstring).

    Args:
        catalog: the secret types.
        cache: this replica's cache.
        ledger: requests and per-replica outcomes in the database.
        replicas: this replica's identity and the registry of live ones.
        clock: time source.
        bus: where the service reports what it did (``events.py``): the audit rows and the
            announcement to the other replicas follow from there.
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        cache: OmniSecretCache,
        ledger: RefreshLedger,
        replicas: ReplicaService,
        clock: Clock,
        bus: EventBus,
    ) -> None:
        self._catalog = catalog
        self._cache = cache
        self._ledger = ledger
        self._replicas = replicas
        self._clock = clock
        self._bus = bus
        self._local = RefreshRequestLog()
        # Requests this replica has started (its own, and others' it caught up with), so a
        # notification of its own request does not run it twice.
        self._started: set[str] = set()
        self._background: set[asyncio.Task[object]] = set()

    async def request(
        self,
        *,
        secret_types: Sequence[str] | None,
        actor: str,
        correlation_id: str | None,
    ) -> RefreshRequest:
        """Queue a refresh of ``secret_types`` (all when None) on every live replica (202).

        Returns at once; the refresh runs in the background.

        Raises:
            UnknownSecretType: a name outside the catalog (nothing is queued).
        """
        targeted = bool(secret_types)
        types = (
            tuple(dict.fromkeys(parse_secret_type(t) for t in secret_types))
            if secret_types
            else self._catalog.types
        )
        local = self._local.open(
            secret_types=types, targeted=targeted, actor=actor, now=self._clock.now()
        )
        shared = ClusterRefresh(
            request_id=local.request_id,
            targeted=targeted,
            secret_types=types,
            actor=actor,
            queued_at=local.queued_at,
            origin_replica_id=self._replicas.replica_id,
        )
        stored = True
        try:
            await self._ledger.add(shared)
        except Exception as exc:  # the refresh itself must not depend on the database
            stored = False
            await self._bus.emit(RefreshNotShared(local.request_id, type(exc).__name__))
        await self._bus.emit(
            ClusterRefreshRequested(
                request_id=local.request_id,
                secret_types=types,
                actor=actor,
                correlation_id=correlation_id,
                queued_at=local.queued_at,
                shared=stored,
            )
        )
        self._started.add(local.request_id)
        if stored:
            # Beside the local run, not before the 202: telling the others is a database round
            # trip, and the periodic reconcile covers an announcement that is lost.
            self._spawn(self._bus.emit(RefreshShared(local.request_id)))
        self._spawn(self._run(shared, correlation_id, record=stored))
        return local

    async def catch_up(self) -> int:
        """Run the requests of other replicas this one has not run yet; never raises.

        Only requests queued after this replica started count (it hydrated after older ones).

        Returns:
            How many requests it ran.
        """
        try:
            pending = await self._ledger.pending(
                self._replicas.replica_id, self._replicas.started_at
            )
        except Exception as exc:
            await self._bus.emit(RefreshCatchUpFailed(type(exc).__name__))
            return 0
        todo = [r for r in pending if r.request_id not in self._started]
        for request in todo:
            self._started.add(request.request_id)
        if todo:
            await asyncio.gather(*(self._run(r, None, record=True) for r in todo))
        return len(todo)

    async def view(self, request_id: str) -> RefreshView:
        """The request's state on every replica that takes part, and the aggregate.

        Raises:
            RefreshRequestNotFound: no replica knows the id (or it was pruned after a day).
        """
        try:
            found = await self._ledger.get(request_id)
        except Exception as exc:
            await self._bus.emit(RefreshViewFromMemory(type(exc).__name__))
            found = None
        if found is None:
            return self._local_view(self._local.get(request_id))
        request, outcomes = found
        try:
            live = await self._replicas.live()
        except Exception:
            live = ()
        waiting = participants(request, live)
        outcomes = list(outcomes)
        mine = self._replicas.replica_id
        if mine in waiting and all(o.replica_id != mine for o in outcomes):
            with_local = self._local_outcome(request_id)
            if with_local is not None:
                outcomes.append(with_local)
        status = aggregate_status(waiting, outcomes)
        finished = [o for o in outcomes if o.replica_id in waiting and o.completed_at]
        by_replica = {o.replica_id: o for o in outcomes}
        replicas = tuple(
            ReplicaRefreshView(
                replica_id=rid,
                status=by_replica[rid].status.value if rid in by_replica else "queued",
                results=by_replica[rid].results if rid in by_replica else (),
            )
            for rid in dict.fromkeys([*waiting, *by_replica])
        )
        return RefreshView(
            request_id=request.request_id,
            status=status.value,
            results=_combine(request.secret_types, finished),
            completed_at=max((o.completed_at for o in finished if o.completed_at), default=None)
            if status in _TERMINAL
            else None,
            replicas=replicas,
        )

    async def stop(self) -> None:
        """Cancel refreshes still running (shutdown)."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    # -- internals -------------------------------------------------------------------------------

    async def _run(
        self, request: ClusterRefresh, correlation_id: str | None, *, record: bool
    ) -> None:
        local = request.request_id in self._local
        if local:
            self._local.mark_running(request.request_id)
        started = time.perf_counter()
        outcomes = await self._cache.refresh(request.secret_types)
        results = tuple(
            RefreshResult(
                secret_type=t,
                ok=outcomes[t].ok,
                version=outcomes[t].version,
                error=_error_code(outcomes[t].error),
            )
            for t in request.secret_types
        )
        now = self._clock.now()
        status = outcome_status(results)
        if local:
            self._local.complete(request.request_id, results, now)
        if record:
            try:
                await self._ledger.record(
                    ReplicaRefreshOutcome(
                        request_id=request.request_id,
                        replica_id=self._replicas.replica_id,
                        status=status,
                        results=results,
                        completed_at=now,
                    )
                )
            except Exception as exc:
                await self._bus.emit(
                    RefreshOutcomeNotRecorded(request.request_id, type(exc).__name__)
                )
        await self._bus.emit(
            ReplicaRefreshed(
                request_id=request.request_id,
                replica_id=self._replicas.replica_id,
                actor=request.actor,
                correlation_id=correlation_id,
                status=status,
                results=results,
                completed_at=now,
                duration_ms=int((time.perf_counter() - started) * 1000),
            )
        )

    def _local_outcome(self, request_id: str) -> ReplicaRefreshOutcome | None:
        if request_id not in self._local:
            return None
        tracked = self._local.get(request_id)
        return ReplicaRefreshOutcome(
            request_id=request_id,
            replica_id=self._replicas.replica_id,
            status=tracked.status,
            results=tracked.results,
            completed_at=tracked.completed_at,
        )

    def _local_view(self, tracked: RefreshRequest) -> RefreshView:
        return RefreshView(
            request_id=tracked.request_id,
            status=tracked.status.value,
            results=tracked.results,
            completed_at=tracked.completed_at,
            replicas=(
                ReplicaRefreshView(
                    replica_id=self._replicas.replica_id,
                    status=tracked.status.value,
                    results=tracked.results,
                ),
            ),
        )

    def _spawn(self, coroutine: Awaitable[object]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _error_code(failure: FetchFailure | None) -> str | None:
    return failure.code if failure is not None else None


def _combine(
    types: Sequence[SecretType], finished: Sequence[ReplicaRefreshOutcome]
) -> tuple[RefreshResult, ...]:
    """One result per type over the replicas that finished: ok only when ok on all of them."""
    if not finished:
        return ()
    combined = []
    for secret_type in types:
        mine = [r for o in finished for r in o.results if r.secret_type is secret_type]
        if not mine:
            continue
        errors = [r.error for r in mine if r.error]
        versions = [r.version for r in mine if r.version]
        combined.append(
            RefreshResult(
                secret_type=secret_type,
                ok=all(r.ok for r in mine),
                version=versions[0] if versions else None,
                error=errors[0] if errors else None,
            )
        )
    return tuple(combined)
