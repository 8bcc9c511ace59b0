"""Replica registry liveness and the aggregate status of a cluster refresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from omni_secrets.adapters.local_cluster import LocalClusterStore
from omni_secrets.domain.catalog import SecretType
from omni_secrets.domain.clock import ManualClock
from omni_secrets.domain.cluster import (
    ClusterRefresh,
    RefreshStatus,
    ReplicaInfo,
    ReplicaRefreshOutcome,
    aggregate_status,
    participants,
)
from omni_secrets.service.replicas import ReplicaService

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def outcome(replica: str, status: RefreshStatus, done: bool = True) -> ReplicaRefreshOutcome:
    return ReplicaRefreshOutcome("r-1", replica, status, (), T0 if done else None)


class TestReplicaService:
    async def test_a_replica_not_seen_for_30_seconds_is_gone(self) -> None:
        """Peers count others seen within 30 s; one whose heartbeat stopped drops out after 30 s."""
        store = LocalClusterStore()
        clock = ManualClock(T0)
        a = ReplicaService(registry=store, clock=clock, replica_id="a", host="h")
        b = ReplicaService(registry=store, clock=clock, replica_id="b", host="h")
        seen: list[int] = []
        c = ReplicaService(
            registry=store, clock=clock, replica_id="c", host="h", on_peers=seen.append
        )
        for replica in (a, b, c):
            assert await replica.beat()
        assert c.peers == 2
        clock.advance(29)
        await a.beat()
        await c.beat()
        assert c.peers == 2  # b was seen 29 s ago: still live
        clock.advance(2)
        await c.beat()
        assert c.peers == 1  # b: 31 s
        assert seen[-1] == 1

    async def test_leave_removes_the_row_and_a_failed_beat_keeps_the_last_count(self) -> None:
        """Deregistering drops the replica at once; a database outage does not zero peers."""
        store = LocalClusterStore()
        clock = ManualClock(T0)
        a = ReplicaService(registry=store, clock=clock, replica_id="a", host="h")
        b = ReplicaService(registry=store, clock=clock, replica_id="b", host="h")
        await a.beat()
        await b.beat()
        await a.beat()
        assert a.peers == 1
        store.unavailable = True
        assert await a.beat() is False
        assert a.peers == 1
        store.unavailable = False
        await b.leave()
        await a.beat()
        assert a.peers == 0
        assert set(store.replicas) == {"a"}


class TestAggregate:
    def test_succeeded_only_when_every_participant_succeeded(self) -> None:
        """queued → running → succeeded/failed/partial over the replicas waited for."""
        waiting = ("a", "b")
        assert aggregate_status(waiting, []) is RefreshStatus.QUEUED
        assert aggregate_status(waiting, [outcome("a", RefreshStatus.SUCCEEDED)]) is (
            RefreshStatus.RUNNING
        )
        both = [outcome("a", RefreshStatus.SUCCEEDED), outcome("b", RefreshStatus.SUCCEEDED)]
        assert aggregate_status(waiting, both) is RefreshStatus.SUCCEEDED
        mixed = [outcome("a", RefreshStatus.SUCCEEDED), outcome("b", RefreshStatus.FAILED)]
        assert aggregate_status(waiting, mixed) is RefreshStatus.PARTIAL
        failed = [outcome("a", RefreshStatus.FAILED), outcome("b", RefreshStatus.FAILED)]
        assert aggregate_status(waiting, failed) is RefreshStatus.FAILED
        # A replica that is no longer live is not waited for.
        assert aggregate_status(("a",), mixed) is RefreshStatus.SUCCEEDED

    def test_replicas_started_after_the_request_do_not_take_part(self) -> None:
        """A replica that hydrated after the request is not waited for; the origin always is."""
        request = ClusterRefresh("r-1", False, (SecretType.API_KEY,), "ops", T0, "origin")
        live = [
            ReplicaInfo("old", "h", T0 - timedelta(minutes=5), T0),
            ReplicaInfo("new", "h", T0 + timedelta(seconds=1), T0),
        ]
        assert participants(request, live) == ("origin", "old")
