"""``SqlClusterStore`` and ``LocalClusterStore`` honour the same replica-port contract,
on SQLite and PostgreSQL migrated to head."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omni_secrets.adapters.db.cluster import SqlClusterStore
from omni_secrets.adapters.db.engine import create_engine
from omni_secrets.adapters.local_cluster import LocalClusterStore
from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.cluster import (
    ClusterRefresh,
    RefreshResult,
    RefreshStatus,
    ReplicaInfo,
    ReplicaRefreshOutcome,
    SecretSignal,
)

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def request_at(request_id: str, queued_at: datetime) -> ClusterRefresh:
    return ClusterRefresh(
        request_id, True, (SecretType.API_KEY, SecretType.ZK_SEEDS), "ops", queued_at, "a"
    )


class ClusterStoreContract:
    async def test_registry_liveness_deregister_and_prune(self, store: Any) -> None:
        """Live = seen within the window; heartbeat renews; deregister and prune delete rows."""
        await store.heartbeat(ReplicaInfo("a", "host-a", T0, T0))
        await store.heartbeat(ReplicaInfo("b", "host-b", T0, T0))
        await store.heartbeat(ReplicaInfo("a", "host-a", T0, T0 + timedelta(seconds=40)))
        live = await store.live(T0 + timedelta(seconds=40), 30)
        assert [r.replica_id for r in live] == ["a"]
        assert live[0].host == "host-a" and live[0].started_at == T0
        await store.deregister("a")
        assert await store.live(T0 + timedelta(seconds=40), 30) == []
        await store.add(request_at("old", T0))
        assert await store.prune(T0 + timedelta(days=2)) >= 2  # replica b and request old
        assert await store.get("old") is None

    async def test_ledger_records_outcomes_and_lists_what_is_pending(self, store: Any) -> None:
        """A replica's pending requests are those since its start without its outcome."""
        await store.add(request_at("r1", T0))
        await store.add(request_at("r2", T0 + timedelta(seconds=5)))
        assert [r.request_id for r in await store.pending("b", T0)] == ["r1", "r2"]
        assert [r.request_id for r in await store.pending("b", T0 + timedelta(seconds=1))] == ["r2"]
        results = (
            RefreshResult(SecretType.API_KEY, True, "3", None),
            RefreshResult(SecretType.ZK_SEEDS, False, None, "UNAVAILABLE"),
        )
        outcome = ReplicaRefreshOutcome("r1", "b", RefreshStatus.PARTIAL, results, T0)
        await store.record(outcome)
        await store.record(outcome)  # idempotent upsert
        assert [r.request_id for r in await store.pending("b", T0)] == ["r2"]
        found = await store.get("r1")
        assert found is not None
        request, outcomes = found
        assert request.secret_types == (SecretType.API_KEY, SecretType.ZK_SEEDS)
        assert request.targeted is True and request.origin_replica_id == "a"
        assert list(outcomes) == [outcome]

    async def test_signals_upsert(self, store: Any) -> None:
        """A signal row per type, replaced whole on put."""
        signal = SecretSignal(
            SecretType.API_SECRET,
            revoked_version="3",
            revoked_code="VERSION_DISABLED",
            revoked_message="disabled",
            revoked_at=T0,
            confirmed=False,
        )
        await store.put(signal)
        assert list(await store.all()) == [signal]
        cleared = SecretSignal(SecretType.API_SECRET, candidate_version="4", candidate_at=T0)
        await store.put(cleared)
        assert list(await store.all()) == [cleared]


class TestSqlClusterStore(ClusterStoreContract):
    @pytest.fixture
    async def store(self, database_url: str) -> AsyncIterator[SqlClusterStore]:
        engine = create_engine(database_url)
        try:
            yield SqlClusterStore(engine)
        finally:
            await engine.dispose()


class TestLocalClusterStore(ClusterStoreContract):
    @pytest.fixture
    def store(self) -> LocalClusterStore:
        return LocalClusterStore()
