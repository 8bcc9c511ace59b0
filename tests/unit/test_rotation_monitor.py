"""RotationMonitor with fakes: gauges everywhere, alerts and audit rows from the leader only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from omni_secrets.catalog_seed import seed_catalog
from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.clock import ManualClock
from omni_secrets.domain.errors import DatabaseUnavailable
from omni_secrets.domain.models import OmniSecretAccessEvent, OmniSecretMetadata
from omni_secrets.domain.rotation import RotationStatus
from omni_secrets.observability.alerts import AlertDispatcher
from omni_secrets.observability.metrics import OmniMetrics
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.messagebus import Dispatcher
from omni_secrets.service.rotation.monitor import RotationMonitor
from omni_secrets.service.rotation.reactions import MonitorReactions
from omni_secrets.service.rotation.report import build_report
from omni_secrets.testing import InMemoryUnitOfWorkFactory, RecordingAlertSink

CATALOG = Catalog()
DAY = timedelta(days=1).total_seconds()


class FakeLeaderLock:
    """A ``LeaderLock`` whose answer the test sets."""

    def __init__(self, leader: bool = True) -> None:
        self.leader = leader
        self.fail = False
        self.released = 0

    async def try_acquire(self) -> bool:
        if self.fail:
            raise DatabaseUnavailable("leader election failed")
        return self.leader

    async def release(self) -> None:
        self.released += 1


class GatedSleep:
    """An injectable sleep: records each delay and returns only when the test opens the gate."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.gate: asyncio.Queue[None] = asyncio.Queue()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await self.gate.get()


@dataclass
class Rig:
    clock: ManualClock
    db: InMemoryUnitOfWorkFactory
    sink: RecordingAlertSink
    metrics: OmniMetrics
    lock: FakeLeaderLock
    sleep: GatedSleep
    monitor: RotationMonitor

    def gauge(self, name: str, secret_type: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, {"secret_type": secret_type})

    def delivered(self) -> list[tuple[str, str, str]]:
        return [(e.action, e.alert.name, e.alert.severity) for e in self.sink.delivered]

    def alert_rows(self) -> list[OmniSecretAccessEvent]:
        return [e for e in self.db.db.committed.events if e.action == "rotation_alert"]

    async def settle(self, predicate: Callable[[], bool]) -> None:
        async def until() -> None:
            while not predicate():
                await asyncio.sleep(0.005)

        await asyncio.wait_for(until(), 5)

    async def commit_rotation(self, group: str) -> None:
        now = self.clock.now()
        async with self.db() as uow:
            await uow.metadata.record_rotation(group, {}, now, now + timedelta(days=365))
            await uow.commit()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = ManualClock()
    db = InMemoryUnitOfWorkFactory(clock=clock)
    await seed_catalog(
        db, CATALOG, project_id="omni-test", store=None, clock=clock, rotation_period_days=365
    )
    sink = RecordingAlertSink()
    alerts = AlertDispatcher("test", [sink], clock)
    alerts.start()
    auditor = Auditor(uow_factory=db)
    auditor.start()
    metrics = OmniMetrics(CollectorRegistry(), [t.value for t in CATALOG.types])
    lock = FakeLeaderLock()
    sleep = GatedSleep()
    # The monitor decides; its gauges, alerts and audit rows are the reactions bootstrap installs.
    bus = Dispatcher([MonitorReactions(metrics=metrics, alerts=alerts, auditor=auditor).table()])
    monitor = RotationMonitor(
        catalog=CATALOG,
        uow_factory=db,
        bus=bus,
        clock=clock,
        leader_lock=lock,
        warning_days=30,
        interval_seconds=3600,
        lease_interval_seconds=1800,
        sleep=sleep,
    )
    yield Rig(clock, db, sink, metrics, lock, sleep, monitor)
    await monitor.stop()
    await auditor.stop()
    await alerts.stop()


