"""One clock for shared time (contract section 18): the offset from the database's clock is
measured at every heartbeat and applied to every time a replica stamps or compares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from omni_secrets.adapters.local_cluster import LocalClusterStore
from omni_secrets.domain.clock import HostReferenceTime, ManualClock, SharedClock
from omni_secrets.domain.cluster import ClusterRefresh, participants
from omni_secrets.domain.errors import DatabaseUnavailable
from omni_secrets.service.replicas import ReplicaService
from omni_secrets.service.shared_time import ClockSync

DB_T0 = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
AHEAD = timedelta(minutes=10)


class DatabaseClock:
    """The database's clock as a test drives it (``fail`` makes it unreachable)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.fail = False
        self.reads = 0

    async def reference_now(self) -> datetime | None:
        self.reads += 1
        if self.fail:
            raise DatabaseUnavailable("fake-database down")
        return self.now


class TestSharedClock:
    async def test_a_host_ten_minutes_ahead_reads_the_database_time(self) -> None:
        """A host clock 10 minutes ahead measures +600 s and then tells the database's time."""
        host = ManualClock(DB_T0 + AHEAD)
        clock = SharedClock(host)
        assert clock.offset_seconds is None
        assert clock.now() == DB_T0 + AHEAD  # not measured yet: the host's own
        database = DatabaseClock(DB_T0)
        seen: list[float] = []
        sync = ClockSync(clock=clock, reference=database, on_offset=seen.append)
        assert await sync.sync() == pytest.approx(600.0)
        assert seen == [pytest.approx(600.0)]
        assert clock.now() == DB_T0
        host.advance(5)  # between heartbeats the offset applies
        assert clock.now() == DB_T0 + timedelta(seconds=5)
        assert clock.monotonic() == host.monotonic()

    async def test_a_failed_measurement_keeps_the_last_offset(self) -> None:
        host = ManualClock(DB_T0 - timedelta(seconds=3))
        clock = SharedClock(host)
        database = DatabaseClock(DB_T0)
        sync = ClockSync(clock=clock, reference=database)
        assert await sync.sync() == pytest.approx(-3.0)
        database.fail = True
        with pytest.raises(DatabaseUnavailable):
            await sync.sync()
        assert sync.offset_seconds == pytest.approx(-3.0)
        assert clock.now() == DB_T0

    async def test_a_host_clock_database_means_no_offset(self) -> None:
        """SQLite (and the in-memory fakes) run on this host's clock: offset 0."""
        host = ManualClock(DB_T0)
        clock = SharedClock(host)
        assert await ClockSync(clock=clock, reference=HostReferenceTime()).sync() == 0.0
        assert clock.now() == DB_T0

    async def test_the_round_trip_is_split_evenly(self) -> None:
        clock = SharedClock(ManualClock(DB_T0))
        offset = clock.observe(DB_T0, DB_T0 + timedelta(seconds=1), DB_T0 + timedelta(seconds=4))
        assert offset == pytest.approx(1.0)  # midpoint 2 s, database 1 s

    async def test_an_injected_test_clock_is_measured_but_not_corrected(self) -> None:
        host = ManualClock(DB_T0 + AHEAD)
        clock = SharedClock(host, correct=False)
        await ClockSync(clock=clock, reference=DatabaseClock(DB_T0)).sync()
        assert clock.offset_seconds == pytest.approx(600.0)
        assert clock.now() == DB_T0 + AHEAD


class TestSkewedReplica:
    async def test_a_skewed_replica_stamps_database_times_and_is_counted_in_refreshes(
        self,
    ) -> None:
        """The replica 10 minutes ahead registers with the database's time: a refresh queued
        right after it started counts it in, and its peer sees it live."""
        store = LocalClusterStore()
        database = DatabaseClock(DB_T0)
        skewed_host = ManualClock(DB_T0 + AHEAD)
        skewed_clock = SharedClock(skewed_host)
        skewed = ReplicaService(
            registry=store,
            clock=skewed_clock,
            replica_id="skewed",
            host="h",
            clock_sync=ClockSync(clock=skewed_clock, reference=database),
        )
        honest_host = ManualClock(DB_T0)
        honest_clock = SharedClock(honest_host)
        honest = ReplicaService(
            registry=store,
            clock=honest_clock,
            replica_id="honest",
            host="h",
            clock_sync=ClockSync(clock=honest_clock, reference=database),
        )
        assert await skewed.beat() and await honest.beat() and await skewed.beat()
        assert skewed.clock_offset_seconds == pytest.approx(600.0)
        assert honest.clock_offset_seconds == pytest.approx(0.0)
        assert skewed.started_at == DB_T0
        assert skewed.peers == 1 and honest.peers == 1
        queued = DB_T0 + timedelta(seconds=1)
        request = ClusterRefresh("r-1", False, (), "fake-actor", queued, "honest")
        live = await honest.live()
        assert set(participants(request, live)) == {"skewed", "honest"}

    async def test_a_beat_whose_clock_read_fails_still_beats(self) -> None:
        store = LocalClusterStore()
        database = DatabaseClock(DB_T0)
        clock = SharedClock(ManualClock(DB_T0))
        replica = ReplicaService(
            registry=store,
            clock=clock,
            replica_id="a",
            host="h",
            clock_sync=ClockSync(clock=clock, reference=database),
        )
        database.fail = True
        assert await replica.beat() is True
        assert replica.clock_offset_seconds is None
        assert database.reads == 1


class TestSilentPeers:
    async def test_a_peer_that_stops_beating_is_reported_once(self) -> None:
        """Contract section 18 (dead peers): a peer silent for more than 8 s is reported once,
        well before the 30 s liveness window drops it."""
        store = LocalClusterStore()
        clock = ManualClock(DB_T0)
        a = ReplicaService(registry=store, clock=clock, replica_id="a", host="h")
        b = ReplicaService(registry=store, clock=clock, replica_id="b", host="h")
        assert await a.beat() and await b.beat() and await a.beat()
        assert a.take_newly_silent() == ()
        clock.advance(5)
        await a.beat()
        assert a.take_newly_silent() == ()  # 5 s: one missed beat at most
        clock.advance(5)
        await a.beat()
        assert a.take_newly_silent() == ("b",)
        assert a.peers == 1  # still counted: not gone before 30 s
        clock.advance(5)
        await a.beat()
        assert a.take_newly_silent() == ()  # reported once
        await b.beat()
        await a.beat()
        clock.advance(9)
        await a.beat()
        assert a.take_newly_silent() == ("b",)  # silent again after it came back
