"""The rotation monitor: gauges, ``rotation_alert`` audit rows and rotation alerts, on a timer.

Every ``OMNI_ROTATION_CHECK_INTERVAL_SECONDS`` (and once at startup, and right after a commit on
this replica) a round reads the metadata rows and computes every type's and group's status
(:mod:`omni_secrets.service.rotation.report`). Then:

- **every replica** sets ``omni_secret_rotation_overdue`` (0/1) and
  ``omni_secret_rotation_due_timestamp_seconds`` for every seeded type, so each replica's
  ``/metrics`` is right whichever one Prometheus scrapes;
- **the leader only** (one replica cluster-wide, through the :class:`LeaderLock` port: a
  PostgreSQL advisory lock, always granted on SQLite) triggers or resolves one alert per group
  (``rotation_due_soon`` warning, ``rotation_overdue`` critical, subject = the group; back to
  ``ok`` resolves both) and writes one ``rotation_alert`` audit row per status change.

The monitor decides which of that happens and emits it (:class:`RotationReportComputed`,
:class:`RotationAlertsAsserted`, :class:`RotationStatusChanged`); the gauges, alerts, audit rows
and log lines are reactions (:mod:`omni_secrets.service.rotation.reactions`), run before the
round returns.

Statuses of the previous round are kept in memory. The first round after this replica became the
leader has no previous statuses: it re-asserts the alert of every group that is not ``ok`` (and
audits that), because the alert dispatcher only resolves alerts it triggered itself, and a
restarted or newly elected leader must be able to resolve them later. Triggers are repeated every
round (the dispatcher suppresses duplicates and re-sends one whose delivery failed).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any, Protocol

from omni_secrets.domain import rotation
from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.clock import Clock, Sleep
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.service.messagebus import EventBus
from omni_secrets.service.rotation.events import (
    MonitorLeadershipUnknown,
    MonitorRoundFailed,
    RotationAlertsAsserted,
    RotationReportComputed,
    RotationStatusChanged,
)
from omni_secrets.service.rotation.report import RotationReport, build_report

LEASE_INTERVAL_SECONDS = 15.0
"""How often the monitor checks its lease between rounds (a lost lease is re-taken well
within 60 s: one interval, plus the database's deadline)."""


class LeaderLock(Protocol):
    """Cluster-wide leadership for jobs that must run on one replica at a time."""

    async def try_acquire(self) -> bool:
        """Become the leader, or confirm this process still is.

        Cheap enough to call before every round. Leadership is kept until :meth:`release` or
        until the process (or its database session) goes away.

        Returns:
            True while this process is the leader.

        Raises:
            DatabaseUnavailable: leadership could not be checked (callers treat that as "not
                the leader" for this round).
        """
        ...

    async def release(self) -> None:
        """Give leadership up (at shutdown). Never raises."""
        ...


@dataclass(frozen=True, slots=True)
class MonitorRound:
    """What one round saw and did.

    Attributes:
        report: every type's and group's status.
        leader: whether this replica was the leader (and so alerted and audited).
        changes: the status changes acted on (leader only; empty otherwise).
    """

    report: RotationReport
    leader: bool
    changes: tuple[rotation.RotationAlert, ...]


class RotationMonitor:
    """Runs the rotation rounds described in the module docstring.

    Args:
        catalog: the secret types and groups.
        uow_factory: reads the metadata rows.
        bus: told what each round saw and decided (gauges, alerts and audit rows follow).
        clock: time source.
        leader_lock: cluster-wide leadership.
        warning_days: ``OMNI_ROTATION_WARNING_DAYS``.
        interval_seconds: ``OMNI_ROTATION_CHECK_INTERVAL_SECONDS``.
        lease_interval_seconds: how often the loop checks leadership between rounds (contract
            section 18: a lost lease is re-taken within 60 s by a live replica; a replica that
            becomes the leader runs a round at once).
        sleep: awaitable sleep between rounds (``asyncio.sleep``; tests inject their own).
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        uow_factory: UnitOfWorkFactory,
        bus: EventBus,
        clock: Clock,
        leader_lock: LeaderLock,
        warning_days: int,
        interval_seconds: float,
        lease_interval_seconds: float = LEASE_INTERVAL_SECONDS,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if interval_seconds <= 0 or lease_interval_seconds <= 0:
            raise ValueError("interval_seconds and lease_interval_seconds must be positive")
        if warning_days < 0:
            raise ValueError("warning_days must not be negative")
        self._catalog = catalog
        self._uow_factory = uow_factory
        self._bus = bus
        self._clock = clock
        self._leader_lock = leader_lock
        self._warning_days = warning_days
        self._interval = interval_seconds
        self._lease_interval = min(lease_interval_seconds, interval_seconds)
        self._sleep = sleep
        self._previous: dict[str, rotation.RotationStatus] = {}
        self._was_leader = False
        self._round_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._woken: set[asyncio.Task[MonitorRound | None]] = set()

    # -- one round -------------------------------------------------------------------------------

    async def run_once(self) -> MonitorRound:
        """Run one round now (rounds never overlap: a concurrent call waits for the other).

        Returns:
            What the round saw and did.

        Raises:
            DatabaseUnavailable: the metadata could not be read (gauges keep their values).
        """
        async with self._round_lock:
            leader = await self._lead()
            async with self._uow_factory() as uow:
                rows = await uow.metadata.list_all()
            now = self._clock.now()
            report = build_report(self._catalog, rows, now=now, warning_days=self._warning_days)
            await self._bus.emit(RotationReportComputed(report))
            changes: tuple[rotation.RotationAlert, ...] = ()
            if leader:
                if not self._was_leader:
                    self._previous.clear()  # newly elected: re-assert every alert
                decision = rotation.monitor_decision(
                    report.group_subjects(self._previous),
                    now=now,
                    warning_days=self._warning_days,
                )
                await self._bus.emit(RotationAlertsAsserted(report.groups))
                changes = decision.alerts
                for change in changes:
                    await self._bus.emit(RotationStatusChanged(change, self._clock.now()))
                self._previous = {a.subject: a.status for a in decision.assessments}
            self._was_leader = leader
            return MonitorRound(report=report, leader=leader, changes=changes)

    async def tick(self) -> MonitorRound | None:
        """:meth:`run_once`, with a failure logged instead of raised (for loops and startup)."""
        try:
            return await self.run_once()
        except Exception as exc:
            await self._bus.emit(MonitorRoundFailed(type(exc).__name__))
            return None

    async def _lead(self) -> bool:
        try:
            return await self._leader_lock.try_acquire()
        except Exception as exc:  # cannot tell: let whoever can tell lead this round
            await self._bus.emit(MonitorLeadershipUnknown(type(exc).__name__))
            return False

    # -- the loop --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background loop: a round every ``interval_seconds`` (the first after one
        interval; run :meth:`tick` yourself for one at startup).

        Raises:
            RuntimeError: already started.
        """
        if self._task is not None:
            raise RuntimeError("the rotation monitor is already running")
        self._task = asyncio.create_task(self._loop(), name="rotation-monitor")

    def wake(self) -> None:
        """Run a round soon, without waiting for it (after a commit on this replica)."""
        task = asyncio.ensure_future(self.tick())
        self._woken.add(task)
        task.add_done_callback(self._woken.discard)

    async def stop(self) -> None:
        """Stop the loop and any round it or :meth:`wake` started, then give up leadership."""
        tasks: list[asyncio.Task[Any]] = [*self._woken]
        if self._task is not None:
            tasks.append(self._task)
        self._task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._leader_lock.release()
        self._was_leader = False

    async def check_lease(self) -> bool:
        """Between rounds: take the lease when it is free, or confirm this replica still holds
        it; a replica that has just become the leader runs a round at once (re-asserting every
        alert), so leadership lost in a database blip is back within one lease interval.

        Returns:
            Whether this replica is the leader now.
        """
        async with self._round_lock:
            leader = await self._lead()
            newly = leader and not self._was_leader
            if not leader:
                self._was_leader = False
        if newly:
            await self.tick()
        return leader

    async def _loop(self) -> None:
        waited = 0.0
        while True:
            await self._sleep(self._lease_interval)
            waited += self._lease_interval
            if waited + 1e-9 >= self._interval:
                waited = 0.0
                await self.tick()
            else:
                await self.check_lease()