class TestRounds:
    async def test_all_ok(self, rig: Rig) -> None:
        """A fresh catalog: every gauge set, overdue 0, no alert, no audit row."""
        result = await rig.monitor.run_once()
        assert result.leader is True
        assert result.report.worst is RotationStatus.OK
        due = rig.clock.now().timestamp() + 365 * DAY
        for secret_type in CATALOG.types:
            assert rig.gauge("omni_secret_rotation_overdue", secret_type.value) == 0
            assert rig.gauge(
                "omni_secret_rotation_due_timestamp_seconds", secret_type.value
            ) == pytest.approx(due)
        await asyncio.sleep(0.02)
        assert rig.delivered() == []
        assert rig.alert_rows() == []

    async def test_lifecycle_ok_due_soon_overdue_rotated(self, rig: Rig) -> None:
        """ok → due_soon (warning) → overdue (critical, warning resolved) → rotated (resolved)."""
        await rig.monitor.run_once()
        rig.clock.advance(340 * DAY)
        await rig.monitor.run_once()
        await rig.settle(lambda: len(rig.delivered()) == 2)
        assert rig.delivered() == [("trigger", "rotation_due_soon", "warning")] * 2
        assert {e.alert.subject for e in rig.sink.delivered} == {"api_credentials", "zk_keys"}
        assert rig.gauge("omni_secret_rotation_overdue", "api_key") == 0

        await rig.monitor.run_once()  # unchanged: nothing new is sent or audited
        await asyncio.sleep(0.02)
        assert len(rig.delivered()) == 2
        await rig.settle(lambda: len(rig.alert_rows()) == 2)

        rig.clock.advance(30 * DAY)
        result = await rig.monitor.run_once()
        assert result.report.worst is RotationStatus.OVERDUE
        assert rig.gauge("omni_secret_rotation_overdue", "zk_l2_key") == 1
        await rig.settle(lambda: len(rig.delivered()) == 6)
        assert sorted(rig.delivered()[2:]) == [
            ("resolve", "rotation_due_soon", "warning"),
            ("resolve", "rotation_due_soon", "warning"),
            ("trigger", "rotation_overdue", "critical"),
            ("trigger", "rotation_overdue", "critical"),
        ]

        await rig.commit_rotation("api_credentials")
        result = await rig.monitor.run_once()
        assert [c.subject for c in result.changes] == ["api_credentials"]
        assert rig.gauge("omni_secret_rotation_overdue", "api_key") == 0
        assert rig.gauge("omni_secret_rotation_overdue", "zk_seeds") == 1
        await rig.settle(lambda: len(rig.delivered()) == 7)
        resolved = rig.sink.delivered[-1]
        assert (resolved.action, resolved.alert.name, resolved.alert.subject) == (
            "resolve",
            "rotation_overdue",
            "api_credentials",
        )
        await rig.settle(lambda: len(rig.alert_rows()) == 5)
        last = rig.alert_rows()[-1]
        assert last.actor == "system"
        assert last.details["group"] == "api_credentials"
        assert last.details["status"] == "ok"
        assert last.details["alertAction"] == "resolve"

    async def test_follower_sets_gauges_only(self, rig: Rig) -> None:
        """A replica that is not the leader sets gauges but neither alerts nor audits."""
        rig.lock.leader = False
        rig.clock.advance(400 * DAY)
        result = await rig.monitor.run_once()
        assert result.leader is False
        assert result.changes == ()
        assert rig.gauge("omni_secret_rotation_overdue", "api_secret") == 1
        await asyncio.sleep(0.02)
        assert rig.delivered() == []
        assert rig.alert_rows() == []

    async def test_new_leader_reasserts(self, rig: Rig) -> None:
        """A follower that becomes leader re-triggers (and audits) every group not ok."""
        rig.lock.leader = False
        rig.clock.advance(400 * DAY)
        await rig.monitor.run_once()
        rig.lock.leader = True
        result = await rig.monitor.run_once()
        assert {c.subject for c in result.changes} == {"api_credentials", "zk_keys"}
        await rig.settle(lambda: len(rig.delivered()) == 2)
        assert {d[1] for d in rig.delivered()} == {"rotation_overdue"}

    async def test_election_failure_means_follower(self, rig: Rig) -> None:
        """When leadership cannot be checked, the round still sets gauges, as a follower."""
        rig.lock.fail = True
        rig.clock.advance(400 * DAY)
        result = await rig.monitor.run_once()
        assert result.leader is False
        assert rig.gauge("omni_secret_rotation_overdue", "api_key") == 1

    async def test_database_down(self, rig: Rig) -> None:
        """Metadata unreadable: run_once raises, tick logs and returns None, gauges unchanged."""
        await rig.monitor.run_once()
        rig.db.db.unavailable = True
        rig.clock.advance(400 * DAY)
        with pytest.raises(DatabaseUnavailable):
            await rig.monitor.run_once()
        assert await rig.monitor.tick() is None
        assert rig.gauge("omni_secret_rotation_overdue", "api_key") == 0


