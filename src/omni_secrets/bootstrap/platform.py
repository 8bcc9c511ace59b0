"""What every feature builds on: clock, catalog, metrics, database, GSM, alerts, audit, peers.

:func:`build_platform` constructs the shared adapters once per process (nothing connected, no
task started); the feature builders in :mod:`omni_secrets.bootstrap.services` take what they need
from the :class:`Platform` it returns. Each adapter is one small function here, so a test that
swaps one through :class:`~omni_secrets.bootstrap.overrides.Overrides` swaps it everywhere.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from omni_secrets.adapters import apex as apex_adapter
from omni_secrets.adapters import notify, pagerduty
from omni_secrets.adapters.db import cluster as db_cluster
from omni_secrets.adapters.db import engine as db_engine
from omni_secrets.adapters.db import leader as db_leader
from omni_secrets.adapters.db.clock import SqlReferenceTime
from omni_secrets.adapters.local_cluster import LocalClusterStore
from omni_secrets.bootstrap.database import create_database_engine, units_of_work
from omni_secrets.bootstrap.gsm import build_secret_store
from omni_secrets.bootstrap.keys import load_service_keyring
from omni_secrets.bootstrap.overrides import ClusterStore, Overrides
from omni_secrets.config import Settings
from omni_secrets.domain.catalog import Catalog
from omni_secrets.domain.changes import ChangeNotifier
from omni_secrets.domain.clock import Clock, HostReferenceTime, SharedClock, SystemClock
from omni_secrets.domain.exchange import ApexGateway
from omni_secrets.domain.integrity import IntegrityKeyring
from omni_secrets.domain.observations import ObserverFanOut, ServiceObserver
from omni_secrets.domain.repositories import UnitOfWorkFactory
from omni_secrets.domain.secret_store import SecretStore
from omni_secrets.observability import alert_catalog
from omni_secrets.observability.alert_catalog import AUDIT_ALERT
from omni_secrets.observability.alerts import AlertDispatcher, AlertSink
from omni_secrets.observability.logging import Redactor
from omni_secrets.observability.metrics import OmniMetrics
from omni_secrets.observability.service_observer import MetricsAndRedaction
from omni_secrets.service.auditor import Auditor
from omni_secrets.service.integrity import IntegrityViolation, IntegrityViolations
from omni_secrets.service.replicas import ReplicaService, new_replica_id
from omni_secrets.service.rotation.monitor import LeaderLock
from omni_secrets.service.shared_time import ClockSync

Closer = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Platform:
    """The shared adapters of one process (or one test app).

    Attributes:
        engine: the SQL engine, or None when a test supplied its own units of work.
        observer: counts reads and failures and teaches the log redactor every value seen.
        keyring: the integrity keys (None only outside production), for MACs services compute
            themselves (a preview's candidate digests).
        integrity: reports rows that fail their integrity check (metric and alert).
        cluster_store: the replica registry, refresh ledger and signal store in one.
        closers: what ``start_services`` closes last, in reverse order.
    """

    settings: Settings
    catalog: Catalog
    clock: Clock
    metrics: OmniMetrics
    redactor: Redactor
    engine: AsyncEngine | None
    uow_factory: UnitOfWorkFactory
    store: SecretStore
    notifier: ChangeNotifier
    alerts: AlertDispatcher
    auditor: Auditor
    keyring: IntegrityKeyring | None
    integrity: IntegrityViolations
    apex: ApexGateway
    observer: ServiceObserver
    cluster_store: ClusterStore
    replicas: ReplicaService
    leader_lock: LeaderLock
    closers: tuple[Closer, ...]

    @property
    def environment(self) -> str:
        return str(self.settings.environment)


def build_platform(settings: Settings, over: Overrides) -> Platform:
    """Construct the shared adapters for ``settings``, with ``over``'s in place of the real ones."""
    # One clock for shared time (contract section 18): the host's, corrected to the database's
    # at every heartbeat. A clock a test injects keeps driving time (measured, not corrected).
    clock = SharedClock(over.clock or SystemClock(), correct=over.clock is None)
    keyring = load_service_keyring(settings)
    catalog = Catalog(settings.gsm_secret_prefix)
    metrics = OmniMetrics(over.registry or CollectorRegistry(), [t.value for t in catalog.types])
    redactor = over.redactor or Redactor()
    closers: list[Closer] = []
    engine: AsyncEngine | None = None
    uow_factory = over.uow_factory
    if uow_factory is None:
        engine = create_database_engine(
            settings.database_url, timeout_seconds=settings.database_timeout_seconds
        )
        closers.append(engine.dispose)
        uow_factory = units_of_work(engine, clock=clock, keyring=keyring)
    notifier = _notifier(settings, over, engine)
    store = over.secret_store or build_secret_store(settings, metrics=metrics, clock=clock)
    close_store = getattr(store, "aclose", None)
    if close_store is not None:
        closers.append(close_store)
    # One HTTP client for ApeX and PagerDuty: one pool, closed once.
    http = httpx.AsyncClient(timeout=10.0)
    closers.append(http.aclose)
    alerts = _alerts(settings, over, http, clock, metrics)
    cluster_store: ClusterStore = over.cluster_store or (
        db_cluster.SqlClusterStore(engine) if engine is not None else LocalClusterStore()
    )
    leader_lock = _leader_lock(over, engine, closers)
    clock_sync = ClockSync(
        clock=clock,
        reference=SqlReferenceTime(engine) if engine is not None else HostReferenceTime(),
        on_offset=metrics.clock_offset.set,
        timeout_seconds=settings.database_timeout_seconds,
    )
    return Platform(
        settings=settings,
        catalog=catalog,
        clock=clock,
        metrics=metrics,
        redactor=redactor,
        engine=engine,
        uow_factory=uow_factory,
        store=store,
        notifier=notifier,
        alerts=alerts,
        keyring=keyring,
        auditor=_auditor(settings, uow_factory, alerts, metrics),
        integrity=_integrity(settings, alerts, metrics),
        apex=over.apex
        or apex_adapter.ApexOmniClient(str(settings.apex_base_url).rstrip("/"), http, clock),
        observer=_observer(metrics, redactor, over),
        cluster_store=cluster_store,
        replicas=ReplicaService(
            registry=cluster_store,
            clock=clock,
            replica_id=over.replica_id or new_replica_id(),
            host=socket.gethostname(),
            on_peers=metrics.replica_peers.set,
            clock_sync=clock_sync,
        ),
        leader_lock=leader_lock,
        closers=tuple(closers),
    )


def _notifier(settings: Settings, over: Overrides, engine: AsyncEngine | None) -> ChangeNotifier:
    """Cross-replica notifications: LISTEN/NOTIFY on PostgreSQL, nothing on SQLite or fakes."""
    if over.notifier is not None:
        return over.notifier
    if engine is None or db_engine.is_sqlite(settings.database_url):
        return notify.LocalNotifier()
    return notify.PostgresNotifier(
        engine, notify.postgres_conninfo(db_engine.async_url(settings.database_url))
    )


def _alerts(
    settings: Settings, over: Overrides, http: httpx.AsyncClient, clock: Clock, metrics: OmniMetrics
) -> AlertDispatcher:
    """The dispatcher with the log sink, and PagerDuty's when a routing key is configured."""
    sinks: list[AlertSink] = list(over.alert_sinks or ())
    if over.alert_sinks is None and settings.pagerduty_routing_key is not None:
        sinks.append(
            pagerduty.PagerDutySink(
                routing_key=settings.pagerduty_routing_key.get_secret_value(),
                events_url=str(settings.pagerduty_events_url),
                http=http,
                source=f"omni-secrets/{settings.environment}/{settings.gcp_project_id}",
                sleep=over.pagerduty_sleep or asyncio.sleep,
            )
        )
    return AlertDispatcher(str(settings.environment), sinks, clock, on_outcome=metrics.count_alert)


def _auditor(
    settings: Settings,
    uow_factory: UnitOfWorkFactory,
    alerts: AlertDispatcher,
    metrics: OmniMetrics,
) -> Auditor:
    """The audit writer; a failed background write is counted and pages, a success resolves."""

    def audit_failed() -> None:
        metrics.audit_write_failures.inc()
        alerts.trigger(alert_catalog.audit_write_failures(str(settings.environment)))

    auditor = Auditor(
        uow_factory=uow_factory,
        on_write_failure=audit_failed,
        on_write_success=lambda: alerts.resolve(AUDIT_ALERT, "audit"),
        on_batch=metrics.audit_batch_size.observe,
        on_lost=metrics.audit_events_lost.inc,
        write_timeout_seconds=settings.database_timeout_seconds * 2,
        max_pending=settings.audit_buffer_events,
    )
    metrics.track_audit_queue(lambda: auditor.pending)
    return auditor


def _integrity(
    settings: Settings, alerts: AlertDispatcher, metrics: OmniMetrics
) -> IntegrityViolations:
    """Where a row that fails its integrity check is reported: a metric and a critical alert."""

    def violated(violation: IntegrityViolation) -> None:
        metrics.count_integrity_violation(violation.table)
        alerts.trigger(
            alert_catalog.integrity_violation(
                str(settings.environment),
                table=violation.table,
                row=violation.row,
                problem=violation.problem,
                secret_type=violation.secret_type,
            )
        )

    return IntegrityViolations(violated)


def _observer(metrics: OmniMetrics, redactor: Redactor, over: Overrides) -> ServiceObserver:
    """Metrics and redaction, then the tests' own observers."""
    observer: ServiceObserver = MetricsAndRedaction(metrics, redactor)
    if over.observers:
        observer = ObserverFanOut([observer, *over.observers])
    return observer


def _leader_lock(over: Overrides, engine: AsyncEngine | None, closers: list[Closer]) -> LeaderLock:
    """The rotation monitor's lease: an advisory lock on the database, else in-process."""
    if over.leader_lock is not None:
        return over.leader_lock
    if engine is None:
        return db_leader.LocalLeaderLock()
    lock = db_leader.leader_lock_for(engine)
    closers.append(lock.release)
    return lock
