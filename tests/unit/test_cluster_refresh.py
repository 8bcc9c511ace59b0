"""``ClusterRefreshService`` with two in-process "replicas" sharing one local cluster store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from omni_secrets.adapters.local_cluster import LocalClusterStore
from omni_secrets.domain.cache import OmniSecretCache
from omni_secrets.domain.catalog import Catalog, SecretType
from omni_secrets.domain.clock import ManualClock
from omni_secrets.domain.errors import RefreshRequestNotFound, SecretStoreError
from omni_secrets.domain.secret_store import AccessedSecret
from omni_secrets.domain.values import SecretValue
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.messagebus import Dispatcher
from omni_secrets.service.refresh.build import build_refresh
from omni_secrets.service.refresh.reactions import refresh_reactions
from omni_secrets.service.refresh.service import ClusterRefreshService
from omni_secrets.service.replicas import ReplicaService
from omni_secrets.testing import InMemoryDatabase, InMemoryUnitOfWorkFactory


@dataclass
class Replica:
    replicas: ReplicaService
    refresh: ClusterRefreshService
    cache: OmniSecretCache
    published: list[str]
    failing: set[SecretType]


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[LocalClusterStore, list[Replica]]]:
    store = LocalClusterStore()
    clock = ManualClock()
    db = InMemoryDatabase()
    auditor = Auditor(uow_factory=InMemoryUnitOfWorkFactory(db))
    auditor.start()
    made: list[Replica] = []
    for name in ("a", "b"):
        failing: set[SecretType] = set()

        async def fetch(
            secret_type: SecretType, failing: set[SecretType] = failing
        ) -> AccessedSecret:
            if secret_type in failing:
                raise SecretStoreError("down", reason="UNAVAILABLE", transient=True)
            return AccessedSecret("x", "1", SecretValue(f"fake-{secret_type.value}"))

        cache = OmniSecretCache(
            catalog=Catalog(), fetch=fetch, ttl_seconds=300, max_stale_seconds=0, clock=clock
        )
        replicas = ReplicaService(registry=store, clock=clock, replica_id=name, host="h")
        await replicas.beat()
        published: list[str] = []

        async def publish(kind: str, published: list[str] = published) -> None:
            published.append(kind)

        refresh = build_refresh(
            catalog=Catalog(),
            cache=cache,
            ledger=store,
            replicas=replicas,
            clock=clock,
            bus=Dispatcher([refresh_reactions(auditor=auditor, publish=publish)]),
        )
        made.append(Replica(replicas, refresh, cache, published, failing))
    yield store, made
    for replica in made:
        await replica.refresh.stop()
    await auditor.stop()


async def settled(replica: Replica, request_id: str) -> dict[str, object]:
    for _ in range(200):
        view = await replica.refresh.view(request_id)
        if view.status not in ("queued", "running"):
            return {"status": view.status, "view": view}
        await asyncio.sleep(0.005)
    raise AssertionError("refresh did not settle")


class TestClusterRefresh:
    async def test_request_on_a_runs_on_b_after_catch_up_and_both_answer(
        self, cluster: tuple[LocalClusterStore, list[Replica]]
    ) -> None:
        """A publishes and refreshes; B runs it on catch-up (once); either view shows both."""
        _, (a, b) = cluster
        request = await a.refresh.request(
            secret_types=["api_key"], actor="ops", correlation_id=None
        )
        await asyncio.sleep(0.01)
        assert a.published == ["refresh"]
        running = await b.refresh.view(request.request_id)
        assert running.status == "running"  # A done, B not yet
        assert await b.refresh.catch_up() == 1
        assert await b.refresh.catch_up() == 0  # never twice
        assert await a.refresh.catch_up() == 0  # its own request is not run again
        done = await settled(b, request.request_id)
        assert done["status"] == "succeeded"
        view = await a.refresh.view(request.request_id)
        assert [r.replica_id for r in view.replicas] == ["a", "b"]
        assert all(r.status == "succeeded" for r in view.replicas)
        assert [r.secret_type for r in view.results] == [SecretType.API_KEY]

    async def test_one_replica_failing_makes_the_aggregate_partial(
        self, cluster: tuple[LocalClusterStore, list[Replica]]
    ) -> None:
        """B cannot read GSM: its entry fails and the aggregate is not succeeded."""
        _, (a, b) = cluster
        b.failing.add(SecretType.API_KEY)
        request = await a.refresh.request(
            secret_types=["api_key"], actor="ops", correlation_id=None
        )
        await asyncio.sleep(0.01)
        await b.refresh.catch_up()
        view = (await settled(a, request.request_id))["view"]
        assert view.status == "partial"  # type: ignore[attr-defined]
        assert view.results[0].ok is False  # type: ignore[attr-defined]
        assert view.results[0].error == "UNAVAILABLE"  # type: ignore[attr-defined]

    async def test_database_down_runs_locally_and_answers_from_memory(
        self, cluster: tuple[LocalClusterStore, list[Replica]]
    ) -> None:
        """No database: the refresh still runs here, nothing is published, status from memory."""
        store, (a, b) = cluster
        store.unavailable = True
        request = await a.refresh.request(secret_types=None, actor="ops", correlation_id=None)
        view = (await settled(a, request.request_id))["view"]
        assert view.status == "succeeded"  # type: ignore[attr-defined]
        assert [r.replica_id for r in view.replicas] == ["a"]  # type: ignore[attr-defined]
        assert a.published == []
        store.unavailable = False
        assert await b.refresh.catch_up() == 0
        with pytest.raises(RefreshRequestNotFound):
            await b.refresh.view(request.request_id)