class TestLoop:
    async def test_runs_every_interval_and_stops(self, rig: Rig) -> None:
        """The loop checks its lease every lease interval and runs a round every interval; stop
        releases leadership."""
        await rig.monitor.run_once()  # start-up's round: this replica leads already
        rig.monitor.start()
        await rig.settle(lambda: len(rig.sleep.delays) == 1)
        rig.clock.advance(400 * DAY)
        rig.sleep.gate.put_nowait(None)  # a lease check only: the leader keeps its lease
        await rig.settle(lambda: len(rig.sleep.delays) == 2)
        assert rig.gauge("omni_secret_rotation_overdue", "api_key") == 0
        rig.sleep.gate.put_nowait(None)  # the interval is over: a round
        await rig.settle(lambda: len(rig.sleep.delays) == 3)
        assert rig.sleep.delays == [1800, 1800, 1800]
        assert rig.gauge("omni_secret_rotation_overdue", "api_key") == 1
        with pytest.raises(RuntimeError):
            rig.monitor.start()
        await rig.monitor.stop()
        assert rig.lock.released == 1

    async def test_a_lease_freed_between_rounds_is_taken_and_acted_on_at_once(
        self, rig: Rig
    ) -> None:
        """Contract section 18: a follower takes a lease freed by a database blip at its next
        lease check (not the next hourly round) and re-asserts every alert at once."""
        rig.lock.leader = False
        rig.clock.advance(400 * DAY)
        first = await rig.monitor.run_once()
        assert first.leader is False and rig.delivered() == []
        rig.monitor.start()
        await rig.settle(lambda: len(rig.sleep.delays) == 1)
        rig.sleep.gate.put_nowait(None)  # still not free
        await rig.settle(lambda: len(rig.sleep.delays) == 2)
        assert rig.delivered() == []
        rig.lock.leader = True  # the old leader's session died
        rig.sleep.gate.put_nowait(None)
        await rig.settle(lambda: len(rig.sleep.delays) == 3)
        await rig.settle(lambda: {d[1] for d in rig.delivered()} == {"rotation_overdue"})
        assert rig.sleep.delays == [1800, 1800, 1800]

    async def test_an_unanswered_lease_check_is_not_leadership(self, rig: Rig) -> None:
        """A lease check the database cannot answer leaves this replica a follower."""
        rig.lock.fail = True
        assert await rig.monitor.check_lease() is False
        rig.lock.fail = False
        assert await rig.monitor.check_lease() is True

    async def test_wake_runs_a_round(self, rig: Rig) -> None:
        """wake() runs a round without waiting for the timer."""
        rig.clock.advance(400 * DAY)
        rig.monitor.wake()
        await rig.settle(lambda: rig.gauge("omni_secret_rotation_overdue", "api_key") == 1)


class TestReport:
    def test_group_due_is_earliest_member(self) -> None:
        """A group's due date and status come from its earliest member; missing rows listed."""
        clock = ManualClock()
        now = clock.now()
        rows = _rows(now, {"api_key": 10, "api_secret": 340, "zk_seeds": 400})
        report = build_report(CATALOG, rows, now=now, warning_days=30)
        groups = {g.group.value: g for g in report.groups}
        assert groups["api_credentials"].status.value == "due_soon"
        assert groups["api_credentials"].due_at == now - timedelta(days=340) + timedelta(days=365)
        assert groups["zk_keys"].status.value == "overdue"
        assert [t.value for t in report.missing] == ["api_passphrase", "zk_l2_key"]
        assert report.worst is RotationStatus.OVERDUE


def _rows(now: datetime, ages: dict[str, int]) -> list[OmniSecretMetadata]:
    rows = []
    for entry in CATALOG:
        if entry.secret_type.value not in ages:
            continue
        rotated = now - timedelta(days=ages[entry.secret_type.value])
        rows.append(
            OmniSecretMetadata(
                secret_type=entry.secret_type,
                gsm_secret_id=entry.gsm_secret_id,
                gsm_project_id="omni-test",
                required=entry.required,
                rotation_group=entry.rotation_group,
                last_rotated_at=rotated,
                rotation_due_at=rotated + timedelta(days=365),
                created_at=now,
                updated_at=now,
            )
        )
    return rows
