"""``LocalClusterStore``: the replica ports (``domain/cluster.py``) in memory.

For a process whose database is not SQL (the in-memory unit of work of tests and benchmarks):
nothing is shared with another process. Several app instances built in one test can share one
instance, as real replicas share PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from omni_secrets.domain.cluster import (
    ClusterRefresh,
    ReplicaInfo,
    ReplicaRefreshOutcome,
    SecretSignal,
)
from omni_secrets.domain.errors import DatabaseUnavailable


class LocalClusterStore:
    """Registry, refresh ledger and signal store in dicts.

    Attributes:
        unavailable: when True every call raises ``DatabaseUnavailable`` (the database is down).
    """

    def __init__(self) -> None:
        self.replicas: dict[str, ReplicaInfo] = {}
        self.requests: dict[str, ClusterRefresh] = {}
        self.outcomes: dict[tuple[str, str], ReplicaRefreshOutcome] = {}
        self.signals: dict[str, SecretSignal] = {}
        self.unavailable = False

    def _check(self) -> None:
        if self.unavailable:
            raise DatabaseUnavailable("database connect failed: the database is unreachable")

    async def heartbeat(self, replica: ReplicaInfo) -> None:
        self._check()
        self.replicas[replica.replica_id] = replica

    async def live(self, now: datetime, window_seconds: float) -> Sequence[ReplicaInfo]:
        self._check()
        since = now - timedelta(seconds=window_seconds)
        alive = [r for r in self.replicas.values() if r.last_seen_at >= since]
        return sorted(alive, key=lambda r: (r.started_at, r.replica_id))

    async def deregister(self, replica_id: str) -> None:
        self._check()
        self.replicas.pop(replica_id, None)

    async def prune(self, before: datetime) -> int:
        self._check()
        old = [rid for rid, r in self.requests.items() if r.queued_at < before]
        gone = [rid for rid, r in self.replicas.items() if r.last_seen_at < before]
        results = [key for key in self.outcomes if key[0] in old]
        for rid in old:
            del self.requests[rid]
        for rid in gone:
            del self.replicas[rid]
        for key in results:
            del self.outcomes[key]
        return len(old) + len(gone) + len(results)

    async def add(self, request: ClusterRefresh) -> None:
        self._check()
        if request.request_id in self.requests:
            raise ValueError(f"refresh request {request.request_id!r} exists")
        self.requests[request.request_id] = request

    async def get(
        self, request_id: str
    ) -> tuple[ClusterRefresh, Sequence[ReplicaRefreshOutcome]] | None:
        self._check()
        request = self.requests.get(request_id)
        if request is None:
            return None
        outcomes = sorted(
            (o for (rid, _), o in self.outcomes.items() if rid == request_id),
            key=lambda o: o.replica_id,
        )
        return request, outcomes

    async def record(self, outcome: ReplicaRefreshOutcome) -> None:
        self._check()
        self.outcomes[(outcome.request_id, outcome.replica_id)] = replace(outcome)

    async def pending(self, replica_id: str, since: datetime) -> Sequence[ClusterRefresh]:
        self._check()
        return sorted(
            (
                r
                for r in self.requests.values()
                if r.queued_at >= since and (r.request_id, replica_id) not in self.outcomes
            ),
            key=lambda r: r.queued_at,
        )

    async def all(self) -> Sequence[SecretSignal]:
        self._check()
        return [self.signals[k] for k in sorted(self.signals)]

    async def put(self, signal: SecretSignal) -> None:
        self._check()
        self.signals[signal.secret_type.value] = signal
